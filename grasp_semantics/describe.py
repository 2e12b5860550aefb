"""Scene questions on one image: caption, OCR and VQA through the grasp model's backbone.

    grasp-semantics describe --image PATH --task caption|ocr|vqa [--prompt TEXT]
        [--output FILE] [--format txt|json] [--device auto|cuda|mps|cpu] [--model NAME_OR_DIR]

The options follow the seed's Qwen-VL predictor CLI (``002_*.txt``). ``load_describer`` loads
the grasp model (as the node does) and attaches a :class:`SceneDescriber` to its encoder: the
``describe/`` adapters saved beside the grasp weights, or, for a real Qwen-VL checkpoint
without them, the checkpoint's own language-model head. Nothing is fetched from the network: an
image URL is refused. ``RESULT_SCHEMA`` is the JSON-schema of ``--format json`` output.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grasp_semantics.models.config import FLAVOURS, REAL_FLAVOURS
from grasp_semantics.models.describe import (
    DESCRIBE_DIR,
    TASKS,
    DescribeConfig,
    SceneDescriber,
    task_prompt,
)
from grasp_semantics.models.grasp_net import GraspNet

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 1000
MAX_NEW_TOKENS_LIMIT = 512
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://|^data:")

RESULT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "grasp-semantics describe result",
    "type": "object",
    "required": [
        "task",
        "prompt",
        "answer",
        "confidence",
        "model",
        "device",
        "image",
        "timing_ms",
    ],
    "additionalProperties": False,
    "properties": {
        "task": {"type": "string", "enum": list(TASKS)},
        "prompt": {"type": "string", "description": "the text sent with the image"},
        "answer": {"type": "string"},
        "confidence": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": "geometric mean probability of the answer's tokens (and its end)",
        },
        "model": {"type": "string", "description": "--model as given"},
        "device": {"type": "string"},
        "image": {"type": "string", "description": "path of the image"},
        "max_new_tokens": {"type": "integer", "minimum": 1},
        "timing_ms": {
            "type": "object",
            "required": ["load", "preprocess", "generate", "total"],
            "additionalProperties": False,
            "properties": {
                k: {"type": "number", "minimum": 0}
                for k in ("load", "preprocess", "generate", "total")
            },
        },
    },
}


@dataclass
class Answer:
    """One answer and what produced it."""

    task: str
    prompt: str  # the text sent with the image (the task's default prompt for caption / ocr)
    answer: str
    confidence: float  # the head's, in (0, 1]: see SceneDescriber.generate_scored
    timings: dict[str, float] = field(default_factory=dict)  # stage -> ms


def model_directory(name: str) -> Path | None:
    """The checkpoint directory a ``--model`` value names (None for a registry flavour)."""
    from grasp_semantics.predictor import DEFAULT_WEIGHTS

    path = DEFAULT_WEIGHTS if name == "default" else Path(name).expanduser()
    return path if path.is_dir() else None


def attach_describer(model: GraspNet, name: str) -> SceneDescriber:
    """A describer sharing ``model``'s encoder: the ``describe/`` adapters beside the weights
    named ``name``; a real checkpoint's own LM head; random ones for a registry flavour."""
    encoder = model.encoder
    directory = model_directory(name)
    device = encoder.pix_mean.device
    if directory is not None and (directory / DESCRIBE_DIR).is_dir():
        return SceneDescriber.load(directory / DESCRIBE_DIR, encoder)
    if encoder.cfg.backbone.checkpoint is not None or name in REAL_FLAVOURS:
        # the instruction-tuned model as it is (or its random-weight stand-in, for benchmarks)
        return SceneDescriber(encoder, DescribeConfig(lora_targets=())).to(device)
    if directory is None and name in FLAVOURS:
        log.warning("model %r: describe head with untrained random weights", name)
        from grasp_semantics.data.questions import corpus

        return SceneDescriber(encoder, vocab_texts=corpus()).to(device)
    raise FileNotFoundError(
        f"model '{name}' has no describe head ({DESCRIBE_DIR}/ beside its weights); train one "
        "with `grasp-semantics train-describe --config config/train_describe_tiny.yaml`"
    )


def load_describer(name: str = "default", device: str = "auto") -> SceneDescriber:
    """Load the grasp model ``name`` (as the node does) and attach its describer."""
    from grasp_semantics.predictor import GraspPredictor

    return attach_describer(GraspPredictor.from_pretrained(name, device=device).model, name)


