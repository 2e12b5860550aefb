"""The launch file's decisions (``grasp_semantics/ros/launching.py``), tested without launch:
argument defaults and what overrides the params file, topic resolution in a namespace, and the
rviz config rewritten for a namespace and remapped inputs. The launch file itself runs through
launch_ros only where launch is installed (a full ROS install)."""

from __future__ import annotations

import ast
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from grasp_semantics.ros.launching import (
    ARGUMENTS,
    INPUTS,
    OVERRIDES,
    node_topics,
    parameter_overrides,
    resolve_topic,
    rviz_config,
)
from grasp_semantics.ros.parameters import PARAMETERS

ROOT = Path(__file__).resolve().parents[2]
RVIZ = ROOT / "config/grasp_semantics.rviz"


def rviz_topics(text: str) -> dict[str, str]:
    """Display name -> topic of an rviz config."""
    document = yaml.safe_load(text)
    return {
        d["Name"]: d["Topic"]["Value"]
        for d in document["Visualization Manager"]["Displays"]
        if "Topic" in d
    }


def test_overridable_arguments_are_parameters_and_default_to_not_given() -> None:
    declared = {p.name: p.default for p in PARAMETERS}
    for name, kind in OVERRIDES.items():
        assert isinstance(declared[name], kind), name  # the type it is passed as
        assert ARGUMENTS[name][0] == "", f"{name}: a default would override the params file"
    assert ARGUMENTS["params_file"][0] == "config/grasp_semantics.yaml"
    assert (ROOT / ARGUMENTS["params_file"][0]).is_file()


def test_only_given_arguments_override_the_params_file() -> None:
    defaults = {name: default for name, (default, _) in ARGUMENTS.items()}
    assert parameter_overrides(defaults) == {}
    given = {**defaults, "model": "2024", "autostart": "false"}
    assert parameter_overrides(given) == {"model": "2024", "autostart": "false"}


def test_input_defaults_are_relative_so_they_follow_the_namespace() -> None:
    for role in INPUTS:
        default, description = ARGUMENTS[role]
        assert not default.startswith("/"), role
        assert "namespace" in description, role
    inputs = {role: ARGUMENTS[role][0] for role in INPUTS}
    plain = node_topics("", inputs)
    assert plain["image"] == "/camera/color/image_raw"  # the README's and the bag's names
    assert plain["points"] == "/camera/depth/points"
    assert plain["instruction"] == "/grasp_semantics/instruction"
    assert plain["prediction"] == "/grasp_semantics/prediction"
    spaced = node_topics("robot1", inputs)
    assert set(spaced.values()).isdisjoint(plain.values())  # two instances share nothing
    assert spaced["instruction"] == "/robot1/grasp_semantics/instruction"
    assert spaced["contacts"] == "/robot1/grasp_semantics/contacts"


def test_resolve_topic_follows_ros_name_rules() -> None:
    assert resolve_topic("/abs/x", "robot1") == "/abs/x"
    assert resolve_topic("rel/x", "") == "/rel/x"
    assert resolve_topic("rel/x", "/robot1/") == "/robot1/rel/x"
    assert resolve_topic("~/out", "robot1", node="n") == "/robot1/n/out"
    assert resolve_topic("~/out", "", node="n") == "/n/out"


def test_rviz_config_with_the_defaults_is_the_shipped_one() -> None:
    inputs = {role: ARGUMENTS[role][0] for role in INPUTS}
    text = RVIZ.read_text()
    assert rviz_topics(rviz_config(text, "", inputs)) == rviz_topics(text)
    # the rest of the file survives the rewrite
    assert yaml.safe_load(rviz_config(text, "", inputs)) == yaml.safe_load(text)


def test_rviz_config_follows_namespace_and_remapped_inputs() -> None:
    inputs = {role: ARGUMENTS[role][0] for role in INPUTS}
    inputs["points"] = "/other_camera/points"  # absolute: stays
    topics = rviz_topics(rviz_config(RVIZ.read_text(), "robot1", inputs))
    assert topics == {
        "Input cloud": "/other_camera/points",
        "Contacts": "/robot1/grasp_semantics/contacts",
        "Grasps": "/robot1/grasp_semantics/markers",
        "Grasp poses": "/robot1/grasp_semantics/grasps",
        "Camera": "/robot1/camera/color/image_raw",
    }


def test_rviz_config_refuses_a_display_on_an_unknown_topic() -> None:
    text = RVIZ.read_text().replace("/grasp_semantics/markers", "/somewhere/else")
    inputs = {role: ARGUMENTS[role][0] for role in INPUTS}
    with pytest.raises(ValueError, match="somewhere/else"):
        rviz_config(text, "", inputs)


