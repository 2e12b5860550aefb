"""Train the describe head (caption / OCR / VQA) of a grasp model, leaving the grasp weights as
they are: ``grasp-semantics train-describe --config config/train_describe_tiny.yaml``.

The grasp model is loaded and frozen; only the :class:`SceneDescriber` parts train (low-rank
adapters on the backbone's layers, extra embedding rows, the output layer), on the captions,
questions, answers and printed labels of synthetic scenes (``data/questions.py``).

Training has two phases. The grasp-trained vision tower keeps little of what a question asks
about (the point cloud carries the colours the grasp task needs), and a language model learning
from answers alone settles on the data's priors before it learns to look. So an optional first
phase (``align``) trains the vision adapters alone to say, through a linear read-out dropped
afterwards, which category and colour each visual token shows, labelled from the renderer's
object masks. The second phase trains everything on the questions and answers. Scenes are
generated once into shards under ``data.cache_dir`` (they do not depend on the model, so a
retrain on a new grasp model reuses them). The result is written to ``out_dir`` (by default
``describe/`` beside the grasp weights) and scored on held-out scenes
(``evaluation/evaluate_describe.py``), the figures saved as ``eval.json`` beside it.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from grasp_semantics.data.objects import CATEGORIES, COLOUR_NAMES
from grasp_semantics.data.questions import (
    NO_TEXT,
    QA,
    corpus,
    every_label_text,
    label_texts,
    load_describe_data,
    load_describe_layouts,
    load_label_boxes,
    prepare_describe_data,
)
from grasp_semantics.data.splits import check_not_final
from grasp_semantics.evaluation.evaluate_describe import held_out_items, score, without_examples
from grasp_semantics.models.describe_config import DESCRIBE_DIR, DescribeConfig, task_prompt
from grasp_semantics.models.scene_describer import SceneDescriber
from grasp_semantics.training.run_config import (
    add_head_arguments,
    head_out_dir,
    head_run_config,
    load_run_config,
    lr_factor,
)
from grasp_semantics.training.train_reading import (
    DescribeReadConfig,
    fit_locator,
    glyph_batch,
    located_fraction,
    locator_targets,
    reading_batch,
    train_glyphs,
)


@dataclass
class DescribeDataConfig:
    cache_dir: str = "outputs/data/describe_v3"  # v3: shards carry label boxes
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
    vision_lr_scale: float = 1.0  # the vision adapters' learning rate, relative to lr


@dataclass
class DescribeAlignConfig:
    """The first phase: vision adapters and a linear read-out of each visual token's category
    and colour (0 steps: no such phase)."""

    steps: int = 0
    lr: float = 2e-3
    images_per_step: int = 16
    min_fraction: float = 0.08  # of a token's pixels an object covers to be what it shows


@dataclass
class DescribeTrainConfig:
    """A describe training run on the grasp model ``model`` (a directory or ``default``)."""

    model: str = "default"
    out_dir: str | None = None  # None: <model directory>/describe
    describe: dict[str, Any] = field(default_factory=dict)  # DescribeConfig fields
    data: DescribeDataConfig = field(default_factory=DescribeDataConfig)
    align: DescribeAlignConfig = field(default_factory=DescribeAlignConfig)
    read: DescribeReadConfig = field(default_factory=DescribeReadConfig)
    optim: DescribeOptimConfig = field(default_factory=DescribeOptimConfig)
    seed: int = 0
    threads: int = 1
    log_every: int = 25

    @classmethod
    def load(cls, path: str | Path) -> DescribeTrainConfig:
        sections = {
            "data": DescribeDataConfig,
            "align": DescribeAlignConfig,
            "read": DescribeReadConfig,
        }
        return load_run_config(cls, path, **sections, optim=DescribeOptimConfig)


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


def token_labels(
    mask: np.ndarray,
    objects: list[tuple[str, str]],
    grid: tuple[int, int],
    min_fraction: float,
) -> np.ndarray:
    """Category and colour class [2, rows*cols] of each visual token of a ``grid`` (rows, cols)
    over an image whose object index per pixel is ``mask`` [H, W] (negative: no object): the
    object covering most of the token's pixels if it covers at least ``min_fraction`` of them,
    as 1 + its index in CATEGORIES / COLOUR_NAMES; 0 where no object does."""
    rows, cols = grid
    h, w = mask.shape
    cell = (np.arange(h)[:, None] * rows // h) * cols + np.arange(w)[None, :] * cols // w
    labels = np.zeros((2, rows * cols), dtype=np.int64)
    on = mask >= 0
    if not objects or not on.any():
        return labels
    k = len(objects)
    counts = np.bincount(cell[on] * k + mask[on], minlength=rows * cols * k).reshape(-1, k)
    area = np.bincount(cell.ravel(), minlength=rows * cols)  # pixels per token
    best = counts.argmax(1)
    covered = counts[np.arange(rows * cols), best] >= min_fraction * area
    category = np.array([1 + CATEGORIES.index(c) for c, _ in objects])
    colour = np.array([1 + COLOUR_NAMES.index(c) for _, c in objects])
    labels[0] = np.where(covered, category[best], 0)
    labels[1] = np.where(covered, colour[best], 0)
    return labels


def layout_labels(
    describer: SceneDescriber, directory: Path, count: int, min_fraction: float
) -> torch.Tensor:
    """Token labels [N, 2, rows*cols] of the first ``count`` scenes of ``directory``."""
    grid = describer.encoder.token_grid(describer.image_size)
    layouts = load_describe_layouts(directory)[:count]
    return torch.from_numpy(np.stack([token_labels(m, o, grid, min_fraction) for m, o in layouts]))


def _readout_logits(
    describer: SceneDescriber, readout: torch.nn.Linear, images: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Category [B, T, 1+C] and colour [B, T, 1+K] scores of each visual token."""
    scores = readout(describer.visual_tokens(images).float())
    return scores[..., : len(CATEGORIES) + 1], scores[..., len(CATEGORIES) + 1 :]


