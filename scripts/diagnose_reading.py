"""Where OCR's reading view fails on the held-out scenes that carry a label: finding the label
or reading it. For each such scene it prints the label, whether the locator's crop holds the
whole label, the answer read there, and the answer read at a crop centred on the true label.
It reads once, at the locator's best token, whatever the head's ``reading_candidates``.

    .venv/bin/python scripts/diagnose_reading.py [--model default] [--scenes 100]

(docs/scene_questions.md, "OCR reads labels", quotes its summary line.)
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from grasp_semantics.data.questions import NO_TEXT, describe_sample
from grasp_semantics.data.scene import generate_scene
from grasp_semantics.evaluation.evaluate_describe import EVAL_SEED, exact_match
from grasp_semantics.inference.scene_questions import load_describer
from grasp_semantics.models.describe_config import task_prompt
from grasp_semantics.training.train_reading import box_centres, label_in_view


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--scenes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=EVAL_SEED)
    args = parser.parse_args()
    describer = load_describer(args.model, device="cpu")
    if not describer.reads:
        raise SystemExit(f"{args.model}: the describe head has no reading view")
    describer.cfg.reading_candidates = 1  # locating and reading, one crop each
    seeds = range(args.seed, args.seed + args.scenes)
    labels = [describe_sample(generate_scene(seed, "val"))[0] for seed in seeds]
    labels = [label for label in labels if label.sticker is not None]
    images = torch.from_numpy(np.stack([label.image for label in labels]))
    boxes = np.array([label.sticker.box for label in labels])
    prompt = [task_prompt("ocr")] * len(labels)
    located = describer.locate(images)
    windows = describer.reading_windows(located, images.shape[1:3]).numpy()
    inside = label_in_view(windows, boxes)
    read = describer.generate(images, prompt, read=True)
    on_label = torch.from_numpy(box_centres(boxes)).float()
    describer.locate = lambda images, candidates=1: on_label  # again, centred on the label
    at_label = describer.generate(images, prompt, read=True)
    for label, found, answer, oracle in zip(labels, inside, read, at_label, strict=True):
        print(f"{label.text:8s} | whole label in the crop: {found!s:5s} | read {answer!r:14s}"
              f" | at the label {oracle!r}")  # fmt: skip
    truth = [label.text for label in labels]

    def parts(answers: list[str], k: int) -> int:
        pairs = zip(answers, truth, strict=True)
        return sum(a.split()[k : k + 1] == t.split()[k : k + 1] for a, t in pairs)

    missed = [a for a, found in zip(read, inside, strict=True) if not found]
    print(
        f"{len(labels)} labelled scenes: read whole {sum(map(exact_match, read, truth)):.0f}; "
        f"the crop misses the label on {len(missed)} (answered '{NO_TEXT}' on "
        f"{missed.count(NO_TEXT)}); with the crop on the label: "
        f"read whole {sum(map(exact_match, at_label, truth)):.0f}, word right "
        f"{parts(at_label, 0)}, digit right {parts(at_label, 1)}"
    )


if __name__ == "__main__":
    main()
