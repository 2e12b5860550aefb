"""Start the grasp_semantics node, optionally with rviz.

    ros2 launch grasp_semantics grasp_semantics.launch.py \
        image:=/camera/color/image_raw points:=/camera/depth/points rviz:=true

Parameters come from ``params_file`` (default: the installed config/grasp_semantics.yaml);
``model``, ``device`` and ``autostart`` override it only when given (their defaults are empty),
and are passed as typed values (``model:=2024`` is the directory '2024', not an integer). Topic
arguments remap the node's relative inputs; relative ones (the defaults) resolve in
``namespace``. With ``rviz:=true`` the shipped rviz config is rewritten for the namespace and
the input topics given. The decisions are in ``grasp_semantics/ros/launching.py`` (tested
without launch); ``ros2 launch grasp_semantics grasp_semantics.launch.py --show-args`` lists the
arguments.
"""

import tempfile
from pathlib import Path

from ament_index_python.packages import (
    PackageNotFoundError,
    get_package_prefix,
    get_package_share_directory,
)
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.parameter_descriptions import ParameterValue

from grasp_semantics.ros.launching import (
    ARGUMENTS,
    INPUTS,
    NODE_NAME,
    OVERRIDES,
    parameter_overrides,
    rviz_config,
)


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory("grasp_semantics"))
    declared = [
        DeclareLaunchArgument(
            name,
            default_value=str(share / default) if name == "params_file" else default,
            description=description,
        )
        for name, (default, description) in ARGUMENTS.items()
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=launch_setup)])


def launch_setup(context: LaunchContext) -> list:
    """The node (and rviz) for the arguments as given: only the overrides that were set."""
    values = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    overrides = {
        name: ParameterValue(LaunchConfiguration(name), value_type=OVERRIDES[name])
        for name in parameter_overrides(values)
    }
    node = LifecycleNode(
        package="grasp_semantics",
        executable="grasp_semantics_node",
        name=NODE_NAME,
        namespace=values["namespace"],
        output="screen",
        parameters=[values["params_file"], *([overrides] if overrides else [])],
        remappings=[(topic, values[topic]) for topic in INPUTS],
    )
    actions = [node]
    if IfCondition(LaunchConfiguration("rviz")).evaluate(context):
        actions.append(rviz(values))
    return actions


def rviz(values: dict[str, str]) -> Node | LogInfo:
    """rviz2 on the shipped config rewritten for this namespace and these inputs (a file in
    the temporary directory), or a message when rviz2 is not installed."""
    try:
        get_package_prefix("rviz2")
    except PackageNotFoundError:
        return LogInfo(msg="rviz:=true but rviz2 is not installed: starting the node without it")
    share = Path(get_package_share_directory("grasp_semantics"))
    template = (share / "config" / "grasp_semantics.rviz").read_text()
    inputs = {topic: values[topic] for topic in INPUTS}
    with tempfile.NamedTemporaryFile(
        "w", prefix="grasp_semantics_", suffix=".rviz", delete=False
    ) as config:
        config.write(rviz_config(template, values["namespace"], inputs))
    return Node(
        package="rviz2",
        executable="rviz2",
        namespace=values["namespace"],
        arguments=["-d", config.name],
        output="screen",
    )
