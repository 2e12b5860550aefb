"""Parameters: declared with descriptors, mirrored by the YAML file and README's table (the
launch file: test_launch_file.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rclpy.parameter import Parameter

from grasp_semantics.ros.node import GraspSemanticsNode
from grasp_semantics.ros.parameters import PARAMETERS

ROOT = Path(__file__).resolve().parents[2]


def flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_yaml_holds_every_parameter_with_its_default() -> None:
    document = yaml.safe_load((ROOT / "config/grasp_semantics.yaml").read_text())
    values = flatten(document["/**"]["ros__parameters"])
    assert values == {param.name: param.default for param in PARAMETERS}


def test_every_parameter_is_declared_with_a_descriptor_and_ranges_hold(ros_context) -> None:
    node = GraspSemanticsNode(context=ros_context)
    try:
        for param in PARAMETERS:
            assert node.has_parameter(param.name)
            descriptor = node.describe_parameter(param.name)
            assert descriptor.description, param.name
            if param.range is not None:
                assert descriptor.floating_point_range or descriptor.integer_range, param.name
        result = node.set_parameters([Parameter("score_threshold", value=1.5)])[0]
        assert not result.successful
        assert node.get_parameter("score_threshold").value == 0.0
        assert node.set_parameters([Parameter("score_threshold", value=0.25)])[0].successful
        result = node.set_parameters([Parameter("max_grasps", value=0)])[0]
        assert not result.successful
    finally:
        node.destroy_node()


def test_params_file_is_applied_by_ros_args(ros_context, tmp_path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {"/**": {"ros__parameters": {"max_grasps": 3, "gripper": {"max_width": 0.1}}}}
        )
    )
    node = GraspSemanticsNode(
        context=ros_context, cli_args=["--ros-args", "--params-file", str(params)]
    )
    try:
        assert node.get_parameter("max_grasps").value == 3
        assert node.get_parameter("gripper.max_width").value == pytest.approx(0.1)
    finally:
        node.destroy_node()


def test_thinning_default_is_the_training_scenes_cloud_size_everywhere():
    """The predictor's, the node's and evaluate's default thinning is the data set's cloud
    size (the density the planner and the grasp scorer were tuned and trained at)."""
    from grasp_semantics.data.scene import SceneConfig
    from grasp_semantics.inference.predictor import MAX_CLOUD_POINTS

    node_default = next(p.default for p in PARAMETERS if p.name == "max_cloud_points")
    assert MAX_CLOUD_POINTS == SceneConfig.max_points == node_default


def readme_parameter_rows() -> list[list[str]]:
    """The cells of README.md's parameter table, one list per row, in order."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("| parameter | default | range | meaning |") + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def readme_default(value: object) -> str:
    """How README writes a default: booleans lower case, text in backticks, "" for empty."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f"`{value}`" if value else '""'
    return str(value)


def test_readme_parameter_table_is_the_declared_table() -> None:
    rows = readme_parameter_rows()
    assert [row[0].strip("`") for row in rows] == [p.name for p in PARAMETERS]
    for (_, default, allowed, meaning), param in zip(rows, PARAMETERS, strict=True):
        assert default == readme_default(param.default), param.name
        if param.range is not None:
            integral = isinstance(param.default, int)
            low, high = (f"{int(b)}" if integral else f"{b:g}" for b in param.range)
            assert allowed == f"{low} – {high}", param.name
        elif param.choices:
            assert allowed == ", ".join(c or '""' for c in param.choices), param.name
        assert ("(run time)" in meaning) == param.dynamic, param.name
