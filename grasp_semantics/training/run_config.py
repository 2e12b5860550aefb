"""What every training command shares: YAML run configs (loading, command-line overrides,
where a head is written), the distributed set-up under torchrun, and the learning-rate
schedule (linear warm-up, cosine decay)."""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import yaml

from grasp_semantics.share import config_file


def load_run_config(cls: type, path: str | os.PathLike, **sections: type) -> Any:
    """A run-config dataclass ``cls`` from a YAML file: unknown top-level keys are refused,
    and each named section (``data=DataConfig``...) is built as its own dataclass. A ``path``
    that does not exist names a shipped config (``config/train_tiny.yaml``) by its file name."""
    path = config_file(path)
    raw = yaml.safe_load(path.read_text()) or {}
    unknown = set(raw) - set(cls.__dataclass_fields__)
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
    for name, section in sections.items():
        raw[name] = section(**raw.get(name, {}))
    return cls(**raw)


def head_out_dir(model: str, out_dir: str | None, subdir: str) -> Path:
    """Where a head trained on the frozen grasp model ``model`` (a checkpoint directory or
    ``default``) is written: ``out_dir``, or ``subdir`` beside the grasp weights."""
    from grasp_semantics.inference.scene_questions import model_directory

    base_dir = model_directory(model)
    if base_dir is None:
        raise FileNotFoundError(f"model {model!r} is not a checkpoint directory")
    return Path(out_dir) if out_dir else base_dir / subdir


def add_head_arguments(parser: argparse.ArgumentParser, default_config: str, length: str) -> None:
    """The command line of a head's training run: ``--config``, ``--model``, ``--<length>``
    (overrides ``optim.<length>``) and ``--out-dir``."""
    parser.add_argument("--config", type=Path, default=Path(default_config))
    parser.add_argument("--model", help="override model (grasp checkpoint directory)")
    parser.add_argument(f"--{length}", type=int, help=f"override optim.{length}")
    parser.add_argument("--out-dir", help="override out_dir")


def head_run_config(cls: type, args: argparse.Namespace, length: str) -> Any:
    """``cls.load(args.config)`` with the overrides of :func:`add_head_arguments` applied."""
    cfg = cls.load(args.config)
    if args.model:
        cfg.model = args.model
    if getattr(args, length) is not None:
        setattr(cfg.optim, length, getattr(args, length))
    if args.out_dir:
        cfg.out_dir = args.out_dir
    return cfg


def merge_overrides(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied, nested dictionaries merged key by key."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_overrides(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(threads: int = 0) -> Dist:
    """Join the torchrun process group when WORLD_SIZE > 1 (gloo on CPU, NCCL on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
        # share the cores between the processes of this machine
        torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // max(1, world)))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, world, device)


def lr_factor(step: int, cfg: Any) -> float:
    """Linear warm-up, then cosine decay to 5% of the peak (``cfg``: any optimiser config
    with ``warmup_steps`` and ``steps``; the describe training shares it)."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
