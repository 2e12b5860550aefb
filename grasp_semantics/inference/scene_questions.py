"""Scene questions: caption, OCR and VQA through the grasp model's backbone.

    grasp-semantics describe --image PATH_OR_URL [--image ...] --task caption|ocr|vqa
        [--prompt TEXT] [--output FILE] [--format txt|json] [--device auto|cuda|mps|cpu]
        [--model NAME_OR_DIR] [--page N] [--dpi D] [--fps F] [--max-frames N] ...

The options follow the Qwen-VL command line: ``--image`` takes a file, an http(s) URL, a PDF
(asked page by page), a video file or a folder of frames (``visual_inputs.py``); several
``--image`` go into one question. ``load_describer`` loads the grasp model (as the node does)
and attaches a :class:`SceneDescriber` to its encoder: the ``describe/`` adapters saved beside
the grasp weights, or, for a real Qwen-VL checkpoint without them, the checkpoint's own
language-model head. Only the URLs given are fetched. ``RESULT_SCHEMA`` is the JSON-schema of
``--format json`` output.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grasp_semantics.inference import visual_inputs as inputs
from grasp_semantics.models.config import FLAVOURS, REAL_FLAVOURS
from grasp_semantics.models.describe_config import DESCRIBE_DIR, TASKS, DescribeConfig, task_prompt
from grasp_semantics.models.grasp_net import GraspNet
from grasp_semantics.models.scene_describer import SceneDescriber
from grasp_semantics.models.visual_prompts import ResizeBounds, Visual

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 1000
MAX_NEW_TOKENS_LIMIT = 512

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
        "inputs",
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
        "image": {"type": "string", "description": "the first --image source"},
        "inputs": {
            "type": "array",
            "minItems": 1,
            "description": "every image, PDF page and clip asked about, in order",
            "items": {
                "type": "object",
                "required": ["source", "kind", "height", "width"],
                "additionalProperties": False,
                "properties": {
                    "source": {"type": "string"},
                    "kind": {"type": "string", "enum": ["image", "pdf_page", "video"]},
                    "page": {"type": "integer", "minimum": 1},
                    "frames": {"type": "integer", "minimum": 1},
                    "fps": {"type": "number", "minimum": 0},
                    "height": {"type": "integer", "minimum": 1},
                    "width": {"type": "integer", "minimum": 1},
                },
            },
        },
        "pages": {
            "type": "array",
            "description": "a PDF's answers, one per page asked (answer: them joined)",
            "items": {
                "type": "object",
                "required": ["page", "answer", "confidence"],
                "additionalProperties": False,
                "properties": {
                    "page": {"type": "integer", "minimum": 1},
                    "answer": {"type": "string"},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                },
            },
        },
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
    pages: list[dict[str, Any]] = field(default_factory=list)  # a PDF's, one per page


def model_directory(name: str) -> Path | None:
    """The checkpoint directory a ``--model`` value names (None for a registry flavour)."""
    from grasp_semantics.inference.predictor import DEFAULT_WEIGHTS

    path = DEFAULT_WEIGHTS if name == "default" else Path(name).expanduser()
    return path if path.is_dir() else None


def attach_describer(
    model: GraspNet, name: str, vocab_texts: Sequence[str] = ()
) -> SceneDescriber:
    """A describer sharing ``model``'s encoder: the ``describe/`` adapters beside the weights
    named ``name``; a real checkpoint's own LM head; random ones for a registry flavour, whose
    compact vocabulary holds ``vocab_texts`` (e.g. ``data.questions.corpus()``) besides the
    task prompts."""
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
        return SceneDescriber(encoder, vocab_texts=vocab_texts).to(device)
    raise FileNotFoundError(
        f"model '{name}' has no describe head ({DESCRIBE_DIR}/ beside its weights); train one "
        "with `grasp-semantics train-describe --config config/train_describe_tiny.yaml`"
    )


def load_describer(name: str = "default", device: str = "auto") -> SceneDescriber:
    """Load the grasp model ``name`` (as the node does) and attach its describer."""
    from grasp_semantics.inference.predictor import GraspPredictor

    return attach_describer(GraspPredictor.from_pretrained(name, device=device).model, name)


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


def describe_visuals(
    describer: SceneDescriber,
    visuals: list[Visual],
    task: str,
    prompt: str = "",
    max_new_tokens: int | None = None,
    bounds: ResizeBounds | None = None,
) -> Answer:
    """Answer one request about ``visuals`` (``visual_inputs.load_visuals``): several images
    and clips as one question; a PDF's pages one question each, answered per page
    (``Answer.pages``; the answer is theirs joined by blank lines, the confidence the lowest).
    ValueError on a bad request, or one the model cannot take (the tiny head and video)."""
    limit = describer.cfg.max_new_tokens if max_new_tokens is None else max_new_tokens
    started = time.perf_counter()
    check_request(task, prompt, limit)
    pages = [v for v in visuals if v.page is not None]
    if pages and len(pages) != len(visuals):
        raise ValueError("a PDF is asked page by page: give it as the only --image")
    if not visuals:
        raise ValueError("nothing to ask about: give at least one --image")
    text, read = describer.request(task, prompt)
    if len(visuals) > 1 and not pages and describer.compact:
        log.warning(
            "the tiny describe head learned one image a question: the %d images go as views of "
            "one message, each at its input size",
            len(visuals),
        )
    groups = [[v] for v in pages] if pages else [visuals]
    prepared = time.perf_counter()
    answers = [
        describer.generate_visual(group, text, limit, read=read, bounds=bounds) for group in groups
    ]
    done = time.perf_counter()
    timings = {"preprocess": 1e3 * (prepared - started), "generate": 1e3 * (done - prepared)}
    if not pages:
        return Answer(task, text, answers[0].text, answers[0].confidence, timings)
    per_page = [
        {"page": v.page, "answer": a.text, "confidence": significant(a.confidence)}
        for v, a in zip(pages, answers, strict=True)
    ]
    joined = "\n\n".join(a.text for a in answers)
    return Answer(task, text, joined, min(a.confidence for a in answers), timings, per_page)


def significant(value: float) -> float:
    """``value`` to 4 significant digits (a random model's confidences are ~1e-5)."""
    return float(f"{value:.4g}")


def input_record(visual: Visual) -> dict[str, Any]:
    """What the JSON says of one input."""
    frames, height, width = visual.frames.shape[:3]
    record: dict[str, Any] = {"source": visual.source}
    if visual.video:
        record.update(kind="video", frames=int(frames), fps=round(visual.sample_fps, 4))
    elif visual.page is not None:
        record.update(kind="pdf_page", page=visual.page)
    else:
        record["kind"] = "image"
    return {**record, "height": int(height), "width": int(width)}


# ---------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument(
        "--image",
        action="append",
        required=True,
        help="image file, http(s) URL, PDF, video file or folder of frames; repeat it to ask "
        "about several in one question",
    )
    parser.add_argument("--task", required=True, help="caption | ocr | vqa")
    parser.add_argument("--prompt", default="", help="the question (vqa) or an extra hint")
    parser.add_argument("--output", type=Path, help="write the result here (default stdout)")
    parser.add_argument("--format", choices=("txt", "json"), default="txt")
    parser.add_argument("--device", choices=("auto", "cuda", "mps", "cpu"), default="auto")
    parser.add_argument("--model", default="default", help="checkpoint directory or name")
    parser.add_argument("--max-new-tokens", type=int, help="default: the describe config's")
    pdf = parser.add_argument_group("PDF")
    pdf.add_argument("--page", type=int, help="ask about this page (from 1); default: each page")
    pdf.add_argument("--dpi", type=float, default=inputs.PDF_DPI, help="page rendering resolution")
    video = parser.add_argument_group("video (a file, or a folder of frames in name order)")
    video.add_argument(
        "--fps", type=float, default=inputs.VIDEO_FPS, help="frames sampled a second"
    )
    video.add_argument("--max-frames", type=int, default=inputs.VIDEO_MAX_FRAMES)
    video.add_argument(
        "--folder-fps", type=float, help="rate a folder's frames were taken at (default: --fps)"
    )
    url = parser.add_argument_group("URLs")
    url.add_argument("--timeout", type=float, default=inputs.URL_TIMEOUT_S, help="seconds")
    url.add_argument("--max-bytes", type=int, default=inputs.URL_MAX_BYTES)
    size = parser.add_argument_group(
        "resize bounds of the Qwen-VL checkpoints (qwen-vl-utils' min/max_pixels; default: its "
        "4..16384 visual tokens an image, 128..768 a video frame)"
    )
    for name in ("min-pixels", "max-pixels", "video-min-pixels", "video-max-pixels"):
        size.add_argument(f"--{name}", type=int)


