"""Scene shards on disk, streaming datasets (from shards or generated on the fly) and collation.

Layout of a data set directory written by ``write_shards``::

    index.json        {"format", "split", "seed", "n_scenes", "shards": [{"file", "seeds"}]}
    shard-000000.tar  one compressed ``<seed>.npz`` per scene
    ...

A scene's ``.npz`` holds ``Scene.to_dict()`` except that ``depth`` is stored as uint16 in
0.1 mm steps (the generator quantises depth to that unit, so this is lossless) and ``points``
are not stored but recomputed from depth, pixels and intrinsics: loading gives back
bit-identical arrays at about half the size.

Streaming is rank- and worker-aware: with R DDP ranks and W loader workers, consumer
``rank * W + worker`` reads every (R*W)-th shard (or, with fewer shards than consumers,
every (R*W)-th scene of each shard), so no scene is read twice per epoch.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from grasp_semantics.data.render import depth_from_u16, depth_to_u16, pixels_to_points
from grasp_semantics.data.scene import Scene, SceneConfig, generate_scene

FORMAT = 1
INDEX = "index.json"


def scene_to_bytes(scene: Scene | dict, fields: Sequence[str] | None = None) -> bytes:
    """A compressed ``.npz`` of a scene (all fields, or only ``fields``)."""
    d = dict(scene.to_dict() if isinstance(scene, Scene) else scene)
    if fields is not None:
        d = {k: d[k] for k in fields}
    if "depth" in d:
        d["depth_u16"] = depth_to_u16(d.pop("depth"))
        if "pixels" in d and "intrinsics" in d:
            d.pop("points", None)
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in d.items()})
    return buf.getvalue()


def scene_from_bytes(data: bytes) -> dict[str, Any]:
    """Inverse of ``scene_to_bytes``: numpy arrays, with 0-d arrays turned into Python scalars
    and strings (``Scene.from_dict`` makes a ``Scene`` when every field is present)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        d = {k: (z[k].item() if z[k].ndim == 0 else z[k]) for k in z.files}
    if "depth_u16" in d:
        d["depth"] = depth_from_u16(d.pop("depth_u16"))
        if "points" not in d and "pixels" in d:
            d["points"] = pixels_to_points(d["depth"], d["pixels"], d["intrinsics"])
    return d


def _generate(args: tuple[int, str, SceneConfig | None]) -> bytes:
    seed, split, config = args
    return scene_to_bytes(generate_scene(seed, split, config))


