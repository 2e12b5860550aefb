"""Shards round-trip; streaming splits the scenes over ranks and workers; collation."""

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from grasp_semantics.data.dataset import (
    SceneStream,
    ShardDataset,
    collate,
    iter_shard,
    read_index,
    write_shards,
)
from grasp_semantics.data.scene import Scene, generate_scene


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    write_shards(out, n_scenes=5, seed=100, split="train", scenes_per_shard=2)
    return out


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], k


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


def test_rerun_keeps_complete_shards(shard_dir):
    before = (shard_dir / "shard-000000.tar").stat().st_mtime_ns
    write_shards(shard_dir, n_scenes=5, seed=100, split="train", scenes_per_shard=2)
    assert (shard_dir / "shard-000000.tar").stat().st_mtime_ns == before


@pytest.mark.parametrize("world", [1, 2, 4])
def test_ranks_partition_the_scenes(shard_dir, world):
    seen = []
    for rank in range(world):
        seen += [it["seed"] for it in ShardDataset(shard_dir, rank=rank, world=world)]
    assert sorted(seen) == [100, 101, 102, 103, 104]


def test_loader_workers_partition_the_scenes(shard_dir):
    ds = ShardDataset(shard_dir, shuffle=True, seed=1)
    loader = DataLoader(ds, batch_size=None, num_workers=2, collate_fn=lambda x: x)
    seeds = [it["seed"] for it in loader]
    assert sorted(seeds) == [100, 101, 102, 103, 104]


def test_shuffle_changes_with_epoch(shard_dir):
    ds = ShardDataset(shard_dir, shuffle=True, seed=0)
    orders = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        order = tuple(it["seed"] for it in ds)
        assert sorted(order) == [100, 101, 102, 103, 104]
        orders.add(order)
    assert len(orders) > 1


def test_scene_stream_and_collate():
    items = list(SceneStream("val", seed=7, n_scenes=2))
    assert [it["seed"] for it in items] == [7, 8]
    batch = collate(items, num_points=4096)
    assert batch["points"].shape == (2, 4096, 3) and batch["points"].dtype == torch.float32
    assert batch["point_contact"].shape == (2, 4096) and batch["point_valid"].all()
    assert batch["pixels"].shape == (2, 4096, 2)
    g = max(len(it["grasps"]) for it in items)
    assert batch["grasps"].shape == (2, g, 4, 4)
    assert batch["grasp_valid"].sum() == sum(len(it["grasps"]) for it in items)
    assert isinstance(batch["rgb"], list) and batch["rgb"][0].dtype == np.uint8
    assert batch["instruction"] == [it["instruction"] for it in items]
    # sampled points keep their labels
    for b, it in enumerate(items):
        pts = it["points"]
        idx = np.nonzero((pts[:, None] == batch["points"][b, :50].numpy()[None]).all(-1))[0]
        assert len(idx) >= 50
    big = collate(items[:1], num_points=60000)  # more than the cloud: padded
    n = len(items[0]["points"])
    assert big["point_valid"].sum() == n and big["points"].shape == (1, 60000, 3)
