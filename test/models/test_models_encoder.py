"""Qwen-VL semantics encoder on tiny and small random configs of both real architectures."""

import pytest
import torch

from grasp_semantics.benchmarks import flops
from grasp_semantics.models.config import get_config
from grasp_semantics.models.semantics_qwen import QwenSemanticsEncoder, build_backbone

FLAVOURS = ["tiny", "debug_qwen3_vl", "debug_qwen2_5_vl"]


def _images(b, h=96, w=128, views=1):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (b, views, h, w, 3), dtype=torch.uint8, generator=g)


@pytest.mark.parametrize("name", FLAVOURS)
def test_encoder_shapes_and_masks(name):
    torch.manual_seed(0)
    cfg = get_config(name).encoder
    enc = QwenSemanticsEncoder(cfg)
    texts = ["hand me the knife", "pour water from the red mug, please"]
    out = enc(_images(2), texts)
    b, seq, dim = out.hidden.shape
    assert b == 2 and dim == enc._hidden_size()
    hg, wg = enc.grid_hw
    assert out.global_vec.shape == (2, cfg.global_dim)
    assert out.tokens.shape == (2, seq, cfg.token_dim)
    assert out.visual_grid.shape == (2, 1, hg, wg, cfg.token_dim)
    lengths = out.attention_mask.sum(1)
    assert lengths[1] > lengths[0] and lengths.max() == seq  # right padding, longer text
    assert out.attention_mask[0, lengths[0] :].sum() == 0
    visual = out.token_view >= 0
    assert int(visual.sum(1)[0]) == hg * wg
    rc = out.token_rc[0][visual[0]]
    assert rc[:, 0].max() == hg - 1 and rc[:, 1].max() == wg - 1
    assert torch.isfinite(out.global_vec).all()
    # Instruction first: every visual token comes after the instruction's tokens.
    first_visual = int(visual[0].float().argmax())
    assert first_visual > 4


def test_image_first_order_option_and_multiple_views():
    cfg = get_config("debug_qwen3_vl").encoder
    cfg.backbone.instruction_first = False
    enc = QwenSemanticsEncoder(cfg)
    out = enc(_images(1, views=2), ["stir the soup"])
    visual = out.token_view[0] >= 0
    positions = visual.nonzero().squeeze(1)
    assert int(positions[0]) < 6  # the images come right after "<|im_start|>user\n"
    assert out.visual_grid.shape[1] == 2
    assert set(out.token_view[0][visual].tolist()) == {0, 1}


