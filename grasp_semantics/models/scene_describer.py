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
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from grasp_semantics.models.answer_decoding import answer_loss, decode_answers
from grasp_semantics.models.describe_config import (
    CONFIG_FILE,
    READING_WORDS,
    STOP_TOKENS,
    TASK_PROMPTS,
    WEIGHTS_FILE,
    DescribeConfig,
    ScoredAnswer,
    task_prompt,
)
from grasp_semantics.models.grasp_net import weights_fingerprint
from grasp_semantics.models.lora import HookedLoRA, Switch
from grasp_semantics.models.semantics_qwen import (
    IMAGE_TOKEN,
    VIDEO_TOKEN,
    QwenSemanticsEncoder,
    as_image_batch,
)
from grasp_semantics.models.tokenizer import CHAT_TEMPLATE, SPECIAL_IDS
from grasp_semantics.models.visual_prompts import ResizeBounds, Visual, native_inputs


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
        self.switch = Switch()  # describing (this thread)
        self.reading = Switch()  # encoding a reading view (this thread)
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

    def batch(self, sequences: list[list[int]], left: bool) -> tuple[torch.Tensor, torch.Tensor]:
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

    def backbone_inputs(
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
        and prompts (teacher forcing), for training the adapters and head: see
        :func:`grasp_semantics.models.answer_decoding.answer_loss`."""
        return answer_loss(self, images, prompts, answers, image_index, reading)

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
        ids, mask = self.batch([self.prompt_ids(p, views, reading) for p in prompts], left=True)
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
            ids, pixels, second_per_grid = native_inputs(self.encoder, visuals, prompt, bounds)
        ids_t, mask = self.batch([ids], left=True)
        return self._generate(
            ids_t, mask, pixels, limit, temperature, generator, False, second_per_grid
        )[0]

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
        with self.active(reading):
            text = self.backbone_inputs(
                pixels.get("image_grid_thw"),
                ids,
                mask,
                pixels.get("video_grid_thw"),
                second_per_grid,
            )
            return decode_answers(self, {**pixels, **text}, limit, temperature, generator)

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