def write_shards(
    out_dir: str | Path,
    n_scenes: int,
    seed: int = 0,
    split: str = "train",
    scenes_per_shard: int = 256,
    config: SceneConfig | None = None,
    workers: int = 1,
    progress: bool = False,
) -> Path:
    """Generate scenes ``seed .. seed + n_scenes - 1`` of ``split`` into tar shards under
    ``out_dir`` and write ``index.json``; returns the index path. Each shard is written to a
    temporary name and renamed, and complete shards are kept, so a rerun resumes."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seeds = list(range(seed, seed + n_scenes))
    groups = [seeds[i : i + scenes_per_shard] for i in range(0, n_scenes, scenes_per_shard)]
    entries = []
    pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_scenes, desc=f"generate {split}", unit="scene")
    try:
        for i, group in enumerate(groups):
            name = f"shard-{i:06d}.tar"
            entries.append({"file": name, "seeds": [group[0], group[-1] + 1]})
            path = out / name
            if path.exists():
                if bar is not None:
                    bar.update(len(group))
                continue
            jobs = [(s, split, config) for s in group]
            blobs = pool.imap(_generate, jobs) if pool else map(_generate, jobs)
            tmp = path.with_suffix(".tar.tmp")
            with tarfile.open(tmp, "w") as tar:
                for s, blob in zip(group, blobs, strict=True):
                    info = tarfile.TarInfo(f"{s:09d}.npz")
                    info.size = len(blob)
                    tar.addfile(info, io.BytesIO(blob))
                    if bar is not None:
                        bar.update(1)
            os.replace(tmp, path)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        if bar is not None:
            bar.close()
    index = {
        "format": FORMAT,
        "split": split,
        "seed": seed,
        "n_scenes": n_scenes,
        "scenes_per_shard": scenes_per_shard,
        "shards": entries,
    }
    path = out / INDEX
    path.write_text(json.dumps(index, indent=1))
    return path


def read_index(root: str | Path) -> dict:
    return json.loads((Path(root) / INDEX).read_text())


def iter_shard(path: str | Path) -> Iterator[dict[str, Any]]:
    """Scenes (dicts, see ``scene_from_bytes``) of one shard, in order."""
    with tarfile.open(path, "r") as tar:
        for member in tar:
            f = tar.extractfile(member)
            if f is not None:
                yield scene_from_bytes(f.read())


def _consumer() -> tuple[int, int]:
    """(index, count) of this data consumer over DDP ranks x loader workers."""
    rank, world = 0, 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    info = get_worker_info()
    wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
    return rank * nw + wid, world * nw


class ShardDataset(IterableDataset):
    """Streams the scenes of a ``write_shards`` directory, each consumer its own part.

    ``shuffle``: shard order (and scene order within a shard) reshuffled per ``set_epoch``.
    ``rank``/``world`` override the torch.distributed values (e.g. for tests).
    """

    def __init__(
        self,
        root: str | Path,
        shuffle: bool = False,
        seed: int = 0,
        rank: int | None = None,
        world: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.index = read_index(self.root)
        self.shards = [self.root / s["file"] for s in self.index["shards"]]
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        self.rank, self.world = rank, world

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return int(self.index["n_scenes"])

    def _me(self) -> tuple[int, int]:
        cid, count = _consumer()
        if self.rank is not None:
            info = get_worker_info()
            wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
            cid, count = self.rank * nw + wid, (self.world or 1) * nw
        return cid, count

    def __iter__(self) -> Iterator[dict[str, Any]]:
        cid, count = self._me()
        order = np.arange(len(self.shards))
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.shuffle:
            order = rng.permutation(order)
        if len(self.shards) >= count:
            for i in order[cid::count]:
                items = (
                    list(iter_shard(self.shards[i]))
                    if self.shuffle
                    else iter_shard(self.shards[i])
                )
                if self.shuffle:
                    items = [items[j] for j in rng.permutation(len(items))]
                yield from items
        else:  # fewer shards than consumers: split scene by scene
            k = 0
            for i in order:
                for item in iter_shard(self.shards[i]):
                    if k % count == cid:
                        yield item
                    k += 1


class SceneStream(IterableDataset):
    """Scenes generated on the fly: seeds ``seed, seed+1, ...`` (``n_scenes`` of them, or
    endless when None), seed ``i`` going to consumer ``i % consumers``."""

    def __init__(
        self,
        split: str = "train",
        seed: int = 0,
        n_scenes: int | None = None,
        config: SceneConfig | None = None,
    ) -> None:
        self.split, self.seed, self.n_scenes, self.config = split, seed, n_scenes, config

    def __iter__(self) -> Iterator[dict[str, Any]]:
        cid, count = _consumer()
        i = cid
        while self.n_scenes is None or i < self.n_scenes:
            yield generate_scene(self.seed + i, self.split, self.config).to_dict()
            i += count


PER_POINT = ("points", "pixels", "point_object", "point_part", "point_contact")


def collate(
    items: Sequence[dict[str, Any]], num_points: int = 20000, seed: int | None = 0
) -> dict[str, Any]:
    """Batch scene dicts: per-point arrays sampled (without replacement; padded by repeating
    points when a cloud is smaller) to ``num_points`` and stacked as tensors ``[B,N,...]``
    with ``point_valid`` [B,N] False on repeats; grasps padded to the largest G with
    ``grasp_valid`` [B,G]; images and depth kept as lists of numpy arrays; strings as lists."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {k: [] for k in (*PER_POINT, "point_valid")}
    for it in items:
        n = len(it["points"])
        if n >= num_points:
            idx = np.sort(rng.choice(n, num_points, replace=False))
            valid = np.ones(num_points, bool)
        else:
            idx = np.concatenate([np.arange(n), rng.integers(0, n, num_points - n)])
            valid = np.arange(num_points) < n
        for k in PER_POINT:
            out[k].append(it[k][idx])
        out["point_valid"].append(valid)
    batch = {k: torch.from_numpy(np.stack(v)) for k, v in out.items()}
    g = max(len(it["grasps"]) for it in items)
    grasps = np.zeros((len(items), g, 4, 4), np.float32)
    widths = np.zeros((len(items), g), np.float32)
    contacts = np.zeros((len(items), g, 2, 3), np.float32)
    gvalid = np.zeros((len(items), g), bool)
    for b, it in enumerate(items):
        m = len(it["grasps"])
        grasps[b, :m], widths[b, :m] = it["grasps"], it["grasp_widths"]
        contacts[b, :m], gvalid[b, :m] = it["grasp_contacts"], True
    batch.update(
        grasps=torch.from_numpy(grasps),
        grasp_widths=torch.from_numpy(widths),
        grasp_contacts=torch.from_numpy(contacts),
        grasp_valid=torch.from_numpy(gvalid),
        intrinsics=torch.from_numpy(np.stack([it["intrinsics"] for it in items])),
        target=torch.tensor([int(it["target"]) for it in items]),
        functional_part=torch.tensor([int(it["functional_part"]) for it in items]),
        rgb=[it["rgb"] for it in items],
        depth=[it["depth"] for it in items],
        instruction=[str(it["instruction"]) for it in items],
        task=[str(it["task"]) for it in items],
        seed=[int(it["seed"]) for it in items],
    )
    return batch