def test_lora_trains_only_lora_parameters():
    cfg = get_config("debug_qwen3_vl").encoder
    cfg.backbone.tuning = "lora"
    enc = QwenSemanticsEncoder(cfg)
    trainable = [n for n, p in enc.backbone.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    lora_a = next(m for n, m in enc.backbone.named_modules() if n.endswith("q_proj")).lora_A
    assert lora_a["default"].out_features == 32
    out = enc(_images(1), ["cut the bread"])
    out.global_vec.sum().backward()
    with_grad = [n for n, p in enc.backbone.named_parameters() if p.grad is not None]
    assert with_grad and all("lora_" in n for n in with_grad)
    assert enc.global_proj[0].weight.grad is not None


def test_frozen_backbone_gets_no_gradients():
    cfg = get_config("debug_qwen2_5_vl").encoder
    cfg.backbone.tuning = "frozen"
    enc = QwenSemanticsEncoder(cfg)
    out = enc(_images(1), ["open the bottle"])
    out.global_vec.sum().backward()
    assert all(p.grad is None for p in enc.backbone.parameters())
    assert enc.global_proj[0].weight.grad is not None


def test_encoder_cache_hit_skips_backbone():
    enc = QwenSemanticsEncoder(get_config("debug_qwen3_vl").encoder).eval()
    images = _images(2)
    with torch.inference_mode():
        first = enc.encode_cached(images, ["a", "b"])
        calls = enc.backbone_calls
        again = enc.encode_cached(images, ["a", "b"])
        assert enc.backbone_calls == calls
        torch.testing.assert_close(first.global_vec, again.global_vec)
        enc.encode_cached(images, ["a", "changed"])  # one new (image, instruction) pair
        assert enc.backbone_calls == calls + 1


def test_encoder_cache_smaller_than_the_batch_still_answers_every_sample():
    cfg = get_config("debug_qwen3_vl").encoder
    cfg.cache_size = 1
    enc = QwenSemanticsEncoder(cfg).eval()
    images = _images(3)
    with torch.inference_mode():
        enc.encode_cached(images[:1], ["a"])  # cached, then evicted by this batch's misses
        got = enc.encode_cached(images, ["a", "b", "c"])
        want = enc(images, ["a", "b", "c"])
    torch.testing.assert_close(got.global_vec, want.global_vec)
    torch.testing.assert_close(got.visual_grid, want.visual_grid)
    assert len(enc._cache) == 1


# Parameters of the published checkpoints (safetensors totals; the LM head is tied to the
# token embedding, so the base model without it holds them all).
PUBLISHED_PARAMETERS = {
    "qwen2_5_vl_3b": 3_754_622_976,
    "qwen3_vl_2b": 2_127_532_032,
    "qwen3_vl_4b": 4.44e9,  # the model card's 4.44B
}


@pytest.mark.parametrize("flavour", sorted(PUBLISHED_PARAMETERS))
def test_a_real_flavour_without_its_checkpoint_is_the_published_architecture(flavour):
    """``checkpoint: null`` builds the real architecture with random weights (benchmarks on a
    machine without the checkpoints), and the FLOP count's dimensions are the same."""
    cfg = get_config(flavour).encoder.backbone
    cfg.checkpoint = None
    with torch.device("meta"):  # sizes only: no memory, no weights
        backbone = build_backbone(cfg, dtype=torch.bfloat16)
    parameters = sum(p.numel() for p in backbone.parameters())
    assert parameters == pytest.approx(PUBLISHED_PARAMETERS[flavour], rel=1e-3)
    # the analytic count behind the GPU bounds (matmul weights) plus the token embedding;
    # norms, biases and position tables are the rest (under 0.2%)
    counts = flops.encoder_counts(flops.dims_of(cfg), tuple(cfg.image_size), text_tokens=0)
    matmuls = counts["vision_encoder"]["params"] + counts["language_model"]["params"]
    embedding = backbone.config.text_config.vocab_size * cfg.text_hidden
    assert parameters == pytest.approx(matmuls + embedding, rel=2e-3)


def test_missing_checkpoint_says_what_to_download(tmp_path):
    cfg = get_config("qwen2_5_vl_3b").encoder.backbone
    cfg.checkpoint = str(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match=r"huggingface-cli download Qwen/Qwen2\.5-VL-3B"):
        build_backbone(cfg)


def test_gradient_checkpointing_full_tuning_backward():
    cfg = get_config("debug_qwen2_5_vl").encoder
    cfg.backbone.gradient_checkpointing = True
    enc = QwenSemanticsEncoder(cfg).train()
    assert any(getattr(m, "gradient_checkpointing", False) for m in enc.backbone.modules())
    enc(_images(2), ["hammer the nail", "brush"]).global_vec.sum().backward()
    assert any(p.grad is not None for p in enc.backbone.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["debug_qwen3_vl", "debug_qwen2_5_vl"])
def test_local_checkpoint_directory_loads_like_a_hub_snapshot(name, tmp_path):
    """A ...ForConditionalGeneration directory (weights + tokenizer files) loads through the
    real-checkpoint path and gives the same hidden states as the model that wrote it."""
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen3VLForConditionalGeneration

    from grasp_semantics.models.semantics_qwen import _TOKEN_KEYS, _hf_config
    from grasp_semantics.models.tokenizer import SPECIAL_IDS, load_tokenizer

    torch.manual_seed(0)
    cfg = get_config(name).encoder
    ids = {k: SPECIAL_IDS[v] for k, v in _TOKEN_KEYS.items()}
    cls = (
        Qwen3VLForConditionalGeneration if "qwen3" in name else Qwen2_5_VLForConditionalGeneration
    )
    full = cls(_hf_config(cfg.backbone, ids)).eval()
    full.save_pretrained(tmp_path)
    load_tokenizer(None).save_pretrained(tmp_path)
    cfg.backbone.checkpoint = str(tmp_path)
    enc = QwenSemanticsEncoder(cfg).eval()
    assert not hasattr(enc.backbone, "lm_head")
    with torch.no_grad():
        inputs = enc.pack(_images(1), ["hand me the knife"])
        ours = enc.backbone(**inputs, use_cache=False).last_hidden_state
        ref = full.model(**inputs, use_cache=False).last_hidden_state
    torch.testing.assert_close(ours, ref)
