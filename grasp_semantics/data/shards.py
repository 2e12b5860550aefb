"""Record shards: ``shard-KKKKK.npz`` files of stacked per-scene records, written atomically by
worker processes (an interrupted run resumes) and streamed per DDP rank. Training examples and
scene-question records are stored this way.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm


def write_shards(
    out_dir: Path,
    make: Callable[[tuple], dict[str, Any]],
    job_args: tuple,
    count: int,
    seed: int,
    per_shard: int,
    workers: int,
    desc: str,
    progress: bool = True,
    compressed: bool = False,
) -> Path:
    """Shards ``shard-KKKKK.npz`` of ``count`` records ``make((scene_seed, *job_args))`` for
    scene seeds ``seed``, ``seed + 1``..., made in ``workers`` spawned processes. Shards already
    present are kept (this resumes); each is written to a temporary file and renamed, so an
    interrupted run never leaves a partial shard."""
    shards = math.ceil(count / per_shard)
    todo = [k for k in range(shards) if not (out_dir / f"shard-{k:05d}.npz").is_file()]
    if not todo:
        return out_dir
    save = np.savez_compressed if compressed else np.savez
    bar = tqdm(total=len(todo) * per_shard, desc=desc, disable=not progress)
    with multiprocessing.get_context("spawn").Pool(max(1, workers)) as pool:
        for k in todo:
            seeds = range(seed + k * per_shard, seed + min(count, (k + 1) * per_shard))
            records = []
            for record in pool.imap(make, [(s, *job_args) for s in seeds]):
                records.append(record)
                bar.update()
            arrays = {key: np.stack([r[key] for r in records]) for key in records[0]}
            temporary = out_dir / f"shard-{k:05d}.tmp.npz"
            save(temporary, **arrays)
            os.replace(temporary, out_dir / f"shard-{k:05d}.npz")
    bar.close()
    return out_dir


class ExampleShards:
    """The shards of one split; rank ``rank`` of ``world`` reads every world-th shard.

    The directory is listed again at every pass, so training can start while
    :func:`prepare_examples` is still adding shards.
    """

    def __init__(self, directory: Path, rank: int = 0, world: int = 1) -> None:
        self.directory, self.rank, self.world = Path(directory), rank, world
        if not self._files():
            raise FileNotFoundError(f"no example shards in {directory}")

    def _files(self) -> list[Path]:
        return sorted(
            f for f in self.directory.glob("shard-*.npz") if not f.name.endswith(".tmp.npz")
        )

    def iterate(self, seed: int | None) -> Iterator[dict[str, Any]]:
        """Examples in shuffled order (``seed``), or in file order when ``seed`` is None."""
        rng = np.random.default_rng(seed) if seed is not None else None
        files = self._files()
        shared = len(files) < self.world  # too few shards: split their examples instead
        if not shared:
            files = files[self.rank :: self.world]
        if rng is not None:
            rng.shuffle(files)
        for path in files:
            with np.load(path) as data:
                arrays = {key: data[key] for key in data.files}
            order = np.arange(len(arrays["seed"]))
            if shared:
                order = order[self.rank :: self.world]
            if rng is not None:
                rng.shuffle(order)
            for i in order:
                example = {key: value[i] for key, value in arrays.items()}
                for key in ("instruction", "task", "reference"):
                    if key in example:
                        example[key] = str(example[key])
                count = int(example["grasp_count"])
                for key in ("grasps", "grasp_widths", "grasp_contacts"):
                    example[key] = example[key][:count]
                yield example