def read_image(path: str) -> np.ndarray:
    """uint8 RGB [H, W, 3] of a local image file; ValueError for a URL or unreadable file."""
    from PIL import Image, UnidentifiedImageError

    if _URL.match(path):
        raise ValueError(
            f"image URLs are not fetched (no network access at run time): download {path} and "
            "pass the local file"
        )
    file = Path(path).expanduser()
    if not file.is_file():
        raise ValueError(f"image file {path} does not exist")
    try:
        with Image.open(file) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"cannot read image {path}: {error}") from error


def check_request(task: str, prompt: str, max_new_tokens: int) -> None:
    """ValueError saying what is wrong with a request, if anything (before any model runs:
    the text sent is the describer's choice, ``SceneDescriber.request``)."""
    if len(prompt or "") > MAX_PROMPT_CHARS:
        raise ValueError(f"prompt has {len(prompt)} characters, at most {MAX_PROMPT_CHARS}")
    if prompt and not prompt.isprintable():
        raise ValueError("prompt contains control characters")
    if not 1 <= int(max_new_tokens) <= MAX_NEW_TOKENS_LIMIT:
        raise ValueError(f"max_new_tokens must be in 1..{MAX_NEW_TOKENS_LIMIT}")
    task_prompt(task, prompt)  # an unknown task, or vqa without a question


def describe(
    describer: SceneDescriber,
    rgb: np.ndarray,
    task: str,
    prompt: str = "",
    max_new_tokens: int | None = None,
) -> Answer:
    """Answer one request on uint8 RGB [H, W, 3]; ValueError on a bad request or image."""
    limit = describer.cfg.max_new_tokens if max_new_tokens is None else max_new_tokens
    started = time.perf_counter()
    check_request(task, prompt, limit)
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise ValueError(f"image must be uint8 H x W x 3, got {rgb.dtype} {rgb.shape}")
    images = torch.from_numpy(np.array(rgb))[None]  # a copy: message buffers are read-only
    prepared = time.perf_counter()
    text, read = describer.request(task, prompt)  # reading questions: the reading view
    answer = describer.generate_scored(images, [text], max_new_tokens=limit, read=read)[0]
    done = time.perf_counter()
    timings = {"preprocess": 1e3 * (prepared - started), "generate": 1e3 * (done - prepared)}
    return Answer(task, text, answer.text, answer.confidence, timings)


# ---------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--image", required=True, help="local image file (no URLs)")
    parser.add_argument("--task", required=True, help="caption | ocr | vqa")
    parser.add_argument("--prompt", default="", help="the question (vqa) or an extra hint")
    parser.add_argument("--output", type=Path, help="write the result here (default stdout)")
    parser.add_argument("--format", choices=("txt", "json"), default="txt")
    parser.add_argument("--device", choices=("auto", "cuda", "mps", "cpu"), default="auto")
    parser.add_argument("--model", default="default", help="checkpoint directory or name")
    parser.add_argument("--max-new-tokens", type=int, help="default: the describe config's")


def run(args: argparse.Namespace, command: str) -> int:
    started = time.perf_counter()
    try:
        limit = args.max_new_tokens if args.max_new_tokens is not None else 1
        check_request(args.task, args.prompt, limit)  # fail fast, before loading the model
        rgb = read_image(args.image)
        describer = load_describer(args.model, device=args.device)
        loaded = time.perf_counter()
        result = describe(describer, rgb, args.task, args.prompt, args.max_new_tokens)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"grasp-semantics describe: error: {error}", file=sys.stderr)
        return 2
    timing = {
        "load": 1e3 * (loaded - started),
        **result.timings,
        "total": 1e3 * (time.perf_counter() - started),
    }
    if args.format == "json":
        payload = {
            "task": result.task,
            "prompt": result.prompt,
            "answer": result.answer,
            "confidence": round(result.confidence, 4),
            "model": args.model,
            "device": str(describer.encoder.pix_mean.device),
            "image": str(args.image),
            "max_new_tokens": args.max_new_tokens or describer.cfg.max_new_tokens,
            "timing_ms": {k: round(v, 3) for k, v in timing.items()},
        }
        text = json.dumps(payload, indent=1)
    else:
        text = result.answer
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    else:
        print(text)
    return 0