def align_vision(
    describer: SceneDescriber,
    images: torch.Tensor,
    labels: torch.Tensor,
    cfg: DescribeAlignConfig,
    rng: np.random.Generator,
    log: Callable[[dict[str, Any]], None] | None = None,
    log_every: int = 25,
) -> torch.nn.Linear:
    """Train the vision adapters (and a linear read-out, returned) to classify each visual
    token's category and colour (``labels`` [N, 2, T] of model-size images [N, H, W, 3])."""
    readout = torch.nn.Linear(
        describer.encoder._hidden_size(), len(CATEGORIES) + len(COLOUR_NAMES) + 2
    )
    params = [*vision_parameters(describer), *readout.parameters()]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    started = time.perf_counter()
    for step in range(1, cfg.steps + 1):
        picked = rng.choice(len(images), min(cfg.images_per_step, len(images)), replace=False)
        category, colour = _readout_logits(describer, readout, images[picked])
        loss = F.cross_entropy(category.flatten(0, 1), labels[picked, 0].flatten())
        loss = loss + F.cross_entropy(colour.flatten(0, 1), labels[picked, 1].flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if log is not None and (step % log_every == 0 or step == 1):
            log(
                {
                    "phase": "align",
                    "step": step,
                    "loss": round(float(loss.detach()), 4),
                    "sec": round(time.perf_counter() - started, 1),
                }
            )
    return readout


@torch.no_grad()
def alignment_accuracy(
    describer: SceneDescriber, readout: torch.nn.Linear, images: torch.Tensor, labels: torch.Tensor
) -> dict[str, float]:
    """Read-out accuracy of category and colour over the visual tokens that show an object."""
    hits, tokens = np.zeros(2), 0
    for start in range(0, len(images), 16):
        scores = _readout_logits(describer, readout, images[start : start + 16])
        truth = labels[start : start + 16]
        shown = truth[:, 0] > 0
        for i in range(2):
            hits[i] += int((scores[i].argmax(-1) == truth[:, i])[shown].sum())
        tokens += int(shown.sum())
    return {
        "category": float(hits[0] / max(tokens, 1)),
        "colour": float(hits[1] / max(tokens, 1)),
        "object_tokens": tokens,
    }


def held_out_scenes(cfg: DescribeTrainConfig) -> tuple[Path, np.ndarray]:
    """The shard directory of the held-out scenes the figures are scored on (rendered there
    if missing) and their full-size images [N, H, W, 3]."""
    eval_dir = Path(cfg.data.cache_dir) / cfg.data.eval_split
    prepare_describe_data(
        eval_dir, cfg.data.eval_split, cfg.data.eval_scenes, cfg.data.eval_seed, progress=False
    )
    scenes = load_describe_data(eval_dir)[: cfg.data.eval_scenes]
    return eval_dir, np.stack([image for _, image, _ in scenes])


def held_out_alignment(
    describer: SceneDescriber,
    readout: torch.nn.Linear,
    cfg: DescribeTrainConfig,
    eval_dir: Path,
    eval_images: np.ndarray,
) -> dict[str, float]:
    """:func:`alignment_accuracy` on the held-out scenes (:func:`held_out_scenes`)."""
    images = model_size_images(describer, eval_images)
    labels = layout_labels(describer, eval_dir, len(eval_images), cfg.align.min_fraction)
    return alignment_accuracy(describer, readout, images, labels)


def _ocr_answer(items: list[QA]) -> str:
    """The label a scene's OCR item reads ("" when it has none)."""
    answer = next(q.answer for q in items if q.task == "ocr")
    return "" if answer == NO_TEXT else answer


def vision_parameters(describer: SceneDescriber) -> list[torch.nn.Parameter]:
    """The describer's adapters on the vision tower (patch embedding, blocks, mergers)."""
    return [p for name, p in describer.lora.named_parameters() if "visual" in name]


def train_describe(cfg: DescribeTrainConfig, progress: bool = True) -> dict[str, Any]:
    """Train, save and score the describe head; returns the held-out figures."""
    from grasp_semantics.inference.predictor import GraspPredictor

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out_dir = head_out_dir(cfg.model, cfg.out_dir, DESCRIBE_DIR)
    model = GraspPredictor.from_pretrained(cfg.model, device="cpu").model
    model.requires_grad_(False)
    describer = SceneDescriber(model.encoder, DescribeConfig(**cfg.describe), corpus())
    check_not_final(cfg.data.train_seed, cfg.data.train_scenes, "training")
    check_not_final(cfg.data.eval_seed, cfg.data.eval_scenes, "held-out")
    data_dir = Path(cfg.data.cache_dir) / "train"
    prepare_describe_data(
        data_dir,
        "train",
        cfg.data.train_scenes,
        cfg.data.train_seed,
        cfg.data.vqa_per_scene,
        workers=cfg.data.workers,
        progress=progress,
    )
    scenes = load_describe_data(data_dir)[: cfg.data.train_scenes]
    full_images = np.stack([image for _, image, _ in scenes])
    images = model_size_images(describer, full_images)
    reading = describer.reads and cfg.read.ocr_views_per_step > 0
    # with a reading view, OCR is asked of reading views only (the scene view never reads)
    items = [[q for q in qa if not (reading and q.task == "ocr")] for _, _, qa in scenes]
    rng = np.random.default_rng(cfg.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_file = (out_dir / "train_log.jsonl").open("w")

    def log(row: dict[str, Any]) -> None:
        log_file.write(json.dumps(row) + "\n")
        log_file.flush()
        if progress:
            print(row, flush=True)

    describer.train()
    started = time.perf_counter()
    alignment, glyphs, located = None, None, None
    if cfg.align.steps > 0 or describer.reads:
        eval_dir, eval_images = held_out_scenes(cfg)
    if describer.reads:
        boxes = load_label_boxes(data_dir)[: len(scenes)]
        grid = describer.encoder.token_grid(describer.image_size)
        token, offset = locator_targets(boxes, full_images.shape[1:3], grid)
    if cfg.align.steps > 0:
        labels = layout_labels(describer, data_dir, len(scenes), cfg.align.min_fraction)
        readout = align_vision(describer, images, labels, cfg.align, rng, log, cfg.log_every)
        alignment = held_out_alignment(describer, readout, cfg, eval_dir, eval_images)
        log({"phase": "align", "held_out": alignment})
    if describer.reads and cfg.read.glyph_steps > 0:
        unlabelled = full_images[boxes[:, 0] < 0]
        eval_crops = glyph_batch(
            describer,
            eval_images,
            label_texts(cfg.data.eval_split),
            120,
            cfg.read.font_sizes,
            np.random.default_rng(cfg.seed + 1),
        )
        glyphs = train_glyphs(
            describer,
            unlabelled,
            label_texts("train"),
            eval_crops[:2],
            cfg.read,
            rng,
            log,
            cfg.log_every,
        )
        log({"phase": "glyphs", "held_out": glyphs})
    vision = {id(p) for p in vision_parameters(describer)}
    fitted_last: set[int] = set()  # the locator: fitted after training, on the final tokens
    if describer.reads:
        vision |= {id(p) for p in describer.reader.parameters()}
        fitted_last = {id(p) for p in describer.locator.parameters()}
    params = [p for p in describer.parameters() if p.requires_grad and id(p) not in fitted_last]
    lr = cfg.optim.lr
    groups = [
        {"params": [p for p in params if id(p) not in vision], "lr": lr},
        {"params": [p for p in params if id(p) in vision], "lr": lr * cfg.optim.vision_lr_scale},
    ]
    optimizer = torch.optim.AdamW(groups, lr=lr, weight_decay=cfg.optim.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg.optim))
    if reading:
        ocr_answers = [_ocr_answer(qa) for _, _, qa in scenes]
        ocr_prompt = task_prompt("ocr")
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
        if reading:
            crops, read_answers = reading_batch(
                describer,
                full_images,
                boxes,
                ocr_answers,
                every_label_text(),
                cfg.read.ocr_views_per_step,
                cfg.read,
                rng,
            )
            prompts = [ocr_prompt] * len(read_answers)
            loss = loss + describer.loss(crops, prompts, read_answers, reading=True)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        if step % cfg.log_every == 0 or step == 1:
            log(
                {
                    "step": step,
                    "loss": round(float(loss.detach()), 4),
                    "lr": scheduler.get_last_lr()[0],
                    "sec": round(time.perf_counter() - started, 1),
                }
            )
    describer.eval()
    if describer.reads and cfg.read.locator_steps > 0:
        fit_locator(describer, images, token, offset, cfg.read)
    if describer.reads:
        eval_boxes = load_label_boxes(eval_dir)[: len(eval_images)]
        located = located_fraction(describer, eval_images, eval_boxes)
        log({"phase": "locator", "held_out_located": located})
    log_file.close()
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
        "alignment": alignment,
        "reading": {"glyphs": glyphs, "located": located} if describer.reads else None,
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
