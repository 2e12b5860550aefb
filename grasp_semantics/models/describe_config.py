"""What the describer is asked and configured with: the tasks and their prompts, the
describe config (adapters, vocabulary, decoding, the reading view), the files a trained
describer is saved as, and a scored answer."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

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
        keys = (
            "lora_targets",
            "image_size",
            "reading_crop",
            "reading_targets",
            "reading_text_targets",
        )
        for key in keys:
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(**data)


@dataclass(frozen=True)
class ScoredAnswer:
    """A generated answer and the head's confidence in it (see ``generate_scored``)."""

    text: str
    confidence: float  # in (0, 1]
