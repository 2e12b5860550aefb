"""Start the grasp_semantics node, optionally with rviz.

    ros2 launch grasp_semantics grasp_semantics.launch.py \
        image:=/camera/color/image_raw points:=/camera/depth/points rviz:=true

Parameters come from ``params_file`` (default: config/grasp_semantics.yaml); ``model``,
``device`` and ``autostart`` override it. Topic arguments remap the node's relative inputs.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.parameter_descriptions import ParameterValue

ARGUMENTS = {
    "params_file": ("config/grasp_semantics.yaml", "Parameters YAML for the node."),
    "model": ("default", "Model name or checkpoint directory."),
    "device": ("auto", "Torch device: auto, cpu, cuda, cuda:0."),
    "autostart": ("true", "Configure and activate without a lifecycle manager."),
    "namespace": ("", "Namespace of the node and its topics."),
    "image": ("/camera/color/image_raw", "RGB image topic."),
    "camera_info": ("/camera/color/camera_info", "Camera info of the RGB image."),
    "points": ("/camera/depth/points", "Point cloud topic (same camera)."),
    "instruction": ("/grasp_semantics/instruction", "Instruction topic (std_msgs/String)."),
    "rviz": ("false", "Open rviz2 with config/grasp_semantics.rviz."),
}


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory("grasp_semantics"))
    config = LaunchConfiguration
    declared = [
        DeclareLaunchArgument(
            name,
            default_value=str(share / default) if name == "params_file" else default,
            description=description,
        )
        for name, (default, description) in ARGUMENTS.items()
    ]
    node = LifecycleNode(
        package="grasp_semantics",
        executable="grasp_semantics_node",
        name="grasp_semantics",
        namespace=config("namespace"),
        output="screen",
        parameters=[
            config("params_file"),
            {
                "model": config("model"),
                "device": config("device"),
                "autostart": ParameterValue(config("autostart"), value_type=bool),
            },
        ],
        remappings=[
            (topic, config(topic)) for topic in ("image", "camera_info", "points", "instruction")
        ],
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        arguments=["-d", str(share / "config" / "grasp_semantics.rviz")],
        condition=IfCondition(config("rviz")),
    )
    return LaunchDescription([*declared, node, rviz])
