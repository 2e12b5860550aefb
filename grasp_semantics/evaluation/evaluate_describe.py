"""Held-out scene-description figures: exact match and token F1 per task (caption, ocr, vqa).

    grasp-semantics evaluate-describe --model default --scenes 100 --json describe_eval.json

Scenes come from a split other than ``train`` (default ``val``, from seed 20,000,000: scenes the
describe training never saw, with label texts from the held-out (word, digit) pairs), rendered
and labelled as in training (``data/questions.py``). Answers are generated greedily from the
full-size images through the same path as the CLI and the node. Both scores compare
normalised text (lower case, punctuation dropped, whitespace collapsed); token F1 is the
harmonic mean of token precision and recall (the SQuAD definition). OCR is also scored apart
on images that carry a label (``ocr_label``: reading) and on those that do not
(``ocr_no_text``: saying so), since the mix of the two hides whether labels are read.

A baseline runs in the same pass: ``other_image``, every question asked of the next scene's
image instead of its own. What the head still gets right there it answers from the question
and the data's priors, not from the image (the describe counterpart of the grasp evaluation's
``geometry_only``).

Each answer's confidence (``SceneDescriber.generate_scored``) is reported per group too: its
mean over right and wrong answers (exact match) and the AUROC of confidence for telling them
apart (0.5: no help; 1: every right answer more confident than every wrong one).
"""

from __future__ import annotations

import argparse
import json
import re
import string
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grasp_semantics.data.questions import (
    NO_TEXT,
    QA,
    describe_sample,
    load_describe_data,
    prepare_describe_data,
    vqa_kind,
)
from grasp_semantics.data.scene import generate_scene
from grasp_semantics.models.describe_config import TASKS
from grasp_semantics.models.scene_describer import SceneDescriber

EVAL_SEED = 20_000_000
_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}]")


def normalise(text: str) -> list[str]:
    """Lower-case words without punctuation."""
    return _PUNCTUATION.sub(" ", text.lower()).split()


def exact_match(prediction: str, truth: str) -> float:
    return float(normalise(prediction) == normalise(truth))


def token_f1(prediction: str, truth: str) -> float:
    pred, gold = normalise(prediction), normalise(truth)
    if not pred or not gold:
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def held_out_items(
    split: str, scenes: int, seed: int, cache_dir: str | Path | None = None
) -> list[tuple[np.ndarray, QA]]:
    """(full-size labelled image, item) of ``scenes`` held-out scenes of ``split`` (seeds
    ``seed``, ``seed+1``...), generated here or kept as shards under ``cache_dir``."""
    if split == "train":
        raise ValueError("evaluate on a held-out split (val, test_instance...), not train")
    if cache_dir is not None:
        directory = Path(cache_dir) / split
        prepare_describe_data(directory, split, scenes, seed, progress=False)
        return [(rgb, q) for _, rgb, qa in load_describe_data(directory)[:scenes] for q in qa]
    items = []
    for s in range(seed, seed + scenes):
        label, qa = describe_sample(generate_scene(s, split))
        items.extend((label.image, q) for q in qa)
    return items


def with_other_images(items: list[tuple[np.ndarray, QA]]) -> list[tuple[np.ndarray, QA]]:
    """``items`` (as :func:`held_out_items` lists them: a scene's items in a row) each paired
    with the next scene's image, the last scene's with the first's."""
    images: list[np.ndarray] = []
    scene_of = []
    for rgb, _ in items:
        if not images or not np.array_equal(rgb, images[-1]):
            images.append(rgb)
        scene_of.append(len(images) - 1)
    return [(images[(k + 1) % len(images)], q) for k, (_, q) in zip(scene_of, items, strict=True)]


