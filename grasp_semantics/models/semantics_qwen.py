"""Qwen-VL semantics encoder: images + instruction → hidden states → semantic features.

Wraps transformers' Qwen2.5-VL / Qwen3-VL (never forks them): the backbone's last hidden
states ``[B, L, D]`` are projected to a global semantic vector ``[B, 256]`` and to per-token
features. The instruction comes *before* the image(s) in the prompt by default, so the causal
LM's image-token states attend to it (``instruction_first=False`` gives the image-first
order), and the visual tokens' (row, col) cells are returned so that points can gather the
instruction-conditioned token at their pixel (pixel-aligned fusion).

Images are resized to a fixed resolution (static shapes) and patchified in torch, in exactly
the layout of transformers' Qwen2-VL image processor (tested against it), so preprocessing runs
on the model's device. Only hidden states are computed: the LM head is dropped.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from grasp_semantics.models.cache import ContentCache, content_key
from grasp_semantics.models.config import BackboneConfig, EncoderConfig
from grasp_semantics.models.tokenizer import (
    CHAT_TEMPLATE,
    SPECIAL_IDS,
    CompactVocab,
    load_tokenizer,
)

IMAGE_TOKEN = "<|image_pad|>"
VIDEO_TOKEN = "<|video_pad|>"
_MEAN_STD = {
    "qwen2_5_vl": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    "qwen3_vl": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}
TEMPORAL_PATCH = 2  # Qwen-VL patches span 2 frames; a still image is repeated


def architecture(cfg: BackboneConfig) -> str:
    """transformers architecture of a backbone name (``tiny`` is a small Qwen3-VL)."""
    if cfg.name not in ("tiny", "qwen2_5_vl", "qwen3_vl"):
        raise ValueError(f"unknown backbone {cfg.name!r}: tiny | qwen2_5_vl | qwen3_vl")
    return "qwen2_5_vl" if cfg.name == "qwen2_5_vl" else "qwen3_vl"


def resolve_dtype(name: str | torch.dtype | None, device: torch.device | str) -> torch.dtype:
    """``auto``: bf16 on CUDA (fp16 overflows in Qwen-VL), fp32 elsewhere."""
    if isinstance(name, torch.dtype):
        return name
    if name in (None, "auto"):
        return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    dtypes |= {str(v).removeprefix("torch."): v for v in dtypes.values()}  # "bfloat16"...
    if name not in dtypes:
        raise ValueError(f"dtype must be auto or one of {sorted(dtypes)}, got {name!r}")
    return dtypes[name]


def resolve_attn(name: str, dtype: torch.dtype = torch.bfloat16) -> str:
    """``auto``: flash_attention_2 when flash-attn is importable, CUDA is up and the weights
    are half precision (flash-attn has no fp32 kernels); sdpa otherwise."""
    if name != "auto":
        return name
    half = dtype in (torch.bfloat16, torch.float16)
    if half and torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def _hf_config(cfg: BackboneConfig, token_ids: dict[str, int]):
    """A transformers config for a random-init backbone of the sizes in ``cfg``."""
    head_dim = cfg.text_head_dim
    if sum(cfg.mrope_section) * 2 != head_dim:
        raise ValueError(
            f"mrope_section {cfg.mrope_section} must sum to head_dim/2={head_dim // 2}"
        )
    vocab = cfg.compact_vocab or 151936
    text = dict(
        vocab_size=vocab,
        hidden_size=cfg.text_hidden,
        intermediate_size=cfg.text_intermediate,
        num_hidden_layers=cfg.text_layers,
        num_attention_heads=cfg.text_heads,
        num_key_value_heads=cfg.text_kv_heads,
        max_position_embeddings=8192,
    )
    vision = dict(
        depth=cfg.vision_depth,
        hidden_size=cfg.vision_hidden,
        intermediate_size=cfg.vision_intermediate,
        num_heads=cfg.vision_heads,
        patch_size=cfg.patch_size,
        spatial_merge_size=cfg.merge_size,
        temporal_patch_size=TEMPORAL_PATCH,
        out_hidden_size=cfg.text_hidden,
    )
    if architecture(cfg) == "qwen3_vl":
        from transformers import Qwen3VLConfig

        text.update(
            head_dim=head_dim,
            rope_parameters={
                "rope_type": "default",
                "rope_theta": 5e6,
                "mrope_section": list(cfg.mrope_section),
                "mrope_interleaved": True,
            },
        )
        vision.update(
            num_position_embeddings=cfg.vision_position_embeddings,
            deepstack_visual_indexes=list(cfg.deepstack_layers),
        )
        return Qwen3VLConfig(text_config=text, vision_config=vision, **token_ids)
    from transformers import Qwen2_5_VLConfig

    if head_dim != cfg.text_hidden // cfg.text_heads:
        raise ValueError("Qwen2.5-VL's head_dim is text_hidden / text_heads")
    text.update(
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 1e6,
            "mrope_section": list(cfg.mrope_section),
        }
    )
    vision.update(
        window_size=cfg.patch_size * cfg.merge_size * 4,
        fullatt_block_indexes=list(cfg.full_attention_blocks),
    )
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision, **token_ids)


def build_backbone(cfg: BackboneConfig, dtype: torch.dtype | None = None) -> nn.Module:
    """The base Qwen-VL model (vision tower + LM, no LM head): random init or a local dir.

    ``dtype`` None: a checkpoint loads in ``cfg.dtype`` (auto: bf16 when CUDA is available, so
    a 3B model never sits in fp32 first); a random-init model is fp32 (master weights for
    training from scratch; the predictor casts it for inference).
    """
    arch = architecture(cfg)
    if dtype is None:
        on = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = resolve_dtype(cfg.dtype, on) if cfg.checkpoint is not None else torch.float32
    attn = resolve_attn(cfg.attn_implementation, dtype)
    if cfg.checkpoint is not None:
        path = Path(cfg.checkpoint).expanduser()
        if not (path / "config.json").is_file():
            hub = cfg.hub_id or (
                "Qwen/Qwen2.5-VL-3B-Instruct"
                if arch == "qwen2_5_vl"
                else "Qwen/Qwen3-VL-2B-Instruct"
            )
            raise FileNotFoundError(
                f"backbone checkpoint directory {path} is missing or has no config.json. "
                f"Nothing is downloaded at run time: fetch it once with "
                f"`huggingface-cli download {hub} --local-dir {path}` (or set "
                f"GRASP_SEMANTICS_CHECKPOINTS to the folder holding it)."
            )
        from transformers import (
            Qwen2_5_VLForConditionalGeneration,
            Qwen3VLForConditionalGeneration,
        )

        cls = (
            Qwen2_5_VLForConditionalGeneration
            if arch == "qwen2_5_vl"
            else Qwen3VLForConditionalGeneration
        )
        full = cls.from_pretrained(
            str(path), dtype=dtype, attn_implementation=attn, local_files_only=True
        )
        return full.model  # hidden states only: the LM head is left behind
    if cfg.compact_vocab:
        table = CompactVocab.default(cfg.compact_vocab)
        ids = {k: table.row(SPECIAL_IDS[v]) for k, v in _TOKEN_KEYS.items()}
    else:
        ids = {k: SPECIAL_IDS[v] for k, v in _TOKEN_KEYS.items()}
    from transformers import Qwen2_5_VLModel, Qwen3VLModel

    cls = Qwen2_5_VLModel if arch == "qwen2_5_vl" else Qwen3VLModel
    return cls._from_config(_hf_config(cfg, ids), attn_implementation=attn, dtype=dtype)


_TOKEN_KEYS = {
    "image_token_id": "<|image_pad|>",
    "video_token_id": "<|video_pad|>",
    "vision_start_token_id": "<|vision_start|>",
    "vision_end_token_id": "<|vision_end|>",
}


def patchify(images: torch.Tensor, patch: int, merge: int) -> torch.Tensor:
    """Normalised images [N, 3, H, W] → Qwen-VL patches [N*gh*gw, 3*T*patch*patch].

    Same layout as transformers' Qwen2-VL image processor: merge-window-major order, then
    (channel, temporal, row, col) inside a patch; a still image fills both temporal slots.
    """
    n, c, h, w = images.shape
    gh, gw = h // patch, w // patch
    x = images.reshape(n, c, gh // merge, merge, patch, gw // merge, merge, patch)
    x = x.permute(0, 2, 5, 3, 6, 1, 4, 7)  # [N, gh/m, gw/m, m, m, C, p, p]
    x = x.unsqueeze(6).expand(*x.shape[:6], TEMPORAL_PATCH, patch, patch)
    return x.reshape(n * gh * gw, c * TEMPORAL_PATCH * patch * patch)


def patchify_frames(frames: torch.Tensor, patch: int, merge: int) -> torch.Tensor:
    """Normalised video frames [T, 3, H, W] (T even) → Qwen-VL patches
    [T/2*gh*gw, 3*T*patch*patch]: :func:`patchify`'s layout with two consecutive frames in the
    temporal slots instead of one image twice (the processors' video layout)."""
    t, c, h, w = frames.shape
    if t % TEMPORAL_PATCH:
        raise ValueError(f"a video needs an even number of frames, got {t}")
    gh, gw = h // patch, w // patch
    x = frames.reshape(
        t // TEMPORAL_PATCH,
        TEMPORAL_PATCH,
        c,
        gh // merge,
        merge,
        patch,
        gw // merge,
        merge,
        patch,
    )
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)  # [T/2, gh/m, gw/m, m, m, C, 2, p, p]
    return x.reshape(t // TEMPORAL_PATCH * gh * gw, c * TEMPORAL_PATCH * patch * patch)


@dataclass
class EncoderOutput:
    """What the encoder gives the rest of the network (all float32)."""

    hidden: torch.Tensor | None  # [B, L, D] backbone last hidden states (None from the cache)
    attention_mask: torch.Tensor | None  # [B, L] 1 = real token
    global_vec: torch.Tensor  # [B, global_dim] pooled semantic vector
    tokens: torch.Tensor | None  # [B, L, token_dim] projected token features
    visual_grid: torch.Tensor  # [B, V, Hg, Wg, token_dim] visual token features per view
    token_rc: torch.Tensor | None  # [B, L, 2] (row, col) of visual tokens, -1 for text
    token_view: torch.Tensor | None  # [B, L] view index of visual tokens, -1 for text


class QwenSemanticsEncoder(nn.Module):
    """Images (one or more views per sample) + instruction → semantic features.

    ``forward(images, instructions)`` takes uint8 images ``[B, V, H, W, 3]`` (or a
    ``[B, H, W, 3]`` single view) and ``B`` strings and returns an :class:`EncoderOutput`.
    """

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        bcfg = cfg.backbone
        self.arch = architecture(bcfg)
        self.grid_hw = self.token_grid(bcfg.image_size)  # visual tokens per view (rows, cols)
        self.tokenizer = load_tokenizer(bcfg.checkpoint if bcfg.checkpoint else None)
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
        self.compact = CompactVocab.default(bcfg.compact_vocab) if bcfg.compact_vocab else None
        self.backbone = build_backbone(bcfg)
        dim = self._hidden_size()
        mean, std = _MEAN_STD[self.arch]
        self.register_buffer("pix_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pix_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.norm = nn.LayerNorm(dim)
        self.pool_score = nn.Linear(dim, 1) if cfg.pool == "attention" else None
        self.global_proj = nn.Sequential(
            nn.Linear(dim, cfg.global_dim), nn.GELU(), nn.Linear(cfg.global_dim, cfg.global_dim)
        )
        self.token_proj = nn.Sequential(
            nn.Linear(dim, cfg.token_dim), nn.GELU(), nn.Linear(cfg.token_dim, cfg.token_dim)
        )
        # (image key, instruction) -> (global vector [G], visual grid [V, Hg, Wg, T])
        self._cache: ContentCache[tuple[torch.Tensor, torch.Tensor]] = ContentCache(cfg.cache_size)
        self.backbone_calls = 0  # samples the backbone has run on (tests, cache statistics)
        self._apply_tuning()

    # ----------------------------------------------------------------- setup
    def _hidden_size(self) -> int:
        config = self.backbone.config
        return getattr(config, "text_config", config).hidden_size

    def _apply_tuning(self) -> None:
        bcfg = self.cfg.backbone
        if bcfg.tuning not in ("frozen", "lora", "full"):
            raise ValueError(f"tuning must be frozen | lora | full, got {bcfg.tuning!r}")
        if bcfg.tuning in ("frozen", "lora"):
            self.backbone.requires_grad_(False)
        if bcfg.tuning == "lora":
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(
                r=bcfg.lora_r,
                lora_alpha=bcfg.lora_alpha,
                lora_dropout=bcfg.lora_dropout,
                target_modules=list(bcfg.lora_targets),
                bias="none",
            )
            self.backbone = get_peft_model(self.backbone, lora)
        if bcfg.gradient_checkpointing and bcfg.tuning != "frozen":
            kwargs = {"use_reentrant": False}
            if hasattr(self.backbone, "activation_checkpointing_enable"):  # transformers >= 5
                self.backbone.activation_checkpointing_enable(
                    activation_checkpointing_kwargs=kwargs
                )
            else:
                self.backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)

    def set_compact_vocab(self, texts: Sequence[str]) -> None:
        """Rebuild the tiny backbone's compact id table from a corpus (before training).

        The special tokens keep their rows (they sort last), so the backbone config's
        image/vision token ids stay valid; other rows are re-assigned, so do this before
        training, never on a trained model.
        """
        if self.compact is None:
            raise ValueError("this backbone uses the full Qwen vocabulary")
        table = CompactVocab.from_texts(texts, self.compact.size, self.tokenizer)
        self.compact.kept_ids.copy_(table.kept_ids.to(self.compact.kept_ids.device))
        self.clear_cache()

    def backbone_dtype(self) -> torch.dtype:
        return next(self.backbone.parameters()).dtype

    # ------------------------------------------------------------ inputs
    def token_grid(self, image_size: Sequence[int]) -> tuple[int, int]:
        """Visual tokens (rows, cols) per view of an input of ``image_size`` (H, W) pixels;
        both must be multiples of patch x merge size."""
        bcfg = self.cfg.backbone
        unit = bcfg.patch_size * bcfg.merge_size
        h, w = (int(v) for v in image_size)
        if h <= 0 or w <= 0 or h % unit or w % unit:
            raise ValueError(
                f"image_size {tuple(image_size)} must be positive multiples of {unit}"
            )
        return h // unit, w // unit

    def _prompt(self, instruction: str, views: int) -> str:
        bcfg = self.cfg.backbone
        images = [{"type": "image"}] * views
        text = [{"type": "text", "text": instruction}]
        content = text + images if bcfg.instruction_first else images + text
        messages = [{"role": "user", "content": content}]
        if bcfg.system_prompt:
            messages.insert(0, {"role": "system", "content": bcfg.system_prompt})
        # Some snapshots keep the chat template only in the processor's files: fall back to ours.
        template = None if getattr(self.tokenizer, "chat_template", None) else CHAT_TEMPLATE
        prompt = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, chat_template=template
        )
        tokens_per_view = self.grid_hw[0] * self.grid_hw[1]
        return prompt.replace(IMAGE_TOKEN, IMAGE_TOKEN * tokens_per_view)

    def pack(self, images: torch.Tensor, instructions: Sequence[str]) -> dict[str, torch.Tensor]:
        """Backbone inputs for uint8 images [B, V, H, W, 3] and B instructions."""
        v = images.shape[1]
        device = self.pix_mean.device
        prompts = [self._prompt(text, v) for text in instructions]
        enc = self.tokenizer(prompts, padding=True, return_tensors="pt", add_special_tokens=False)
        input_ids = enc["input_ids"].to(device)  # [B, L] real Qwen ids
        return {
            "input_ids": input_ids,
            "attention_mask": enc["attention_mask"].to(device),
            "mm_token_type_ids": (input_ids == self.image_token_id).int(),  # 1 at image tokens
            **self.pixel_inputs(images),
        }

    def pixel_inputs(
        self, images: torch.Tensor, image_size: Sequence[int] | None = None
    ) -> dict[str, torch.Tensor]:
        """``pixel_values`` [B*V*gh*gw, 3*T*p*p] and ``image_grid_thw`` [B*V, 3] of uint8
        images [B, V, H, W, 3], resized to ``image_size`` (H, W; default the backbone's fixed
        input size, which the grasp path always uses)."""
        b, v = images.shape[:2]
        device = self.pix_mean.device
        if image_size is not None:
            self.token_grid(image_size)  # checks the size (the backbone's was, at init)
        h, w = image_size or self.cfg.backbone.image_size
        x = images.to(device).reshape(b * v, *images.shape[2:]).permute(0, 3, 1, 2).float()
        if x.shape[-2:] != (h, w):
            x = F.interpolate(x, size=(h, w), mode="bicubic", antialias=True, align_corners=False)
        x = ((x / 255.0).clamp(0.0, 1.0) - self.pix_mean) / self.pix_std  # [B*V, 3, h, w]
        pixels = patchify(x, self.cfg.backbone.patch_size, self.cfg.backbone.merge_size)
        grid = torch.tensor(
            [1, h // self.cfg.backbone.patch_size, w // self.cfg.backbone.patch_size],
            device=device,
        )
        return {
            "pixel_values": pixels.to(self.backbone_dtype()),
            "image_grid_thw": grid.expand(b * v, 3).contiguous(),
        }

    def video_inputs(
        self, frames: torch.Tensor, image_size: Sequence[int]
    ) -> dict[str, torch.Tensor]:
        """``pixel_values_videos`` and ``video_grid_thw`` [1, 3] of one clip's uint8 frames
        [T, H, W, 3] (T even), each resized to ``image_size`` (H, W) as :meth:`pixel_inputs`
        resizes an image."""
        self.token_grid(image_size)
        h, w = (int(v) for v in image_size)
        bcfg = self.cfg.backbone
        x = frames.to(self.pix_mean.device).permute(0, 3, 1, 2).float()
        if x.shape[-2:] != (h, w):
            x = F.interpolate(x, size=(h, w), mode="bicubic", antialias=True, align_corners=False)
        x = ((x / 255.0).clamp(0.0, 1.0) - self.pix_mean) / self.pix_std
        grid = [x.shape[0] // TEMPORAL_PATCH, h // bcfg.patch_size, w // bcfg.patch_size]
        return {
            "pixel_values_videos": patchify_frames(x, bcfg.patch_size, bcfg.merge_size).to(
                self.backbone_dtype()
            ),
            "video_grid_thw": torch.tensor([grid], device=x.device),
        }

    # ------------------------------------------------------------ forward
    def forward(self, images: torch.Tensor, instructions: Sequence[str]) -> EncoderOutput:
        images = as_image_batch(images)
        if len(instructions) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} image sets but {len(instructions)} instructions")
        inputs = self.pack(images, instructions)
        real_ids = inputs["input_ids"]
        if self.compact is not None:
            inputs["input_ids"] = self.compact(real_ids)
        frozen = self.cfg.backbone.tuning == "frozen"
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            out = self.backbone(**inputs, use_cache=False, return_dict=True)
        self.backbone_calls += images.shape[0]
        hidden = out.last_hidden_state.float()  # [B, L, D]
        mask = inputs["attention_mask"]  # [B, L]
        normed = self.norm(hidden)
        global_vec = self.global_proj(self._pool(normed, mask))  # [B, global_dim]
        tokens = self.token_proj(normed)  # [B, L, token_dim]
        token_rc, token_view = self._visual_positions(real_ids, images.shape[1])
        b, v = images.shape[:2]
        hg, wg = self.grid_hw
        visual = tokens[token_view >= 0].reshape(b, v, hg, wg, tokens.shape[-1])
        return EncoderOutput(hidden, mask, global_vec, tokens, visual, token_rc, token_view)

    def _pool(self, normed: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Masked attention (or mean) pool [B, L, D] → [B, D]."""
        valid = mask.bool()
        if self.pool_score is None:
            weights = valid.float() / valid.float().sum(1, keepdim=True).clamp(min=1)
        else:
            scores = self.pool_score(normed).squeeze(-1).masked_fill(~valid, float("-inf"))
            weights = scores.softmax(dim=1)  # [B, L]
        return torch.einsum("bl,bld->bd", weights, normed)

    def _visual_positions(
        self, ids: torch.Tensor, views: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(row, col) [B, L, 2] and view [B, L] of each visual token; -1 for other tokens."""
        is_img = ids == self.image_token_id  # [B, L]
        order = is_img.long().cumsum(1) - 1  # index among the sample's visual tokens
        per_view = self.grid_hw[0] * self.grid_hw[1]
        if not bool((is_img.sum(1) == views * per_view).all()):
            raise RuntimeError("visual token count does not match the image grid")
        rc = torch.stack([(order % per_view) // self.grid_hw[1], order % self.grid_hw[1]], -1)
        rc = torch.where(is_img[..., None], rc, torch.full_like(rc, -1))
        view = torch.where(is_img, order // per_view, torch.full_like(order, -1))
        return rc, view

    # ------------------------------------------------------------ cache
    def encode_cached(
        self,
        images: torch.Tensor,
        instructions: Sequence[str],
        image_keys: Sequence[str] | None = None,
    ) -> EncoderOutput:
        """Global vector and visual grid, reusing results for a seen (image, instruction).

        ``image_keys``: each sample's :func:`image_key`, when the caller has them already.
        Only used without autograd (inference); with gradients it is plain ``forward``.
        """
        images = as_image_batch(images)
        if self.cfg.cache_size <= 0 or torch.is_grad_enabled() or self.training:
            return self.forward(images, instructions)
        if image_keys is None:
            image_keys = [image_key(views) for views in images]
        keys = list(zip(image_keys, instructions, strict=True))
        found = {i: self._cache.get(k) for i, k in enumerate(keys)}  # taken before any insert
        missing = [i for i, entry in found.items() if entry is None]
        if missing:
            out = self.forward(images[missing], [instructions[i] for i in missing])
            for j, i in enumerate(missing):
                found[i] = (out.global_vec[j].detach(), out.visual_grid[j].detach())
                self._cache.put(keys[i], found[i])
        hits = [found[i] for i in range(len(keys))]
        global_vec = torch.stack([h[0] for h in hits])
        visual = torch.stack([h[1] for h in hits])
        return EncoderOutput(None, None, global_vec, None, visual, None, None)

    def clear_cache(self) -> None:
        self._cache.clear()


def image_key(views: torch.Tensor) -> str:
    """Content hash of one sample's images [V, H, W, 3]."""
    return content_key(views.detach().cpu().numpy())


def as_image_batch(images) -> torch.Tensor:
    """uint8 [B, V, H, W, 3] from a tensor/array [B, (V,) H, W, 3] or nested lists of arrays."""
    if isinstance(images, list | tuple):
        samples = []
        for sample in images:
            views = sample if isinstance(sample, list | tuple) else [sample]
            samples.append(torch.stack([torch.as_tensor(np.asarray(x)) for x in views]))
        images = torch.stack(samples)
    images = torch.as_tensor(images)
    if images.dim() == 4:
        images = images.unsqueeze(1)
    if images.dim() != 5 or images.shape[-1] != 3 or images.dtype != torch.uint8:
        raise ValueError(
            f"images must be uint8 [B, V, H, W, 3]; got {images.dtype} {tuple(images.shape)}"
        )
    return images
