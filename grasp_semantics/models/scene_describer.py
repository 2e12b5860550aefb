"""Scene description (caption / OCR / VQA) by generation through the grasp encoder's backbone.

:class:`SceneDescriber` attaches to a loaded :class:`QwenSemanticsEncoder` and generates text
with the *same* backbone modules (no second copy: the describer keeps no reference to them in
its own state dict). What it adds is small and active only while it generates:

- low-rank adapters on chosen linear layers, applied through forward hooks (not by replacing
  modules), so the grasp path's modules, state-dict keys and outputs stay exactly as they are;
- for the compact-vocabulary ``tiny`` backbone, embedding rows for prompt and answer tokens the
  grasp table lacks (the grasp rows are read, never written) and an output layer over the
  describe vocabulary;
- for the full-vocabulary backbones, the checkpoint's own language-model head (tied to the
  input embedding, or loaded from the checkpoint's files), so a real Qwen-VL answers natively.

The head runs only in :meth:`SceneDescriber.generate` / :meth:`SceneDescriber.loss`. Decoding
is greedy by default (temperature sampling optional), bounded by ``max_new_tokens`` and stops
at the end-of-turn tokens. A trained describer is saved as ``describe/`` beside the grasp
weights (``config.yaml`` + ``adapter.safetensors``) and records a fingerprint of the base it
was trained on, so a retrained grasp model is not silently paired with stale adapters.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from grasp_semantics.models.grasp_net import weights_fingerprint
from grasp_semantics.models.semantics_qwen import (
    IMAGE_TOKEN,
    VIDEO_TOKEN,
    QwenSemanticsEncoder,
    as_image_batch,
)
from grasp_semantics.models.tokenizer import CHAT_TEMPLATE, SPECIAL_IDS

TASKS: tuple[str, ...] = ("caption", "ocr", "vqa")
# The seed CLI's tasks; caption and ocr have a default prompt, vqa asks the user's question.
TASK_PROMPTS: dict[str, str] = {
    "caption": "Describe this image.",
    "ocr": "Read the text in the image.",
}
# Words of a VQA question that asks what is written (sent through the reading view).
READING_WORDS: frozenset[str] = frozenset({"label", "sticker", "text", "written", "writing"})
STOP_TOKENS: tuple[str, ...] = ("<|im_end|>", "<|endoftext|>")
DESCRIBE_DIR = "describe"
CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "adapter.safetensors"
TEXT_LORA_TARGETS: tuple[str, ...] = (
    "*language_model.layers.*.self_attn.[qkvo]_proj",
    "*language_model.layers.*.mlp.*_proj",
)
VISION_LORA_TARGETS: tuple[str, ...] = (
    "*visual.patch_embed.proj",
    "*visual.blocks.*",
    "*visual.merger.*",
    "*visual.deepstack_merger_list.*",
)


def task_prompt(task: str, prompt: str = "") -> str:
    """The text sent with the image: a task's default prompt (plus ``prompt`` as an extra
    instruction), or the question itself for ``vqa``. Raises ValueError on a bad request."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}: one of {', '.join(TASKS)}")
    prompt = (prompt or "").strip()
    if task == "vqa":
        if not prompt:
            raise ValueError("task 'vqa' needs a prompt: the question to answer")
        return prompt
    return f"{TASK_PROMPTS[task]} {prompt}".strip()


@dataclass
class Visual:
    """One image (a single frame) or one video clip of uint8 RGB frames [T, H, W, 3]: what the
    describer looks at (``inference/visual_inputs.py`` reads files, URLs, PDFs and videos)."""

    frames: np.ndarray
    source: str
    video: bool = False
    page: int | None = None  # 1-based PDF page this image was rendered from
    timestamps: tuple[float, ...] = ()  # video: each frame's time in the clip, seconds

    @property
    def sample_fps(self) -> float:
        """Frames per second of the sampled clip (0 for a still image or a one-instant clip)."""
        if len(self.timestamps) < 2 or self.timestamps[-1] <= self.timestamps[0]:
            return 0.0
        return (len(self.timestamps) - 1) / (self.timestamps[-1] - self.timestamps[0])


@dataclass
class DescribeConfig:
    """The describe part: adapters, vocabulary, decoding defaults, the base it belongs to."""

    lora_r: int = 16
    lora_alpha: float = 32.0
    # fnmatch patterns over the backbone's module names; empty: no adapters (a real
    # checkpoint's own instruction-tuned weights answer as they are).
    lora_targets: tuple[str, ...] = TEXT_LORA_TARGETS
    max_new_tokens: int = 32
    # Input resolution (H, W) while describing; None: the grasp encoder's. Reading printed
    # text needs more pixels per character than grasping does, and the Qwen-VL vision towers
    # take any multiple of patch x merge size (the grasp path's size stays fixed).
    image_size: tuple[int, int] | None = None
    # The reading view (OCR): a crop of ``reading_crop`` (H, W) pixels of the full-resolution
    # image around the label the locator finds on the visual tokens, magnified
    # ``reading_zoom`` times and read with adapters of its own: on the vision tower
    # (``reading_targets``, rank ``reading_lora_r``; a label's digit is a fraction of one patch
    # at the describe input size) and on the language model (``reading_text_targets``, at
    # ``lora_r``; so that reading does not share the scene questions' adapters). None: OCR
    # reads the whole image as the other tasks do.
    reading_crop: tuple[int, int] | None = None
    reading_zoom: int = 2
    reading_lora_r: int = 128
    reading_lora_alpha: float = 256.0
    reading_targets: tuple[str, ...] = VISION_LORA_TARGETS
    reading_text_targets: tuple[str, ...] = TEXT_LORA_TARGETS
    # Where the locator is unsure, the label is often at its second or third choice: the
    # reading view reads at its ``reading_candidates`` best tokens (in one batch) and keeps the
    # most confident reading that found text; ``no_text_answer`` only when none did.
    reading_candidates: int = 1
    no_text_answer: str = "no text"
    base_fingerprint: str | None = None  # of the grasp backbone the adapters were trained on

    def to_dict(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DescribeConfig:
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"describe config: unknown keys {sorted(unknown)}")
        data = dict(data)
        keys = ("lora_targets", "image_size", "reading_crop", "reading_targets",
                "reading_text_targets")  # fmt: skip
        for key in keys:
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(**data)


