"""What the describer looks at and how a full-vocabulary backbone (a real Qwen-VL checkpoint)
sees it: images and video clips (:class:`Visual`), each at about its own size within
:class:`ResizeBounds` (qwen-vl-utils' rule), and the chat turn that holds their visual tokens,
as the checkpoints' own processors make it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from grasp_semantics.models.semantics_qwen import IMAGE_TOKEN, VIDEO_TOKEN, QwenSemanticsEncoder
from grasp_semantics.models.tokenizer import CHAT_TEMPLATE


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


def native_size(
    encoder: QwenSemanticsEncoder,
    height: int,
    width: int,
    video: bool = False,
    bounds: ResizeBounds | None = None,
) -> tuple[int, int]:
    """The (H, W) a full-vocabulary backbone sees an image (or a video frame) of ``height``
    x ``width`` at: its own size, aspect kept, within ``bounds``, multiples of patch x merge
    (transformers' Qwen2-VL ``smart_resize``, the rule qwen-vl-utils applies)."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    bcfg = encoder.cfg.backbone
    unit = bcfg.patch_size * bcfg.merge_size
    low, high = (bounds or ResizeBounds()).limits(unit, video)
    return smart_resize(int(height), int(width), unit, low, high)


def native_inputs(
    encoder: QwenSemanticsEncoder,
    visuals: Sequence[Visual],
    prompt: str,
    bounds: ResizeBounds | None,
) -> tuple[list[int], dict[str, torch.Tensor], torch.Tensor | None]:
    """Real ids of the chat turn, the image and video tensors, and (Qwen2.5-VL with video)
    the seconds per temporal patch of each clip, as the checkpoints' processors make them:
    each ``<|vision_start|><|image_pad|><|vision_end|>`` of the chat template holds one
    image's visual tokens; a clip's becomes, in Qwen3-VL, one ``<t seconds>`` and
    vision-start / tokens / vision-end per temporal patch (the checkpoint's own prompt
    format), in Qwen2.5-VL one run of video tokens."""
    enc = encoder
    bcfg = enc.cfg.backbone
    unit = bcfg.patch_size * bcfg.merge_size
    start, end = "<|vision_start|>", "<|vision_end|>"
    parts, images, videos, seconds = [], [], [], []
    for visual in visuals:
        frames = torch.from_numpy(np.array(visual.frames))
        h, w = native_size(enc, *frames.shape[1:3], bool(visual.video), bounds)
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
            parts.append(
                "".join(f"<{t:.1f} seconds>{start}{VIDEO_TOKEN * tokens}{end}" for t in pairs)
            )
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
    slots = re.compile("|".join(re.escape(start + t + end) for t in (IMAGE_TOKEN, VIDEO_TOKEN)))
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