def run(args: argparse.Namespace, command: str) -> int:
    started = time.perf_counter()
    try:
        limit = args.max_new_tokens if args.max_new_tokens is not None else 1
        check_request(args.task, args.prompt, limit)  # fail fast, before loading the model
        inputs.check_sampling(args.fps, args.max_frames, args.dpi)
        if args.timeout <= 0 or args.max_bytes <= 0:
            raise ValueError("--timeout and --max-bytes must be positive")
        visuals = [
            visual
            for source in args.image
            for visual in inputs.load_visuals(
                source,
                args.page,
                args.dpi,
                args.fps,
                args.max_frames,
                args.folder_fps,
                args.timeout,
                args.max_bytes,
            )
        ]
        if args.page is not None and not any(v.page for v in visuals):
            raise ValueError("--page picks a page of a PDF, and no --image is a PDF")
        bounds = ResizeBounds(
            args.min_pixels, args.max_pixels, args.video_min_pixels, args.video_max_pixels
        )
        read = time.perf_counter()
        describer = load_describer(args.model, device=args.device)
        loaded = time.perf_counter()
        result = describe_visuals(
            describer, visuals, args.task, args.prompt, args.max_new_tokens, bounds
        )
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"grasp-semantics describe: error: {error}", file=sys.stderr)
        return 2
    timing = {
        "load": 1e3 * (loaded - read),
        "preprocess": 1e3 * (read - started) + result.timings["preprocess"],
        "generate": result.timings["generate"],
        "total": 1e3 * (time.perf_counter() - started),
    }
    if args.format == "json":
        payload = {
            "task": result.task,
            "prompt": result.prompt,
            "answer": result.answer,
            "confidence": significant(result.confidence),
            "model": args.model,
            "device": str(describer.encoder.pix_mean.device),
            "image": str(args.image[0]),
            "inputs": [input_record(v) for v in visuals],
            **({"pages": result.pages} if result.pages else {}),
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