@dataclass(frozen=True)
class ScoredAnswer:
    """A generated answer and the head's confidence in it (see ``generate_scored``)."""

    text: str
    confidence: float  # in (0, 1]


# qwen-vl-utils' resize bounds, in visual tokens (one token: (patch x merge)^2 pixels).
IMAGE_MIN_TOKENS, IMAGE_MAX_TOKENS = 4, 16384
VIDEO_MIN_TOKENS, VIDEO_MAX_TOKENS = 128, 768  # per frame


@dataclass(frozen=True)
class ResizeBounds:
    """Pixel bounds within which the full-vocabulary backbones see each image and video frame
    at about its own size (qwen-vl-utils' ``min_pixels`` / ``max_pixels``, the aspect ratio
    kept, both sides multiples of patch x merge). None: qwen-vl-utils' defaults, the token
    counts above."""

    min_pixels: int | None = None
    max_pixels: int | None = None
    video_min_pixels: int | None = None  # per frame
    video_max_pixels: int | None = None  # per frame

    def limits(self, unit: int, video: bool) -> tuple[int, int]:
        """(min, max) pixels of an image or a video frame for patch x merge size ``unit``."""
        if video:
            low = self.video_min_pixels or VIDEO_MIN_TOKENS * unit**2
            high = self.video_max_pixels or VIDEO_MAX_TOKENS * unit**2
            high = max(high, int(low * 1.05))  # as qwen-vl-utils' fetch_video
        else:
            low = self.min_pixels or IMAGE_MIN_TOKENS * unit**2
            high = self.max_pixels or IMAGE_MAX_TOKENS * unit**2
        if not 0 < low <= high:
            kind = "video frame" if video else "image"
            raise ValueError(f"{kind} pixel bounds must satisfy 0 < min <= max, got {low}, {high}")
        return low, high


class _Switch:
    """A per-thread on/off flag: adapters act only in the thread that is generating."""

    def __init__(self) -> None:
        self._local = threading.local()

    @property
    def on(self) -> bool:
        return getattr(self._local, "on", False)

    @contextmanager
    def enabled(self) -> Iterator[None]:
        before = self.on
        self._local.on = True
        try:
            yield
        finally:
            self._local.on = before


def _lora_dims(module: nn.Module) -> tuple[int, int] | None:
    """(in, out) features of a layer LoRA can adapt: a linear layer, or a patch embedding (a
    convolution whose stride equals its kernel: a linear map of each flattened patch)."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if isinstance(module, nn.Conv2d | nn.Conv3d) and module.stride == module.kernel_size:
        patch = module.in_channels // module.groups
        for size in module.kernel_size:
            patch *= size
        return patch, module.out_channels
    return None


class HookedLoRA(nn.Module):
    """LoRA (``x -> x + s * B(A(x))``, B zero-initialised) on the linear layers and patch
    embeddings of ``model`` whose names match ``patterns``, added by forward hooks while
    ``gate(name)`` says so for the layer's module name."""

    def __init__(
        self,
        model: nn.Module,
        patterns: Sequence[str],
        r: int,
        alpha: float,
        gate: Callable[[str], bool],
    ) -> None:
        super().__init__()
        self.scale = alpha / r
        self.down = nn.ModuleDict()
        self.up = nn.ModuleDict()
        self._handles = []
        self.names: set[str] = set()  # the adapted modules' names
        for name, module in model.named_modules():
            dims = _lora_dims(module)
            if dims is None or not any(fnmatch.fnmatchcase(name, p) for p in patterns):
                continue
            key = _module_key(name)
            self.down[key] = nn.Linear(dims[0], r, bias=False)
            self.up[key] = nn.Linear(r, dims[1], bias=False)
            nn.init.kaiming_uniform_(self.down[key].weight, a=5**0.5)
            nn.init.zeros_(self.up[key].weight)
            self._handles.append(module.register_forward_hook(self._hook(key, name, gate)))
            self.names.add(name)
        if patterns and not self._handles:
            raise ValueError(
                f"no linear layer or patch embedding matches the LoRA targets {list(patterns)}"
            )

    def _hook(self, key: str, name: str, gate: Callable[[str], bool]):
        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
            if not gate(name):
                return None  # grasp path (or the other view's adapters): output untouched
            x = args[0].to(self.down[key].weight.dtype)
            if not isinstance(module, nn.Linear):  # patch embedding: [N, C, (T,) p, p] patches
                if output[0].numel() != output.shape[1]:
                    raise ValueError(f"LoRA on {key}: input is not one patch per sample")
                x = x.flatten(1)  # [N, C*T*p*p] -> delta [N, out] -> [N, out, 1, (1,) 1]
                delta = self.up[key](self.down[key](x)).view(output.shape)
            else:
                delta = self.up[key](self.down[key](x))
            return output + (self.scale * delta).to(output.dtype)

        return hook

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def _module_key(name: str) -> str:
    """A module name usable as a ModuleDict key (no dots)."""
    return name.replace(".", "__")


