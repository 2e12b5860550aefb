"""Training: ``grasp-semantics train --config config/train_tiny.yaml``, one process or torchrun.

    torchrun --nproc_per_node=2 -m grasp_semantics.cli train --config config/train_tiny.yaml

Scenes from the synthetic generator are turned once into compact training examples (the image
at the model's input size, the cloud sampled to the model's point count by farthest point
sampling, labels and ground-truth grasps) and written as shards; training streams the shards,
each rank reading its own. The model is wrapped in DDP (gloo on CPU, NCCL on GPU); with a real
Qwen backbone on several GPUs, FSDP2 (``fully_shard`` per decoder layer) instead. The loop logs
the named loss terms, validates periodically (loss, contact AP, part accuracy), keeps
``checkpoint.pt`` for resuming and writes the best model with ``save_pretrained``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from grasp_semantics.data.catalogue import PROCEDURAL, Catalogue, catalogue
from grasp_semantics.data.shards import ExampleShards
from grasp_semantics.data.splits import check_not_final
from grasp_semantics.evaluation.metrics import contact_metrics, mean_metrics
from grasp_semantics.grasping.decoding import contact_probability
from grasp_semantics.models.config import GraspNetConfig, get_config
from grasp_semantics.models.criterion import GraspCriterion
from grasp_semantics.models.grasp_net import GraspNet
from grasp_semantics.models.tokenizer import CompactVocab
from grasp_semantics.training.examples import instruction_corpus, prepare_examples, reworded
from grasp_semantics.training.run_config import (
    Dist,
    init_distributed,
    load_run_config,
    lr_factor,
    merge_overrides,
)


@dataclass
class DataConfig:
    """Where the compact examples live and how many to make of each split."""

    cache_dir: str = "outputs/data"
    train_split: str = "train"
    train_scenes: int = 4000
    val_split: str = "val"
    val_scenes: int = 128
    seed: int = 0  # scene seeds of the training split start here
    val_seed: int = 10_000_000  # and those of the validation split here
    scenes_per_shard: int = 200
    workers: int = 2  # processes generating scenes (only when the cache is incomplete)
    reword_prob: float = 0.0  # chance a training instruction is said by another paraphrase
    objects: str | None = None  # a mesh folder to draw objects from (docs/mesh_folder.md)


@dataclass
class OptimConfig:
    lr: float = 1e-3
    backbone_lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 200
    steps: int = 4000
    # the learning-rate schedule's length; None: ``steps``. A resumed run keeps the schedule it
    # started with (from its checkpoint), whatever ``steps`` says now
    schedule_steps: int | None = None
    batch_size: int = 8  # per process
    grad_clip: float = 1.0


@dataclass
class TrainConfig:
    """A training run; ``model`` names a registry flavour, ``model_overrides`` edits it."""

    model: str = "tiny"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    out_dir: str = "outputs/train/tiny"
    init_from: str | None = None  # checkpoint dir whose weights start the run (same model)
    log_every: int = 25
    val_every: int = 500
    checkpoint_every: int = 250
    seed: int = 0
    threads: int = 0  # torch CPU threads per process; 0 = the machine's cores / processes

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainConfig:
        return load_run_config(cls, path, data=DataConfig, optim=OptimConfig)

    def model_config(self) -> GraspNetConfig:
        merged = merge_overrides(get_config(self.model).to_dict(), self.model_overrides)
        return GraspNetConfig.from_dict(merged)


# ----------------------------------------------------------------------------- distributed
def parallelize(model: GraspNet, env: Dist) -> torch.nn.Module:
    """DDP for small models; FSDP2 per decoder layer for real Qwen backbones on GPUs."""
    if env.world == 1:
        return model
    real_backbone = model.cfg.encoder.backbone.checkpoint is not None
    if real_backbone and env.device.type == "cuda":
        from torch.distributed.fsdp import fully_shard

        for module in model.encoder.backbone.modules():
            if type(module).__name__.endswith("DecoderLayer"):
                fully_shard(module)
        fully_shard(model)
        return model
    return DistributedDataParallel(model, find_unused_parameters=True)


# ---------------------------------------------------------------------------------- batches
def to_batch(examples: list[dict[str, Any]], device: torch.device) -> dict[str, Any]:
    """Stack compact examples into the batch format of :meth:`GraspNet.forward` + targets."""

    def stacked(key: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([e[key] for e in examples])).to(device)

    batch = {
        "images": stacked("image"),
        "instructions": [e["instruction"] for e in examples],
        "points": stacked("points"),
        "intrinsics": stacked("intrinsics"),
        "contact": stacked("contact"),
        "grasps": [torch.from_numpy(e["grasps"]) for e in examples],
        "grasp_widths": [torch.from_numpy(e["grasp_widths"]) for e in examples],
        "grasp_contacts": [torch.from_numpy(e["grasp_contacts"]) for e in examples],
        "fps_ordered": True,
    }
    if "on_target" in examples[0]:
        batch["on_target"] = stacked("on_target")
    return batch


def batches(
    shards: ExampleShards,
    batch_size: int,
    seed: int,
    split: str = "train",
    reword_prob: float = 0.0,
    objects: Catalogue = PROCEDURAL,
) -> Iterator[list[dict]]:
    """Endless shuffled batches (each epoch in a new order); a ``reword_prob`` share of the
    instructions reworded by another of ``split``'s paraphrases (:func:`reworded`)."""
    rng = np.random.default_rng(seed)
    epoch = 0
    while True:
        chunk: list[dict] = []
        for example in shards.iterate(seed=seed + epoch):
            if reword_prob > 0 and rng.random() < reword_prob:
                example = reworded(example, split, rng, objects)
            chunk.append(example)
            if len(chunk) == batch_size:
                yield chunk
                chunk = []
        epoch += 1


