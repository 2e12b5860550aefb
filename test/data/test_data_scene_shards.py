"""Scene shards round-trip losslessly, and a rerun keeps complete shards."""

import json

import numpy as np
import pytest

from grasp_semantics.data.scene import Scene, generate_scene
from grasp_semantics.data.scene_shards import (
    iter_shard,
    read_index,
    write_scene_shards,
)


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    write_scene_shards(out, n_scenes=5, seed=100, split="train", scenes_per_shard=2)
    return out


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], k


@pytest.mark.slow
def test_index_and_round_trip(shard_dir):
    index = read_index(shard_dir)
    assert index["n_scenes"] == 5 and index["split"] == "train"
    assert [s["seeds"] for s in index["shards"]] == [[100, 102], [102, 104], [104, 105]]
    json.dumps(index)
    items = [it for s in index["shards"] for it in iter_shard(shard_dir / s["file"])]
    assert [it["seed"] for it in items] == [100, 101, 102, 103, 104]
    fresh = generate_scene(102, "train")
    assert_same(items[2], fresh.to_dict())
    scene = Scene.from_dict(items[2])
    assert scene.objects == fresh.objects and scene.instruction == fresh.instruction


@pytest.mark.slow
def test_rerun_keeps_complete_shards(shard_dir):
    before = (shard_dir / "shard-000000.tar").stat().st_mtime_ns
    write_scene_shards(shard_dir, n_scenes=5, seed=100, split="train", scenes_per_shard=2)
    assert (shard_dir / "shard-000000.tar").stat().st_mtime_ns == before
