"""Scene shards on disk: whole generated scenes written and read back losslessly.

Layout of a data set directory written by ``write_scene_shards``::

    index.json        {"format", "split", "seed", "n_scenes", "shards": [{"file", "seeds"}],
                       "objects": the mesh folder the scenes' objects came from (when one did)}
    shard-000000.tar  one compressed ``<seed>.npz`` per scene
    ...

A scene's ``.npz`` holds ``Scene.to_dict()`` except that ``depth`` is stored as uint16 in
0.1 mm steps (the generator quantises depth to that unit, so this is lossless) and ``points``
are not stored but recomputed from depth, pixels and intrinsics: loading gives back
bit-identical arrays at about half the size.

This is the export format of ``grasp-semantics generate`` (whole scenes, for inspection or
other tools). Training makes its own compact examples from the same generator
(``training/examples.py``).
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

from grasp_semantics.data.catalogue import Catalogue
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


def _generate(args: tuple[int, str, SceneConfig | None, Catalogue | None]) -> bytes:
    seed, split, config, catalogue = args
    return scene_to_bytes(generate_scene(seed, split, config, catalogue))


def write_scene_shards(
    out_dir: str | Path,
    n_scenes: int,
    seed: int = 0,
    split: str = "train",
    scenes_per_shard: int = 256,
    config: SceneConfig | None = None,
    workers: int = 1,
    progress: bool = False,
    catalogue: Catalogue | None = None,
) -> Path:
    """Generate scenes ``seed .. seed + n_scenes - 1`` of ``split`` (objects from
    ``catalogue``, default the procedural world) into tar shards under ``out_dir`` and write
    ``index.json``; returns the index path. Each shard is written to a temporary name and
    renamed, and complete shards are kept, so a rerun resumes."""
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
            jobs = [(s, split, config, catalogue) for s in group]
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
    if catalogue is not None and catalogue.folder is not None:
        index["objects"] = str(catalogue.folder)
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