# ------------------------------------------------------------------------------------ loop
def make_optimizer(model: GraspNet, cfg: OptimConfig) -> torch.optim.Optimizer:
    backbone, rest = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (backbone if name.startswith("encoder.backbone.") else rest).append(param)
    groups = [{"params": rest, "lr": cfg.lr}]
    if backbone:
        groups.append({"params": backbone, "lr": cfg.backbone_lr})
    return torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)


def init_weights(model: GraspNet, directory: str, log: bool = True) -> None:
    """Load the weights saved in ``directory`` into ``model``: the same architecture, or one
    that adds a target head (``heads.target_head``), which then keeps its initialisation."""
    state = GraspNet.from_pretrained(directory).state_dict()
    missing, unexpected = model.load_state_dict(state, strict=False)
    not_added = [k for k in missing if not k.startswith("heads.target.")]
    if not_added or unexpected:
        raise RuntimeError(
            f"{directory} is not this model: missing {not_added[:5]}, unexpected {unexpected[:5]}"
        )
    if missing and log:
        print(f"init_from {directory}: the target head ({len(missing)} tensors) starts anew")


@torch.no_grad()
def validate(
    model: GraspNet, criterion: GraspCriterion, examples: list[dict], device: torch.device
) -> dict[str, float]:
    """Mean loss terms and contact metrics over ``examples``."""
    model.eval()
    rows = []
    for start in range(0, len(examples), 16):
        chunk = examples[start : start + 16]
        batch = to_batch(chunk, device)
        out = model(batch)
        _, terms = criterion(out, batch)
        probs = (
            contact_probability(
                batch["points"], out["contact_logits"], model.cfg.heads.contact_neighbours
            )
            .cpu()
            .numpy()
        )
        for i, example in enumerate(chunk):
            rows.append(
                {
                    **contact_metrics(probs[i], example["contact"]),
                    **{f"loss_{k}": float(v) for k, v in terms.items()},
                }
            )
    model.train()
    return mean_metrics(rows)