def base_fingerprint(encoder: QwenSemanticsEncoder) -> str:
    """Content hash of the backbone's weights (and compact table) the adapters were fitted to.
    A real checkpoint is named by its directory (hashing billions of weights takes too long)."""
    bcfg = encoder.cfg.backbone
    if bcfg.checkpoint is not None:
        return f"checkpoint:{Path(bcfg.checkpoint).expanduser().resolve()}"
    tensors = dict(encoder.backbone.state_dict())
    if encoder.compact is not None:
        tensors["compact.kept_ids"] = encoder.compact.kept_ids
    return weights_fingerprint(tensors)


def _checkpoint_lm_head(checkpoint: str) -> torch.Tensor | None:
    """An untied checkpoint's ``lm_head.weight`` (None when tied to the input embedding)."""
    from safetensors import safe_open

    path = Path(checkpoint).expanduser()
    config = json.loads((path / "config.json").read_text())
    text = config.get("text_config", {})
    if config.get("tie_word_embeddings", text.get("tie_word_embeddings", False)):
        return None
    index = path / "model.safetensors.index.json"
    if index.is_file():
        files = {json.loads(index.read_text())["weight_map"]["lm_head.weight"]}
    else:
        files = {"model.safetensors"}
    for name in files:
        with safe_open(str(path / name), framework="pt") as f:
            if "lm_head.weight" in set(f.keys()):
                return f.get_tensor("lm_head.weight")
    raise FileNotFoundError(f"{path}: untied checkpoint without lm_head.weight")


