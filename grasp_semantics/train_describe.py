"""Train the describe head (caption / OCR / VQA) of a grasp model, leaving the grasp weights as
they are: ``grasp-semantics train-describe --config config/train_describe_tiny.yaml``.

The grasp model is loaded and frozen; only the :class:`SceneDescriber` parts train (low-rank
adapters on the backbone's layers, extra embedding rows, the output layer), on the captions,
questions, answers and printed labels of synthetic scenes (``data/questions.py``). Scenes are
generated once into shards under ``data.cache_dir`` (they do not depend on the model, so a
retrain on a new grasp model reuses them). The result is written to ``out_dir`` (by default
``describe/`` beside the grasp weights) and scored on held-out scenes
(``evaluate_describe.py``), the figures saved as ``eval.json`` beside it.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from grasp_semantics.data.questions import corpus, load_describe_data, prepare_describe_data
from grasp_semantics.evaluate_describe import held_out_items, score, without_examples
from grasp_semantics.models.describe import (
    DESCRIBE_DIR,
    DescribeConfig,
    SceneDescriber,
    task_prompt,
)
from grasp_semantics.train import (
    add_head_arguments,
    head_out_dir,
    head_run_config,
    load_run_config,
    lr_factor,
)


@dataclass
class DescribeDataConfig:
    cache_dir: str = "outputs/data/describe"
    train_scenes: int = 800
    train_seed: int = 0
    eval_split: str = "val"
    eval_scenes: int = 100
    eval_seed: int = 20_000_000
    vqa_per_scene: int = 4
    workers: int = 2


@dataclass
class DescribeOptimConfig:
    lr: float = 2e-3
    weight_decay: float = 0.0
    warmup_steps: int = 50
    steps: int = 900
    images_per_step: int = 4
    items_per_image: int = 4


@dataclass
class DescribeTrainConfig:
    """A describe training run on the grasp model ``model`` (a directory or ``default``)."""

    model: str = "default"
    out_dir: str | None = None  # None: <model directory>/describe
    describe: dict[str, Any] = field(default_factory=dict)  # DescribeConfig fields
    data: DescribeDataConfig = field(default_factory=DescribeDataConfig)
    optim: DescribeOptimConfig = field(default_factory=DescribeOptimConfig)
    seed: int = 0
    threads: int = 1
    log_every: int = 25

    @classmethod
    def load(cls, path: str | Path) -> DescribeTrainConfig:
        return load_run_config(cls, path, data=DescribeDataConfig, optim=DescribeOptimConfig)


def model_size_images(describer: SceneDescriber, images: np.ndarray) -> torch.Tensor:
    """uint8 images [N, H, W, 3] resized once to the describer's input size (the resize the
    encoder would do at every step), so training batches skip it."""
    h, w = describer.image_size
    out = []
    for start in range(0, len(images), 64):
        x = torch.from_numpy(images[start : start + 64]).permute(0, 3, 1, 2).float()
        x = F.interpolate(x, size=(h, w), mode="bicubic", antialias=True, align_corners=False)
        out.append(x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1))
    return torch.cat(out)


def train_describe(cfg: DescribeTrainConfig, progress: bool = True) -> dict[str, Any]:
    """Train, save and score the describe head; returns the held-out figures."""
    from grasp_semantics.predictor import GraspPredictor

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out_dir = head_out_dir(cfg.model, cfg.out_dir, DESCRIBE_DIR)
    model = GraspPredictor.from_pretrained(cfg.model, device="cpu").model
    model.requires_grad_(False)
    describer = SceneDescriber(model.encoder, DescribeConfig(**cfg.describe), corpus())
    data_dir = Path(cfg.data.cache_dir) / "train"
    prepare_describe_data(
        data_dir, "train", cfg.data.train_scenes, cfg.data.train_seed,
        cfg.data.vqa_per_scene, workers=cfg.data.workers, progress=progress,
    )  # fmt: skip
    scenes = load_describe_data(data_dir)[: cfg.data.train_scenes]
    images = model_size_images(describer, np.stack([image for _, image, _ in scenes]))
    items = [qa for _, _, qa in scenes]
    params = [p for p in describer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg.optim))
    rng = np.random.default_rng(cfg.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = (out_dir / "train_log.jsonl").open("w")
    describer.train()
    started = time.perf_counter()
    for step in range(1, cfg.optim.steps + 1):
        picked = rng.choice(len(scenes), cfg.optim.images_per_step, replace=False)
        prompts, answers, index = [], [], []
        for j, s in enumerate(picked):
            chosen = rng.permutation(len(items[s]))[: cfg.optim.items_per_image]
            for k in chosen:
                qa = items[s][k]
                prompts.append(task_prompt(qa.task, qa.prompt))
                answers.append(qa.answer)
                index.append(j)
        loss = describer.loss(images[picked], prompts, answers, index)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        if step % cfg.log_every == 0 or step == 1:
            row = {
                "step": step,
                "loss": round(float(loss.detach()), 4),
                "lr": scheduler.get_last_lr()[0],
                "sec": round(time.perf_counter() - started, 1),
            }
            log.write(json.dumps(row) + "\n")
            log.flush()
            if progress:
                print(row, flush=True)
    log.close()
    describer.eval()
    describer.save(out_dir)
    (out_dir / "train_config.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False))
    held_out = held_out_items(
        cfg.data.eval_split, cfg.data.eval_scenes, cfg.data.eval_seed, cfg.data.cache_dir
    )
    figures = {
        "model": cfg.model,
        "split": cfg.data.eval_split,
        "scenes": cfg.data.eval_scenes,
        "seed": cfg.data.eval_seed,
        **score(describer, held_out),
        "train_seconds": round(time.perf_counter() - started, 1),
    }
    (out_dir / "eval.json").write_text(json.dumps(figures, indent=1) + "\n")
    return figures


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    add_head_arguments(parser, "config/train_describe_tiny.yaml", "steps")


def run(args: argparse.Namespace, command: str) -> int:
    figures = train_describe(head_run_config(DescribeTrainConfig, args, "steps"))
    print(json.dumps(without_examples(figures), indent=1))
    return 0