def train(
    cfg: TrainConfig,
    env: Dist | None = None,
    progress: bool = True,
    prepare: bool = True,
    stop_at: int | None = None,
) -> dict[str, Any]:
    """Run (or resume) the training described by ``cfg``; returns the last validation.

    ``prepare=False`` trains on the shards that exist (another process may still be adding
    them) instead of making the missing ones first. ``stop_at``: stop after that step (with a
    checkpoint, no ``final/``), so that a later call resumes there.

    The learning rate follows a schedule of ``cfg.optim.schedule_steps`` (default ``steps``)
    fixed when the run starts: a resumed run keeps its checkpoint's, and a different ``steps``
    only moves where it ends. The batches and random state after a resume are those the run
    would have had without the stop, so a stopped and resumed run trains as one that was not.
    """
    env = env or init_distributed()
    out_dir = Path(cfg.out_dir)
    checkpoint = out_dir / "checkpoint.pt"
    state = None
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location=env.device, weights_only=False)
    schedule_steps = cfg.optim.schedule_steps or cfg.optim.steps
    if state is not None:
        schedule_steps = state.get("schedule_steps", schedule_steps)
    cfg = replace(cfg, optim=replace(cfg.optim, schedule_steps=schedule_steps))
    end = cfg.optim.steps if stop_at is None else min(stop_at, cfg.optim.steps)
    model_cfg = cfg.model_config()
    data_dir = Path(cfg.data.cache_dir)
    check_not_final(cfg.data.seed, cfg.data.train_scenes, "training")
    check_not_final(cfg.data.val_seed, cfg.data.val_scenes, "validation")
    if env.main and prepare:
        for split, count, seed in (
            (cfg.data.train_split, cfg.data.train_scenes, cfg.data.seed),
            (cfg.data.val_split, cfg.data.val_scenes, cfg.data.val_seed),
        ):
            prepare_examples(
                data_dir / split,
                split,
                count,
                seed,
                model_cfg,
                cfg.data.scenes_per_shard,
                cfg.data.workers,
                progress,
                cfg.data.objects,
            )
    if env.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "train_config.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False))
    if env.world > 1:
        dist.barrier()
    train_shards = ExampleShards(data_dir / cfg.data.train_split, env.rank, env.world)
    val_examples = list(ExampleShards(data_dir / cfg.data.val_split).iterate(seed=None))

    torch.manual_seed(cfg.seed)
    model = GraspNet(model_cfg)
    if cfg.init_from:  # continue from trained weights, new schedule
        init_weights(model, cfg.init_from, log=env.main)
    elif model.encoder.compact is not None:  # rows for every word the instructions can use
        corpus = instruction_corpus(catalogue(cfg.data.objects))
        table = CompactVocab.from_texts(corpus, model.encoder.compact.size)
        model.encoder.compact.kept_ids.copy_(table.kept_ids)
    model = model.to(env.device)
    criterion = GraspCriterion(model_cfg.loss, model_cfg.heads)
    wrapped = parallelize(model, env)
    optimizer = make_optimizer(model, cfg.optim)
    schedule = replace(cfg.optim, steps=schedule_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, schedule))
    step, best = 0, -1.0
    stream = batches(
        train_shards, cfg.optim.batch_size, cfg.seed + 1000 * env.rank,
        cfg.data.train_split, cfg.data.reword_prob, catalogue(cfg.data.objects),
    )  # fmt: skip
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, best = state["step"], state["best"]
        if "rng" in state:
            torch.set_rng_state(state["rng"].cpu())
        for _ in range(step):  # the batches the run had before it stopped
            next(stream)
        if env.main:
            print(
                f"resumed from {checkpoint} at step {step} (learning-rate schedule of "
                f"{schedule_steps} steps, ending at step {cfg.optim.steps})"
            )
    bar = tqdm(total=end, initial=step, disable=not (progress and env.main))
    log = (out_dir / "log.jsonl").open("a") if env.main else None
    last_val: dict[str, float] = {}
    model.train()
    started, first_step = time.perf_counter(), step
    while step < end:
        batch = to_batch(next(stream), env.device)
        loss, terms = criterion(wrapped(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        optimizer.step()
        scheduler.step()
        step += 1
        bar.update()
        if env.main and (step % cfg.log_every == 0 or step == 1):
            row = {
                "step": step,
                "lr": scheduler.get_last_lr()[0],
                "grad_norm": float(grad_norm),
                "sec_per_step": (time.perf_counter() - started) / (step - first_step),
                **{k: round(float(v.detach()), 5) for k, v in terms.items()},
            }
            bar.set_postfix(loss=f"{row['loss']:.3f}", contact=f"{row['contact']:.3f}")
            log.write(json.dumps(row) + "\n")
            log.flush()
        is_last = step == cfg.optim.steps
        if step % cfg.val_every == 0 or is_last:
            if env.main:
                last_val = validate(model, criterion, val_examples, env.device)
                log.write(json.dumps({"step": step, "val": last_val}) + "\n")
                log.flush()
                bar.write(
                    f"step {step}: val loss {last_val['loss_loss']:.3f} "
                    f"part acc {last_val['part_accuracy']:.3f} AP {last_val['contact_ap']:.3f}"
                )
                if last_val["part_accuracy"] >= best:
                    best = last_val["part_accuracy"]
                    model.save_pretrained(out_dir / "best")
            if env.world > 1:
                dist.barrier()
        if env.main and (step % cfg.checkpoint_every == 0 or step == end):
            torch.save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "step": step,
                    "best": best,
                    "schedule_steps": schedule_steps,
                    "rng": torch.get_rng_state(),
                },
                checkpoint,
            )
    bar.close()
    if env.world > 1:  # replicas must hold the same weights after every step
        checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum()
        gathered = [torch.zeros_like(checksum) for _ in range(env.world)]
        dist.all_gather(gathered, checksum)
        if env.main:
            log.write(
                json.dumps({"step": step, "replica_checksums": [float(c) for c in gathered]})
            )
            log.write("\n")
    if env.main:
        if step == cfg.optim.steps:
            model.save_pretrained(out_dir / "final")
        log.close()
    return last_val


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--config", type=Path, default=Path("config/train_tiny.yaml"))
    parser.add_argument(
        "--steps",
        type=int,
        help="override optim.steps (on a resumed run: where it ends; the learning-rate "
        "schedule stays the one it started with)",
    )
    parser.add_argument(
        "--stop-at",
        type=int,
        help="stop after this step with a checkpoint (the schedule unchanged); run again "
        "without it to resume",
    )
    parser.add_argument("--out-dir", help="override out_dir")
    parser.add_argument(
        "--no-prepare", action="store_true", help="train on the example shards that exist"
    )


def run(args: argparse.Namespace, command: str) -> int:
    cfg = TrainConfig.load(args.config)
    if args.steps is not None:
        cfg.optim.steps = args.steps
    if args.out_dir:
        cfg.out_dir = args.out_dir
    env = init_distributed(cfg.threads)
    try:
        train(cfg, env, prepare=not args.no_prepare, stop_at=args.stop_at)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0
