"""`generate --objects FOLDER`: scenes drawn from a mesh folder carry the folder's categories,
instances, part names, task->part table and wordings, not the procedural world's."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from mesh_folders import MUG, PARTS, WORDINGS, user_folder

from grasp_semantics.cli import main
from grasp_semantics.data.catalogue import catalogue
from grasp_semantics.data.mesh_folder import export_objects
from grasp_semantics.data.objects import CATEGORY_PARTS, make_object
from grasp_semantics.data.scene import generate_scene
from grasp_semantics.data.scene_shards import iter_shard, read_index
from grasp_semantics.data.splits import split_pools
from grasp_semantics.data.wordings import TEMPLATES

BIN = Path(sys.prefix) / "bin"


def _check(scene: dict, drink_part: str) -> None:
    """The labels of one scene follow the folder: objects, parts, target part, wording."""
    objects = json.loads(scene["objects"])
    assert {o["instance_id"] for o in objects} <= {"mug/00", "mug/01", "bottle/00", "bottle/01"}
    for k, o in enumerate(objects):
        on = scene["point_object"] == k
        assert set(np.unique(scene["point_part"][on])) <= set(range(len(o["part_names"])))
        if o["category"] == "mug":
            assert o["part_names"] == PARTS
            # the folder's part order: grip (the procedural handle) is part 0
            mine = scene["mesh_part"][scene["mesh_object"] == k]
            original = make_object("mug", int(o["instance_id"][-2:])).mesh.part
            for name, old in (("grip", "handle"), ("cup_body", "body")):
                counts = (mine == PARTS.index(name)).sum(), (original == MUG.index(old)).sum()
                assert counts[0] == counts[1] > 0
        else:
            assert o["part_names"] == list(CATEGORY_PARTS["bottle"])
    target = objects[scene["target"]]
    assert scene["task"] == "drink" and target["category"] == "mug"
    assert target["part_names"][scene["functional_part"]] == drink_part
    expected = (scene["point_object"] == scene["target"]) & (
        scene["point_part"] == scene["functional_part"]
    )
    assert expected.any() and np.array_equal(scene["point_contact"].astype(bool), expected)
    assert "beaker" in scene["reference"]
    wording = scene["instruction"][0].lower() + scene["instruction"][1:]
    assert wording in {w.format(obj=scene["reference"]) for w in WORDINGS}


@pytest.mark.slow  # the installed command: 8 s on a 2-core CPU
@pytest.mark.skipif(not (BIN / "grasp-semantics").is_file(), reason="run scripts/setup.sh")
def test_generate_renders_a_mesh_folder_with_its_labels(tmp_path) -> None:
    folder = user_folder(tmp_path / "objects", drink_part="grip")
    work = tmp_path / "elsewhere"
    work.mkdir()
    command = ["generate", "--objects", str(folder), "--scenes", "3", "--out", "data"]
    done = subprocess.run(
        [str(BIN / "grasp-semantics"), *command],
        cwd=work,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert read_index(work / "data")["objects"] == str(folder.resolve())
    scenes = list(iter_shard(work / "data/shard-000000.tar"))
    assert len(scenes) == 3
    for scene in scenes:
        _check(scene, "grip")

    # the same folder with drink grasping the body instead: the contact labels follow
    changed = shutil.copytree(folder, tmp_path / "changed")
    index = yaml.safe_load((changed / "objects.yaml").read_text())
    index["tasks"]["drink"]["mug"] = "cup_body"
    (changed / "objects.yaml").write_text(yaml.safe_dump(index, sort_keys=False))
    for seed in range(2):
        scene = generate_scene(seed, "train", catalogue=catalogue(changed))
        _check(scene.to_dict(), "cup_body")


def test_a_folder_is_split_like_the_procedural_world(tmp_path) -> None:
    folder = export_objects(tmp_path / "objects", categories=("mug", "knife"), instances=4)
    index = yaml.safe_load((folder / "objects.yaml").read_text())
    known = {t: table for t, table in index["tasks"].items() if t in TEMPLATES}
    index["tasks"] = known
    (folder / "objects.yaml").write_text(yaml.safe_dump(index, sort_keys=False))
    objects = catalogue(folder)
    assert objects.templates["hand over"] == TEMPLATES["hand over"]  # data.tasks words it
    assert objects.nouns["mug"] == ("mug", "coffee mug")
    train, test = split_pools("train", objects), split_pools("test_instance", objects)
    for c in ("mug", "knife"):  # one of four instances held out, none shared
        assert len(test.instances[c]) == 1 and len(train.instances[c]) == 3
        assert not set(test.instances[c]) & set(train.instances[c])
    # known tasks keep the procedural held-out wordings
    assert split_pools("test_paraphrase", objects).paraphrases == {
        t: split_pools("test_paraphrase").paraphrases[t] for t in known
    }
    assert set(split_pools("all", objects).pairs) == {
        (t, c) for t, cs in known.items() for c in cs
    }


def test_a_bad_folder_is_refused_naming_the_file(tmp_path, capsys) -> None:
    folder = user_folder(tmp_path / "objects", drink_part="grip")
    path = folder / "objects.yaml"
    good = path.read_text()

    def refused(change, match: str, where: Path = path) -> None:
        index = yaml.safe_load(good)
        change(index)
        path.write_text(yaml.safe_dump(index, sort_keys=False))
        out = tmp_path / "data"
        assert (
            main(["generate", "--objects", str(folder), "--scenes", "1", "--out", str(out)]) == 2
        )
        error = capsys.readouterr().err
        assert str(where) in error and match in error, error

    refused(lambda i: i["tasks"].update(juggle={"mug": "grip"}), "'juggle' has no wordings")
    refused(lambda i: i["tasks"].update(drink={"mug": "spout"}), "not one of that category's")
    refused(lambda i: i["wordings"].update(drink=["drink up"]), "{obj}")
    refused(lambda i: i["tasks"].update(drink={"cup": "body"}), "'cup', which is not under")
    path.write_text(good)
    (folder / "mug/01/grip.ply").unlink()
    refused(lambda i: None, "missing grip", where=folder / "mug/01")
    refused(lambda i: i.update(instances=3), "'instances' is not laid out")