def score(
    describer: SceneDescriber, items: list[tuple[np.ndarray, QA]], batch_size: int = 16
) -> dict[str, Any]:
    """Per-task (and per OCR case) exact match and token F1, and counts, of greedy answers to
    ``items``; the same per kind of VQA question (colour, position, count...) under
    ``vqa_kinds``."""
    groups = (*TASKS, "ocr_label", "ocr_no_text")
    rows: dict[str, list[tuple[float, float, float]]] = {group: [] for group in groups}
    kinds: dict[str, list[tuple[float, float, float]]] = {}
    examples = []
    # as the service sends them (SceneDescriber.request); the reading view's batched apart
    requests = [describer.request(q.task, q.prompt) for _, q in items]
    for read in (False, True):
        part = [
            (rgb, q, text)
            for (rgb, q), (text, r) in zip(items, requests, strict=True)
            if r == read
        ]
        for start in range(0, len(part), batch_size):
            chunk = part[start : start + batch_size]
            images = torch.from_numpy(np.stack([rgb for rgb, _, _ in chunk]))
            prompts = [text for _, _, text in chunk]
            answers = describer.generate_scored(images, prompts, read=read)
            for (_, q, _), scored in zip(chunk, answers, strict=True):
                answer = scored.text
                scores = (
                    exact_match(answer, q.answer),
                    token_f1(answer, q.answer),
                    scored.confidence,
                )
                rows[q.task].append(scores)
                if q.task == "ocr":
                    rows["ocr_no_text" if q.answer == NO_TEXT else "ocr_label"].append(scores)
                if q.task == "vqa":
                    kinds.setdefault(vqa_kind(q.prompt), []).append(scores)
                if len(examples) < 12:
                    examples.append(
                        {
                            "task": q.task,
                            "prompt": q.prompt,
                            "truth": q.answer,
                            "answer": answer,
                            "confidence": round(scored.confidence, 4),
                        }
                    )
    result: dict[str, Any] = {g: _figures(v) for g, v in rows.items() if v}
    result["vqa_kinds"] = {kind: _figures(kinds[kind]) for kind in sorted(kinds)}
    result["examples"] = examples
    return result


def confidence_auroc(confidence: np.ndarray, right: np.ndarray) -> float | None:
    """Probability that a right answer has a higher confidence than a wrong one (ties count
    half); None when the answers are all right or all wrong."""
    pos, neg = confidence[right], confidence[~right]
    if not len(pos) or not len(neg):
        return None
    higher = (pos[:, None] > neg[None, :]).mean()
    return float(higher + 0.5 * (pos[:, None] == neg[None, :]).mean())


def _figures(values: list[tuple[float, float, float]]) -> dict[str, Any]:
    em, f1, confidence = np.asarray(values).T
    right = em == 1.0

    def mean(selected: np.ndarray) -> float | None:
        return float(selected.mean()) if len(selected) else None

    return {
        "exact_match": float(em.mean()),
        "token_f1": float(f1.mean()),
        "items": len(values),
        "confidence": {
            "right": mean(confidence[right]),
            "wrong": mean(confidence[~right]),
            "auroc": confidence_auroc(confidence, right),
        },
    }


def without_examples(scores: dict[str, Any]) -> dict[str, Any]:
    """``score``'s figures without its example answers."""
    return {group: value for group, value in scores.items() if group != "examples"}


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--model", default="default", help="checkpoint directory or 'default'")
    parser.add_argument("--split", default="val", help="held-out split of the scenes")
    parser.add_argument("--scenes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=EVAL_SEED, help="first scene seed")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 = default")
    parser.add_argument("--cache-dir", type=Path, help="keep the scenes as shards here")
    parser.add_argument("--json", type=Path, help="also write the figures here")


def run(args: argparse.Namespace, command: str) -> int:
    from grasp_semantics.inference.scene_questions import load_describer

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    describer = load_describer(args.model, device=args.device)
    items = held_out_items(args.split, args.scenes, args.seed, args.cache_dir)
    result = {
        "model": args.model,
        "split": args.split,
        "scenes": args.scenes,
        "seed": args.seed,
        **score(describer, items),
        "other_image": without_examples(score(describer, with_other_images(items))),
        "seconds": round(time.perf_counter() - started, 1),
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0
