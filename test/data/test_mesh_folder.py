"""The mesh-folder format: procedural objects written out and read back keep their labels."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from grasp_semantics.data.mesh_folder import export_objects, load_objects
from grasp_semantics.data.objects import CATEGORY_PARTS, make_object
from grasp_semantics.data.tasks import TASK_PARTS


def test_exported_objects_read_back_with_the_same_labels(tmp_path) -> None:
    folder = export_objects(tmp_path / "objects", categories=("mug", "bottle"), instances=2)
    assert (folder / "mug/01/handle.ply").is_file() and (folder / "bottle/00/cap.ply").is_file()
    loaded = load_objects(folder)
    assert loaded.category_parts == {c: CATEGORY_PARTS[c] for c in ("mug", "bottle")}
    assert loaded.task_parts["open"] == {"bottle": "cap"}
    assert loaded.task_parts["hand over"] == {
        c: p for c, p in TASK_PARTS["hand over"].items() if c in ("mug", "bottle")
    }
    assert [o.instance_id for o in loaded.objects] == [
        "mug/00",
        "mug/01",
        "bottle/00",
        "bottle/01",
    ]
    for obj in loaded.objects:
        original = make_object(obj.category, obj.index)
        assert obj.colour_name == original.colour_name and obj.part_names == original.part_names
        np.testing.assert_allclose(obj.half_extent, original.half_extent, atol=1e-6)
        assert obj.height == pytest.approx(original.height, abs=1e-6)
        for p in range(len(obj.part_names)):  # every triangle where it was, with its part
            mine, theirs = obj.mesh.part == p, original.mesh.part == p
            assert mine.sum() == theirs.sum() > 0
            corners = obj.mesh.vertices[obj.mesh.triangles[mine]]
            expected = original.mesh.vertices[original.mesh.triangles[theirs]]
            np.testing.assert_allclose(corners, expected, atol=1e-6)
            np.testing.assert_allclose(
                obj.mesh.colour[mine], original.mesh.colour[theirs], atol=1 / 255 + 1e-6
            )


def test_a_folder_that_does_not_match_its_index_is_refused(tmp_path) -> None:
    folder = export_objects(tmp_path / "objects", categories=("mug",), instances=1)
    (folder / "mug/00/handle.ply").rename(folder / "mug/00/lid.ply")
    with pytest.raises(ValueError, match="one mesh file per part"):
        load_objects(folder)
    (folder / "mug/00/lid.ply").rename(folder / "mug/00/handle.ply")
    index = yaml.safe_load((folder / "objects.yaml").read_text())
    index["tasks"]["drink"] = {"mug": "spout"}
    (folder / "objects.yaml").write_text(yaml.safe_dump(index))
    with pytest.raises(ValueError, match="not one of that category's parts"):
        load_objects(folder)
    with pytest.raises(FileNotFoundError):
        load_objects(tmp_path)