class SceneDescriber(nn.Module):
    """Caption / OCR / VQA generation through an encoder's backbone (shared, not copied)."""

    def __init__(
        self,
        encoder: QwenSemanticsEncoder,
        cfg: DescribeConfig | None = None,
        vocab_texts: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.cfg = cfg or DescribeConfig()
        # Shared modules are plain attributes, not submodules: their weights are the grasp
        # model's, neither copied nor saved with the describer.
        object.__setattr__(self, "encoder", encoder)
        object.__setattr__(self, "embed", encoder.backbone.get_input_embeddings())
        # The resolution images are described at (checked against the encoder's patch grid).
        self.image_size = tuple(self.cfg.image_size or encoder.cfg.backbone.image_size)
        encoder.token_grid(self.image_size)
        self.switch = _Switch()  # describing (this thread)
        self.reading = _Switch()  # encoding a reading view (this thread)
        self._read_names: set[str] = set()  # modules the reading adapters adapt
        backbone = encoder.backbone
        self.lora = HookedLoRA(
            backbone, self.cfg.lora_targets, self.cfg.lora_r, self.cfg.lora_alpha, self._scene_gate
        )
        hidden = encoder._hidden_size()
        if self.cfg.reading_crop is not None:
            self.reading_size = self._reading_size()
            encoder.token_grid(self.reading_size)
            reading = lambda name: self.switch.on and self.reading.on  # noqa: E731
            self.reader = HookedLoRA(
                backbone,
                self.cfg.reading_targets,
                self.cfg.reading_lora_r,
                self.cfg.reading_lora_alpha,
                reading,
            )
            self.reader_text = HookedLoRA(
                backbone,
                self.cfg.reading_text_targets,
                self.cfg.lora_r,
                self.cfg.lora_alpha,
                reading,
            )
            self._read_names = self.reader.names | self.reader_text.names
            # per visual token of the scene view: [label score, row and column offset of the
            # label's centre from the token's centre, in tokens]
            self.locator = nn.Sequential(
                nn.Linear(hidden, 2 * hidden), nn.GELU(), nn.Linear(2 * hidden, 3)
            )
        self.stop_ids = [SPECIAL_IDS[t] for t in STOP_TOKENS]
        self.compact = encoder.compact is not None
        if self.compact:
            ids = set(self.stop_ids)
            for text in [*vocab_texts, *TASK_PROMPTS.values()]:
                ids.update(encoder.tokenizer.encode(text, add_special_tokens=False))
            out_ids = torch.tensor(sorted(ids), dtype=torch.long)
            known = encoder.compact(out_ids) > 0
            self.register_buffer("out_ids", out_ids)  # [V_out] real ids the head can emit
            self.register_buffer("extra_ids", out_ids[~known].clone())  # real ids given rows
            self.extra = nn.Embedding(int((~known).sum()), hidden)
            nn.init.normal_(self.extra.weight, std=self.embed.weight.detach().float().std())
            self.head = nn.Linear(hidden, len(out_ids), bias=False)
            self._embed_handles = [
                self.embed.register_forward_pre_hook(self._rows_in),
                self.embed.register_forward_hook(self._rows_out),
            ]
        else:
            checkpoint = encoder.cfg.backbone.checkpoint
            untied = _checkpoint_lm_head(checkpoint) if checkpoint else None
            # A random-init full-vocabulary backbone ties its head to the input embedding, as
            # Qwen2.5-VL-3B and Qwen3-VL-2B/4B do.
            self.register_buffer("lm_head", untied, persistent=False)
            self._embed_handles = []
        self._pending: torch.Tensor | None = None

    def _scene_gate(self, name: str) -> bool:
        """The main adapters act while describing, except, while reading, on the modules the
        reading adapters adapt."""
        return self.switch.on and not (self.reading.on and name in self._read_names)

    def _reading_size(self) -> tuple[int, int]:
        crop, zoom = self.cfg.reading_crop, int(self.cfg.reading_zoom)
        if zoom < 1 or len(crop) != 2 or min(crop) < 1:
            raise ValueError(f"reading view: bad crop {crop} or zoom {zoom}")
        return int(crop[0]) * zoom, int(crop[1]) * zoom

    @property
    def reads(self) -> bool:
        """Whether OCR reads through the reading view (a locator and adapters of its own)."""
        return self.cfg.reading_crop is not None

    def request(self, task: str, prompt: str = "") -> tuple[str, bool]:
        """The text sent with the image for a request, and whether it goes through the reading
        view (``generate_scored(..., read=...)``); ValueError on a bad request.

        OCR reads. With a reading view, so does a VQA question about what is written (one of
        :data:`READING_WORDS`): it is sent as OCR's prompt, since the reading view learned that
        prompt alone and its answer, the text read, is what such a question asks for. Without
        one (a real checkpoint's own head) the question goes as it is.
        """
        text = task_prompt(task, prompt)  # validates the request
        words = set(re.findall(r"[a-z]+", text.lower()))
        if task == "vqa" and self.reads and not READING_WORDS.isdisjoint(words):
            return task_prompt("ocr"), True
        return text, task == "ocr"

    # ------------------------------------------------------------------ vocabulary
    def input_rows(self, real_ids: torch.Tensor) -> torch.Tensor:
        """Embedding rows of real Qwen ids: the grasp table's rows, then extra rows numbered
        from the table size (only understood while the describer is active)."""
        if not self.compact:
            return real_ids
        rows = self.encoder.compact(real_ids)
        pos = torch.searchsorted(self.extra_ids, real_ids).clamp(max=len(self.extra_ids) - 1)
        extra = (rows == 0) & (self.extra_ids[pos] == real_ids)
        return torch.where(extra, self.encoder.compact.size + pos, rows)

    def _rows_in(self, module: nn.Module, args: tuple) -> tuple | None:
        if not self.switch.on:
            return None
        rows = args[0]
        self._pending = rows
        return (rows.clamp(max=self.encoder.compact.size - 1),)

    def _rows_out(self, module: nn.Module, args: tuple, output: torch.Tensor):
        if not self.switch.on or self._pending is None:
            return None
        rows, self._pending = self._pending, None
        is_extra = rows >= self.encoder.compact.size
        if not bool(is_extra.any()):
            return None
        extra = self.extra(torch.where(is_extra, rows - self.encoder.compact.size, 0))
        return torch.where(is_extra[..., None], extra.to(output.dtype), output)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores [..., V_out] of the next token from the backbone's last hidden states."""
        if self.compact:
            return self.head(hidden.to(self.head.weight.dtype))
        weight = self.lm_head if self.lm_head is not None else self.embed.weight
        return F.linear(hidden.to(weight.dtype), weight).float()

    def token_ids(self, index: torch.Tensor) -> torch.Tensor:
        """Real Qwen ids of head outputs ``index``."""
        return self.out_ids[index] if self.compact else index

    def head_index(self, real_ids: torch.Tensor) -> torch.Tensor:
        """Head output index of real ids (-100 where the head cannot emit the id)."""
        if not self.compact:
            return real_ids
        pos = torch.searchsorted(self.out_ids, real_ids).clamp(max=len(self.out_ids) - 1)
        return torch.where(self.out_ids[pos] == real_ids, pos, torch.full_like(pos, -100))

    # ------------------------------------------------------------------ inputs
    @contextmanager
    def active(self, reading: bool = False) -> Iterator[None]:
        """Adapters and extra rows on (this thread); a peft-wrapped grasp backbone's own LoRA
        off, so a real checkpoint answers as the instruction-tuned model it is. ``reading``:
        images are reading views (the reading adapters encode them)."""
        if reading and not self.reads:
            raise ValueError("this describer has no reading view (DescribeConfig.reading_crop)")
        with ExitStack() as stack:
            if hasattr(self.encoder.backbone, "disable_adapter"):
                stack.enter_context(self.encoder.backbone.disable_adapter())
            stack.enter_context(self.switch.enabled())
            if reading:
                stack.enter_context(self.reading.enabled())
            yield

    def view_size(self, reading: bool = False) -> tuple[int, int]:
        """Model input size (H, W) of a scene view, or of a reading view."""
        return self.reading_size if reading else self.image_size

    def prompt_ids(self, text: str, views: int = 1, reading: bool = False) -> list[int]:
        """Real ids of a chat turn: the image(s) first (the Qwen-VL chat order; questions about
        one image then share its prefix), then ``text``, then the assistant cue."""
        tok = self.encoder.tokenizer
        content = [{"type": "image"}] * views + [{"type": "text", "text": text}]
        template = None if getattr(tok, "chat_template", None) else CHAT_TEMPLATE
        prompt = tok.apply_chat_template(
            [{"role": "user", "content": content}],
            tokenize=False,
            add_generation_prompt=True,
            chat_template=template,
        )
        rows, cols = self.encoder.token_grid(self.view_size(reading))
        prompt = prompt.replace(IMAGE_TOKEN, IMAGE_TOKEN * (rows * cols))
        return tok.encode(prompt, add_special_tokens=False)

    def _batch(self, sequences: list[list[int]], left: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded real ids [B, L] and attention mask (left padding for generation)."""
        device = self.encoder.pix_mean.device
        length = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), length), SPECIAL_IDS["<|endoftext|>"], dtype=torch.long)
        mask = torch.zeros((len(sequences), length), dtype=torch.long)
        for i, seq in enumerate(sequences):
            span = slice(length - len(seq), length) if left else slice(0, len(seq))
            ids[i, span] = torch.tensor(seq)
            mask[i, span] = 1
        return ids.to(device), mask.to(device)

    def _backbone_inputs(
        self,
        grid: torch.Tensor | None,
        ids: torch.Tensor,
        mask: torch.Tensor,
        video_grid: torch.Tensor | None = None,
        second_per_grid: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Backbone text inputs (rows, mask, M-RoPE positions) for real ids [B, L] whose
        images have patch grids ``grid`` [B*V, 3] and videos ``video_grid`` [N, 3]
        (``second_per_grid``: Qwen2.5-VL's seconds per temporal patch of each video)."""
        rows = self.input_rows(ids)
        video_id = SPECIAL_IDS[VIDEO_TOKEN]
        mm_types = (ids == self.encoder.image_token_id).int() + 2 * (ids == video_id).int()
        extra = {} if video_grid is None else {"video_grid_thw": video_grid}
        if second_per_grid is not None:
            extra["second_per_grid_ts"] = second_per_grid
        positions, _ = self.encoder.backbone.get_rope_index(
            rows, mm_token_type_ids=mm_types, image_grid_thw=grid, attention_mask=mask, **extra
        )
        out = {
            "input_ids": rows,
            "attention_mask": mask,
            "position_ids": positions,
            "mm_token_type_ids": mm_types,
        }
        if grid is not None:
            out["image_grid_thw"] = grid
        return out

    # ------------------------------------------------------------------ training
    def visual_tokens(self, images: Any, reading: bool = False) -> torch.Tensor:
        """The visual tokens [B, V*rows*cols, D] the language model receives for uint8 images
        [B, (V,) H, W, 3] while describing (adapters on), row-major over each view's merged
        patch grid: what ``train-describe``'s alignment and reading phases supervise.
        ``reading``: the images are reading views (crops, magnified here)."""
        images = as_image_batch(images)
        pixels = self.encoder.pixel_inputs(images, self.view_size(reading))
        with self.active(reading):
            out = self.encoder.backbone.get_image_features(**pixels)
        per_image = out.pooler_output  # one [rows*cols, D] tensor per view
        return torch.cat(list(per_image)).view(images.shape[0], -1, per_image[0].shape[-1])

    def locator_scores(self, images: Any) -> torch.Tensor:
        """The locator's [B, rows*cols, 3] outputs on the scene tokens of uint8 images
        [B, H, W, 3]: label score, and the label centre's (row, col) offset from the token's
        centre in tokens."""
        return self.locator(self.visual_tokens(images).float())

    @torch.inference_mode()
    def locate(self, images: Any, candidates: int = 1) -> torch.Tensor:
        """Where the label most likely is in each of uint8 images [B, H, W, 3]: its centre
        [B, 2] (row, col) in the images' pixels (the best-scoring token's centre moved by the
        offsets it predicts); with ``candidates`` > 1, the centres [B, candidates, 2] of that
        many best-scoring tokens, best first."""
        images = as_image_batch(images)[:, 0]
        scores = self.locator_scores(images)  # [B, T, 3]
        rows, cols = self.encoder.token_grid(self.image_size)
        best = scores[..., 0].topk(min(candidates, scores.shape[1]), dim=1).indices  # [B, k]
        offset = torch.gather(scores[..., 1:], 1, best[..., None].expand(-1, -1, 2))  # tokens
        cell = torch.stack([best // cols, best % cols], dim=-1).to(offset) + 0.5 + offset
        grid = torch.tensor([rows, cols], dtype=offset.dtype, device=offset.device)
        size = torch.tensor(images.shape[1:3], dtype=offset.dtype, device=offset.device)
        centres = cell / grid * size  # [B, k, 2]
        return centres if candidates > 1 else centres[:, 0]

    def reading_windows(self, centres: torch.Tensor, image_shape: Sequence[int]) -> torch.Tensor:
        """The (top, left, bottom, right) windows [B, 4] of ``reading_crop`` pixels centred on
        ``centres`` [B, 2] (row, col) as far as images of ``image_shape`` (H, W) allow."""
        h, w = (int(v) for v in self.cfg.reading_crop)
        corner = torch.round(centres.double().cpu() - torch.tensor([h / 2, w / 2]))
        top = corner[:, 0].clamp(0, max(int(image_shape[0]) - h, 0))
        left = corner[:, 1].clamp(0, max(int(image_shape[1]) - w, 0))
        return torch.stack([top, left, top + h, left + w], dim=1).long()

    def reading_views(self, images: Any, centres: torch.Tensor) -> torch.Tensor:
        """Crops [B, h, w, 3] (``reading_crop``) of uint8 images [B, H, W, 3]: their
        :meth:`reading_windows` around ``centres``; an image smaller than the crop is padded
        with black."""
        images = as_image_batch(images)[:, 0]
        h, w = (int(v) for v in self.cfg.reading_crop)
        out = torch.zeros((images.shape[0], h, w, 3), dtype=torch.uint8, device=images.device)
        for i, (top, left, bottom, right) in enumerate(
            self.reading_windows(centres, images.shape[1:3]).tolist()
        ):
            crop = images[i, top:bottom, left:right]
            out[i, : crop.shape[0], : crop.shape[1]] = crop
        return out

    def loss(
        self,
        images: Any,
        prompts: Sequence[str],
        answers: Sequence[str],
        image_index: Sequence[int] | None = None,
        reading: bool = False,
    ) -> torch.Tensor:
        """Mean cross-entropy of the answer tokens (and the end-of-turn token) given images
        and prompts (teacher forcing), for training the adapters and head.

        ``image_index[i]`` is the image (of uint8 ``images`` [N, (V,) H, W, 3]) of sequence
        ``i`` (default: the i-th); ``reading``: the images are reading views (crops). The image
        part of the prompt comes first and is the same for every question, so it runs once per
        image; each question continues from its cache.
        """
        from transformers import DynamicCache

        images = as_image_batch(images)
        index = list(range(len(prompts))) if image_index is None else list(image_index)
        tok = self.encoder.tokenizer
        views = images.shape[1]
        vision_end = SPECIAL_IDS["<|vision_end|>"]
        suffixes, starts, prefix = [], [], None
        for text, answer in zip(prompts, answers, strict=True):
            full = self.prompt_ids(text, views, reading)
            cut = len(full) - full[::-1].index(vision_end)  # just after the last image
            if prefix is None:
                prefix = full[:cut]
            answer_ids = [*tok.encode(answer, add_special_tokens=False), self.stop_ids[0]]
            unknown = [t for t in answer_ids if int(self.head_index(torch.tensor(t))) < 0]
            if unknown:
                raise ValueError(f"answer {answer!r} has tokens the head cannot emit: {unknown}")
            starts.append(len(full) - cut)
            suffixes.append(full[cut:] + answer_ids)
        pre_ids, pre_mask = self._batch([prefix] * len(images), left=False)
        ids, mask = self._batch(suffixes, left=False)
        targets = torch.full_like(ids, -100)
        for i, (seq, start) in enumerate(zip(suffixes, starts, strict=True)):
            targets[i, start - 1 : len(seq) - 1] = self.head_index(ids[i, start : len(seq)])
        pixels = self.encoder.pixel_inputs(images, self.view_size(reading))
        model = self.encoder.backbone
        with self.active(reading):
            cache = DynamicCache()
            inputs = self._backbone_inputs(pixels["image_grid_thw"], pre_ids, pre_mask)
            model(**{**inputs, **pixels}, past_key_values=cache, use_cache=True, return_dict=True)
            cache.batch_select_indices(torch.tensor(index, device=ids.device))
            first = inputs["position_ids"].amax() + 1  # the prefix is the same for every image
            positions = (first + torch.arange(ids.shape[1], device=ids.device)).expand(
                3, len(index), -1
            )
            out = model(
                input_ids=self.input_rows(ids),
                attention_mask=torch.cat([pre_mask[:1].expand(len(index), -1), mask], dim=1),
                position_ids=positions,
                past_key_values=cache,
                use_cache=True,
                return_dict=True,
            )
        keep = targets >= 0
        return F.cross_entropy(self.logits(out.last_hidden_state[keep]).float(), targets[keep])

    # ------------------------------------------------------------------ generation
    @torch.inference_mode()
    def generate(
        self,
        images: Any,
        prompts: Sequence[str],
        max_new_tokens: int | None = None,
        temperature: float = 0.0,
        generator: torch.Generator | None = None,
        read: bool = False,
    ) -> list[str]:
        """Answers to ``prompts`` (one per sample of uint8 images [B, (V,) H, W, 3]).

        Greedy when ``temperature`` is 0, else sampling at that temperature; at most
        ``max_new_tokens`` tokens each; a sample stops at its first end-of-turn token.
        ``read`` (OCR): answer from the reading view of each image when the describer has one.
        """
        scored = self.generate_scored(
            images, prompts, max_new_tokens, temperature, generator, read
        )
        return [answer.text for answer in scored]

    @torch.inference_mode()
    def generate_scored(
        self,
        images: Any,
        prompts: Sequence[str],
        max_new_tokens: int | None = None,
        temperature: float = 0.0,
        generator: torch.Generator | None = None,
        read: bool = False,
    ) -> list[ScoredAnswer]:
        """:meth:`generate`'s answers with each one's confidence: the geometric mean of the
        probabilities the head gave the answer's tokens and its end-of-turn token (softmax at
        temperature 1, whatever ``temperature`` sampled them), so that a caller can tell a
        reading from a guess."""

        images = as_image_batch(images)
        if len(prompts) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} image sets but {len(prompts)} prompts")
        limit = self.cfg.max_new_tokens if max_new_tokens is None else int(max_new_tokens)
        if limit < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {limit}")
        reading = read and self.reads
        candidates = max(1, int(self.cfg.reading_candidates)) if reading else 1
        if reading:
            if images.shape[1] != 1:
                raise ValueError("the reading view reads one image per sample")
            centres = self.locate(images, candidates).reshape(-1, 2)  # [B*k, 2], image-major
            images = self.reading_views(images.repeat_interleave(candidates, 0), centres)[:, None]
            prompts = [prompt for prompt in prompts for _ in range(candidates)]
        views = images.shape[1]
        ids, mask = self._batch([self.prompt_ids(p, views, reading) for p in prompts], left=True)
        pixels = self.encoder.pixel_inputs(images, self.view_size(reading))
        answers = self._generate(ids, mask, pixels, limit, temperature, generator, reading)
        if candidates > 1:  # each image's readings, best located first
            answers = [
                self._best_reading(answers[i : i + candidates])
                for i in range(0, len(answers), candidates)
            ]
        return answers

    @torch.inference_mode()
    def generate_visual(
        self,
        visuals: Sequence[Visual],
        prompt: str,
        max_new_tokens: int | None = None,
        read: bool = False,
        bounds: ResizeBounds | None = None,
        temperature: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> ScoredAnswer:
        """One answer to ``prompt`` about every image and video clip in ``visuals``, sent as one
        chat message (the items in order, then the text), as the Qwen-VL command line sends it.

        The full-vocabulary backbones (real checkpoints) see each image at about its own size
        within ``bounds`` and each clip as video (its frames in temporal pairs; Qwen3-VL with
        the frames' timestamps in the text, Qwen2.5-VL with their spacing in M-RoPE). The
        compact ``tiny`` head sees every image at its one input size, several images as views
        of one message; it refuses video, and its reading view (``read``) reads one image."""
        if not visuals:
            raise ValueError("nothing to ask about: give at least one image")
        clips = sum(bool(v.video) for v in visuals)
        if clips and self.compact:
            raise ValueError(
                "this model's describe head (the compact tiny backbone) learned still images "
                "only and does not take video; ask about single frames, or use a Qwen-VL "
                "checkpoint (--model qwen3_vl_2b)"
            )
        limit = self.cfg.max_new_tokens if max_new_tokens is None else int(max_new_tokens)
        if limit < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {limit}")
        if read and self.reads:
            if len(visuals) > 1 or clips:
                raise ValueError(
                    "OCR and questions about labels go through the reading view, which reads "
                    f"one image at a time; got {len(visuals)} inputs: ask about each alone"
                )
            frames = torch.from_numpy(np.array(visuals[0].frames))
            return self.generate_scored(frames, [prompt], limit, temperature, generator, True)[0]
        second_per_grid = None
        if self.compact:
            frames = [torch.from_numpy(np.array(v.frames))[None] for v in visuals]
            parts = [self.encoder.pixel_inputs(f, self.image_size) for f in frames]
            pixels = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
            ids = self.prompt_ids(prompt, len(visuals))
        else:
            ids, pixels, second_per_grid = self._native_inputs(visuals, prompt, bounds)
        ids_t, mask = self._batch([ids], left=True)
        return self._generate(
            ids_t, mask, pixels, limit, temperature, generator, False, second_per_grid
        )[0]

    def native_size(
        self, height: int, width: int, video: bool = False, bounds: ResizeBounds | None = None
    ) -> tuple[int, int]:
        """The (H, W) a full-vocabulary backbone sees an image (or a video frame) of ``height``
        x ``width`` at: its own size, aspect kept, within ``bounds``, multiples of patch x merge
        (transformers' Qwen2-VL ``smart_resize``, the rule qwen-vl-utils applies)."""
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

        bcfg = self.encoder.cfg.backbone
        unit = bcfg.patch_size * bcfg.merge_size
        low, high = (bounds or ResizeBounds()).limits(unit, video)
        return smart_resize(int(height), int(width), unit, low, high)

    def _native_inputs(
        self, visuals: Sequence[Visual], prompt: str, bounds: ResizeBounds | None
    ) -> tuple[list[int], dict[str, torch.Tensor], torch.Tensor | None]:
        """Real ids of the chat turn, the image and video tensors, and (Qwen2.5-VL with video)
        the seconds per temporal patch of each clip, as the checkpoints' processors make them:
        each ``<|vision_start|><|image_pad|><|vision_end|>`` of the chat template holds one
        image's visual tokens; a clip's becomes, in Qwen3-VL, one ``<t seconds>`` and
        vision-start / tokens / vision-end per temporal patch (the checkpoint's own prompt
        format), in Qwen2.5-VL one run of video tokens."""
        enc = self.encoder
        bcfg = enc.cfg.backbone
        unit = bcfg.patch_size * bcfg.merge_size
        start, end = "<|vision_start|>", "<|vision_end|>"
        parts, images, videos, seconds = [], [], [], []
        for visual in visuals:
            frames = torch.from_numpy(np.array(visual.frames))
            h, w = self.native_size(*frames.shape[1:3], bool(visual.video), bounds)
            tokens = h * w // unit**2
            if not visual.video:
                images.append(enc.pixel_inputs(frames[:1][None], (h, w)))
                parts.append(start + IMAGE_TOKEN * tokens + end)
                continue
            times = list(visual.timestamps) or [0.0] * len(frames)
            if len(frames) % 2:  # temporal patches of two frames: repeat the last
                frames = torch.cat([frames, frames[-1:]])
                times.append(times[-1])
            videos.append(enc.video_inputs(frames, (h, w)))
            pairs = [(times[i] + times[i + 1]) / 2 for i in range(0, len(times), 2)]
            if enc.arch == "qwen3_vl":
                parts.append("".join(f"<{t:.1f} seconds>{start}{VIDEO_TOKEN * tokens}{end}"
                                     for t in pairs))  # fmt: skip
            else:
                parts.append(start + VIDEO_TOKEN * (tokens * len(pairs)) + end)
                rate = visual.sample_fps  # Qwen2.5-VL's processor: temporal patch / fps
                seconds.append(2.0 / rate if rate > 0 else 1.0)
        content = [{"type": "video" if v.video else "image"} for v in visuals]
        content.append({"type": "text", "text": prompt})
        tok = enc.tokenizer
        template = None if getattr(tok, "chat_template", None) else CHAT_TEMPLATE
        text = tok.apply_chat_template(
            [{"role": "user", "content": content}],
            tokenize=False,
            add_generation_prompt=True,
            chat_template=template,
        )
        slots = re.compile(
            "|".join(re.escape(start + t + end) for t in (IMAGE_TOKEN, VIDEO_TOKEN))
        )
        if len(slots.findall(text)) != len(visuals):
            raise RuntimeError("the chat template did not place one slot per image and video")
        filling = iter(parts)
        ids = tok.encode(slots.sub(lambda _: next(filling), text), add_special_tokens=False)
        pixels: dict[str, torch.Tensor] = {}
        for group in (images, videos):
            for key in group[0] if group else ():
                pixels[key] = torch.cat([g[key] for g in group])
        second_per_grid = None
        if seconds and enc.arch != "qwen3_vl":
            second_per_grid = torch.tensor(seconds, device=enc.pix_mean.device)
        return ids, pixels, second_per_grid

    def _generate(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        pixels: dict[str, torch.Tensor],
        limit: int,
        temperature: float = 0.0,
        generator: torch.Generator | None = None,
        reading: bool = False,
        second_per_grid: torch.Tensor | None = None,
    ) -> list[ScoredAnswer]:
        """Answers generated after left-padded real ids [B, L] (mask [B, L]) whose visual
        tokens ``pixels`` fill: ``pixel_values`` / ``image_grid_thw`` and, for video,
        ``pixel_values_videos`` / ``video_grid_thw``."""
        from transformers import DynamicCache

        b = ids.shape[0]
        stops = torch.tensor(self.stop_ids, device=ids.device)
        out_tokens = torch.zeros((b, 0), dtype=torch.long, device=ids.device)
        done = torch.zeros(b, dtype=torch.bool, device=ids.device)
        log_prob = torch.zeros(b, device=ids.device)  # summed over each answer's tokens
        counted = torch.zeros(b, device=ids.device)
        with self.active(reading):
            text = self._backbone_inputs(
                pixels.get("image_grid_thw"), ids, mask, pixels.get("video_grid_thw"),
                second_per_grid,
            )  # fmt: skip
            inputs = {**pixels, **text}
            next_pos = inputs["position_ids"].amax(dim=(0, 2)) + 1  # [B] first answer position
            cache = DynamicCache()
            out = self.encoder.backbone(
                **inputs, past_key_values=cache, use_cache=True, return_dict=True
            )
            for step in range(limit):
                scores = self.logits(out.last_hidden_state[:, -1])  # [B, V_out]
                if temperature > 0:
                    probs = torch.softmax(scores.float() / temperature, dim=-1)
                    index = torch.multinomial(probs, 1, generator=generator).squeeze(1)
                else:
                    index = scores.argmax(dim=-1)
                chosen = torch.log_softmax(scores.float(), dim=-1).gather(1, index[:, None])[:, 0]
                log_prob += torch.where(done, 0.0, chosen)
                counted += (~done).float()
                token = self.token_ids(index)
                token = torch.where(done, torch.full_like(token, self.stop_ids[0]), token)
                out_tokens = torch.cat([out_tokens, token[:, None]], dim=1)
                done |= torch.isin(token, stops)
                if bool(done.all()) or step == limit - 1:
                    break
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
                position = (next_pos + step).view(1, b, 1).expand(3, b, 1)
                out = self.encoder.backbone(
                    input_ids=self.input_rows(token[:, None]),
                    attention_mask=mask,
                    position_ids=position,
                    past_key_values=cache,
                    use_cache=True,
                    return_dict=True,
                )
        confidence = torch.exp(log_prob / counted.clamp(min=1)).tolist()
        answers = []
        for row, p in zip(out_tokens.tolist(), confidence, strict=True):
            cut = next((i for i, t in enumerate(row) if t in self.stop_ids), len(row))
            text = self.encoder.tokenizer.decode(row[:cut], skip_special_tokens=True)
            answers.append(ScoredAnswer(text.strip(), float(p)))
        return answers

    def _best_reading(self, readings: list[ScoredAnswer]) -> ScoredAnswer:
        """The most confident of one image's readings that found text, else the first."""
        found = [r for r in readings if r.text != self.cfg.no_text_answer]
        return max(found, key=lambda r: r.confidence) if found else readings[0]

    # ------------------------------------------------------------------ files
    def save(self, directory: str | Path) -> Path:
        """``config.yaml`` + ``adapter.safetensors`` (adapters, extra rows, head, vocabulary)."""
        from safetensors.torch import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        cfg = dataclasses.replace(self.cfg, base_fingerprint=base_fingerprint(self.encoder))
        data = {**cfg.to_dict(), "vocab_size": len(self.out_ids) if self.compact else None}
        (out / CONFIG_FILE).write_text(yaml.safe_dump(data, sort_keys=False))
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
        return out

    @classmethod
    def load(
        cls, directory: str | Path, encoder: QwenSemanticsEncoder, check_base: bool = True
    ) -> SceneDescriber:
        """A describer saved by :meth:`save`, attached to ``encoder``. Raises when the adapters
        were trained on another base (retrain them: ``grasp-semantics train-describe``)."""
        from safetensors.torch import load_file

        path = Path(directory)
        if not (path / CONFIG_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(f"{path} needs {CONFIG_FILE} and {WEIGHTS_FILE}")
        data = yaml.safe_load((path / CONFIG_FILE).read_text())
        data.pop("vocab_size", None)
        cfg = DescribeConfig.from_dict(data)
        if check_base and cfg.base_fingerprint != base_fingerprint(encoder):
            raise RuntimeError(
                f"the describe adapters in {path} were trained on another grasp model than the "
                "one loaded; retrain them on this one with `grasp-semantics train-describe "
                "--config config/train_describe_tiny.yaml`"
            )
        state = load_file(str(path / WEIGHTS_FILE))
        describer = cls(encoder, cfg)
        if describer.compact:  # the saved vocabulary, before loading the tensors sized by it
            describer.out_ids = state["out_ids"].clone()
            describer.extra_ids = state["extra_ids"].clone()
            describer.extra = nn.Embedding(*state["extra.weight"].shape)
            rows, hidden = state["head.weight"].shape
            describer.head = nn.Linear(hidden, rows, bias=False)
        describer.load_state_dict(state, strict=True)
        return describer.to(encoder.pix_mean.device)

    def close(self) -> None:
        """Remove the hooks from the shared backbone (the grasp model is left as it was)."""
        self.lora.remove()
        if self.reads:
            self.reader.remove()
            self.reader_text.remove()
        for handle in self._embed_handles:
            handle.remove()
        self._embed_handles = []