def test_launch_file_declares_the_table_and_passes_typed_overrides() -> None:
    """Without launch: the file builds its arguments from ARGUMENTS and wraps every override
    in ParameterValue with its type (launch_ros parses untyped values as YAML)."""
    source = (ROOT / "launch/grasp_semantics.launch.py").read_text()
    tree = ast.parse(source)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    typed = [
        c
        for c in calls
        if getattr(c.func, "id", "") == "ParameterValue"
        and any(k.arg == "value_type" for k in c.keywords)
    ]
    assert typed, "overrides must be ParameterValue(..., value_type=...)"
    assert "parameter_overrides(" in source and "ARGUMENTS.items()" in source


# ---------------------------------------------------------------------------- with launch
def _share_prefix() -> Path | None:
    """An install prefix holding share/grasp_semantics and lib/grasp_semantics (the venv
    after scripts/setup.sh, or a colcon install)."""
    for prefix in [
        Path(sys.prefix),
        *map(Path, os.environ.get("AMENT_PREFIX_PATH", "").split(":")),
    ]:
        if (prefix / "share/grasp_semantics/package.xml").is_file() and (
            prefix / "lib/grasp_semantics/grasp_semantics_node"
        ).is_file():
            return prefix
    return None


LAUNCH_SCRIPT = r"""
import sys
from launch import LaunchService
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
service = LaunchService()
arguments = [tuple(a.split(":=", 1)) for a in sys.argv[2:]]
service.include_launch_description(IncludeLaunchDescription(
    PythonLaunchDescriptionSource(sys.argv[1]), launch_arguments=arguments))
sys.exit(service.run())
"""


@pytest.mark.ros
@pytest.mark.slow
def test_launch_file_starts_a_namespaced_node_with_typed_overrides(tmp_path) -> None:
    """Through launch_ros (a full ROS install): ``namespace:=robot1 model:=<dir named 2024>``
    and a params file that sets ``max_grasps`` start the node in /robot1 with the model
    directory '2024' loaded (a string), the params file's value kept, the inputs under
    /robot1, and rviz:=true without rviz2 only logging that it is missing."""
    pytest.importorskip("launch_ros", reason="launch_ros has no wheel here; runs on a robot")
    prefix = _share_prefix()
    if prefix is None:
        pytest.skip("grasp_semantics is not installed (scripts/setup.sh or colcon build)")
    import rclpy
    from rcl_interfaces.srv import GetParameters
    from rclpy.executors import SingleThreadedExecutor

    model_dir = tmp_path / "2024"
    shutil.copytree(ROOT / "grasp_semantics/weights/default", model_dir)
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump({"/**": {"ros__parameters": {"max_grasps": 3, "autostart": True}}})
    )
    env = dict(os.environ)
    env["AMENT_PREFIX_PATH"] = ":".join(
        filter(None, [str(prefix), os.environ.get("AMENT_PREFIX_PATH", "")])
    )
    launch_file = prefix / "share/grasp_semantics/launch/grasp_semantics.launch.py"
    launch = subprocess.Popen(
        [
            sys.executable, "-c", LAUNCH_SCRIPT, str(launch_file),
            "namespace:=robot1", f"params_file:={params}", "model:=2024", "rviz:=true",
        ],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("launch_probe", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        client = node.create_client(GetParameters, "/robot1/grasp_semantics/get_parameters")
        assert client.wait_for_service(timeout_sec=60), "no node in /robot1"
        values = None
        for _ in range(10):  # the node answers once autostart has loaded the model
            future = client.call_async(
                GetParameters.Request(names=["model", "max_grasps", "autostart"])
            )
            executor.spin_until_future_complete(future, timeout_sec=30)
            if future.result() is not None:
                values = future.result().values
                break
        assert values is not None, "the node never answered get_parameters"
        model, max_grasps, autostart = values
        assert model.string_value == "2024"  # a string, not the integer 2024
        assert max_grasps.integer_value == 3  # the params file's
        assert autostart.bool_value
        wanted = {"/robot1/camera/color/image_raw", "/robot1/grasp_semantics/instruction"}
        subscribed: set[str] = set()
        for _ in range(180):  # subscribed once active
            subscribed = {
                name
                for name, _ in node.get_subscriber_names_and_types_by_node(
                    "grasp_semantics", "/robot1"
                )
            }
            if wanted <= subscribed:
                break
            executor.spin_once(timeout_sec=0.5)
        assert wanted <= subscribed, subscribed
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
        launch.send_signal(signal.SIGINT)
        output = launch.communicate(timeout=60)[0]
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        get_package_prefix("rviz2")
    except PackageNotFoundError:
        assert "rviz2 is not installed" in output, output
