"""Compact training examples: what the network sees of a scene, made once and streamed.

A :class:`~grasp_semantics.data.scene.Scene` is large (a 640x480 image, ~20k points, meshes).
Training needs only the image at the model's input size (with the intrinsics scaled to it),
the cloud sampled to the model's point count by farthest point sampling (the order the
predictor uses), the per-point contact labels and the ground-truth grasps. Shards of such
examples are written atomically as ``.npz`` files, so an interrupted preparation resumes where
it stopped, and are streamed per DDP rank.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from grasp_semantics.data.catalogue import PROCEDURAL, Catalogue, catalogue
from grasp_semantics.data.references import POSITION_PHRASES, RELATION_PHRASES, SIZE_PHRASES
from grasp_semantics.data.scene import Scene, generate_scene
from grasp_semantics.data.shards import write_shards
from grasp_semantics.data.splits import split_pools
from grasp_semantics.models.config import GraspNetConfig
from grasp_semantics.models.pointnet2 import sample_indices

MAX_GRASPS = 32  # ground-truth grasps kept per example (the generator makes at most this many)
FORMAT = 2  # 2: task, reference and on_target added (shards of format 1 lack them)


def resize_image(rgb: np.ndarray, intrinsics: np.ndarray, size_hw: tuple[int, int]):
    """``rgb`` resized to ``size_hw`` and the intrinsics that go with the resized image."""
    height, width = rgb.shape[:2]
    target_h, target_w = size_hw
    resized = np.asarray(Image.fromarray(rgb).resize((target_w, target_h), Image.BICUBIC))
    scale = np.diag([target_w / width, target_h / height, 1.0]).astype(np.float32)
    return resized, scale @ intrinsics.astype(np.float32)


def example_from_scene(scene: Scene, cfg: GraspNetConfig) -> dict[str, Any]:
    """The compact training example of ``scene`` for a model configured by ``cfg``."""
    image, intrinsics = resize_image(
        scene.rgb, scene.intrinsics, tuple(cfg.encoder.backbone.image_size)
    )
    index = sample_indices(
        scene.points, cfg.pointnet.num_points, np.random.default_rng(scene.seed)
    )
    count = min(len(scene.grasps), MAX_GRASPS)
    grasps = np.zeros((MAX_GRASPS, 4, 4), np.float32)
    widths = np.zeros(MAX_GRASPS, np.float32)
    contacts = np.zeros((MAX_GRASPS, 2, 3), np.float32)
    grasps[:count], widths[:count] = scene.grasps[:count], scene.grasp_widths[:count]
    contacts[:count] = scene.grasp_contacts[:count]
    return {
        "seed": scene.seed,
        "instruction": scene.instruction,
        "task": scene.task,
        "reference": scene.reference,
        "image": image,
        "intrinsics": intrinsics,
        "points": scene.points[index].astype(np.float32),
        "contact": scene.point_contact[index].astype(np.uint8),
        "on_target": (scene.point_object[index] == scene.target).astype(np.uint8),
        "grasps": grasps,
        "grasp_widths": widths,
        "grasp_contacts": contacts,
        "grasp_count": count,
    }


def _make(job: tuple[int, str, dict[str, Any], str | None]) -> dict[str, Any]:
    seed, split, cfg_dict, objects = job
    torch.set_num_threads(1)
    scene = generate_scene(seed, split, catalogue=None if objects is None else catalogue(objects))
    return example_from_scene(scene, GraspNetConfig.from_dict(cfg_dict))


def _signature(split: str, cfg: GraspNetConfig, objects: str | None) -> dict[str, Any]:
    signature = {
        "format": FORMAT,
        "split": split,
        "image_size": list(cfg.encoder.backbone.image_size),
        "num_points": cfg.pointnet.num_points,
    }
    if objects is not None:
        signature["objects"] = str(catalogue(objects).folder)
    return signature


def prepare_examples(
    out_dir: Path,
    split: str,
    count: int,
    seed: int,
    cfg: GraspNetConfig,
    per_shard: int = 200,
    workers: int = 1,
    progress: bool = True,
    objects: str | None = None,
) -> Path:
    """Make the shards of ``count`` examples of ``split`` (scene seeds ``seed``, ``seed+1``...),
    the objects from mesh folder ``objects`` (default: the procedural world).

    Shards already present with the same signature are kept, so this resumes and is a no-op
    when everything exists.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    signature = _signature(split, cfg, objects)
    index_path = out_dir / "index.json"
    if index_path.is_file() and json.loads(index_path.read_text())["signature"] != signature:
        raise ValueError(
            f"{out_dir} holds examples made differently ({index_path}); use another dir"
        )
    index_path.write_text(json.dumps({"signature": signature, "seed": seed}, indent=1))
    return write_shards(
        out_dir,
        _make,
        (split, cfg.to_dict(), objects),
        count,
        seed,
        per_shard,
        workers,
        f"examples {split}",
        progress,
    )


def instruction_corpus(objects: Catalogue = PROCEDURAL) -> list[str]:
    """Instructions covering every word the generator can use with ``objects`` (templates x
    nouns, colours, position, size and relation phrases), to build the compact vocabulary of
    a small model from."""
    texts = [
        objects.instruction(f"{task}/{i}", f"the {colour} {noun}")
        for task, templates in objects.templates.items()
        for i in range(len(templates))
        for nouns in objects.nouns.values()
        for noun in nouns
        for colour in objects.colours[:1]
    ]
    texts += [f"the {colour} one" for colour in objects.colours]
    texts += [
        phrase.format(n=noun)
        for phrases in (*POSITION_PHRASES.values(), *SIZE_PHRASES.values())
        for phrase in phrases
        for nouns in objects.nouns.values()
        for noun in nouns
    ]
    texts += [
        phrase.format(n=noun, a=f"the {noun}")
        for phrases in RELATION_PHRASES.values()
        for phrase in phrases
        for nouns in objects.nouns.values()
        for noun in nouns
    ]
    return texts


def reworded(
    example: dict[str, Any],
    split: str,
    rng: np.random.Generator,
    objects: Catalogue = PROCEDURAL,
) -> dict[str, Any]:
    """``example`` with its instruction said by another of ``split``'s paraphrases of the same
    task, naming the target the same way. The task fixes the part to grasp, so the labels still
    hold; only the split's own paraphrases are drawn, so held-out ones stay unseen."""
    paraphrases = split_pools(split, objects).paraphrases[example["task"]]
    paraphrase = paraphrases[rng.integers(len(paraphrases))]
    return {**example, "instruction": objects.instruction(paraphrase, example["reference"])}
