"""FLOPs and weight bytes of the encoder stages, counted from the architecture, and the GPU bound.

A real backbone's forward takes tens of seconds on a CPU (billions of parameters), so the
vision tower, the language model and the projection are counted analytically from their
dimensions: the matmuls (multiply-add = 2 FLOPs) of patch embedding, attention projections,
attention scores and values, MLPs and patch mergers. Norms, rotary embeddings and activations
are left out (a few percent). The dimensions of the real flavours are those of their published
``config.json`` files, held by their flavours' configs (``models/config.py``) as for any other.
``benchmarks/bench.py`` checks the count against ``torch.utils.flop_counter`` on the bench
model's forward (on a GPU also for a real flavour, built with random weights:
``--random-backbone``).

The lower bound of a stage on a GPU is ``max(FLOPs / peak FLOP/s, weight bytes / memory
bandwidth)``: a batch-1 forward reads every weight once.
"""

from __future__ import annotations

from dataclasses import dataclass

from grasp_semantics.models.config import BackboneConfig, GraspNetConfig, get_config

# NVIDIA H100 SXM5: dense bf16 tensor-core peak and HBM3 bandwidth (datasheet figures).
H100 = {"name": "H100 SXM5", "bf16_flops": 989e12, "memory_bytes_per_s": 3.35e12}


@dataclass(frozen=True)
class BackboneDims:
    """What the count needs of a Qwen-VL backbone."""

    vision_depth: int
    vision_hidden: int
    vision_intermediate: int
    vision_mlp_mats: int  # 3: SwiGLU (Qwen2.5-VL), 2: GELU MLP (Qwen3-VL)
    window_patches: int | None  # patches per attention window; None: full attention
    full_attention_layers: int  # layers with full attention when windowed
    deepstack: int  # extra patch mergers (Qwen3-VL deepstack)
    patch: int
    merge: int
    text_hidden: int
    text_layers: int
    text_heads: int
    text_kv_heads: int
    head_dim: int
    text_intermediate: int


def dims_of(cfg: BackboneConfig) -> BackboneDims:
    """What the count needs of a backbone config (the real flavours' hold their published
    sizes, see ``models/config.py``)."""
    qwen3 = cfg.name != "qwen2_5_vl"
    return BackboneDims(
        vision_depth=cfg.vision_depth,
        vision_hidden=cfg.vision_hidden,
        vision_intermediate=cfg.vision_intermediate,
        vision_mlp_mats=2 if qwen3 else 3,
        window_patches=None if qwen3 else (4 * cfg.merge_size) ** 2,
        full_attention_layers=0 if qwen3 else len(cfg.full_attention_blocks),
        deepstack=len(cfg.deepstack_layers) if qwen3 else 0,
        patch=cfg.patch_size,
        merge=cfg.merge_size,
        text_hidden=cfg.text_hidden,
        text_layers=cfg.text_layers,
        text_heads=cfg.text_heads,
        text_kv_heads=cfg.text_kv_heads,
        head_dim=cfg.text_head_dim,
        text_intermediate=cfg.text_intermediate,
    )


def encoder_counts(
    dims: BackboneDims,
    image_hw: tuple[int, int],
    text_tokens: int,
    global_dim: int = 256,
    token_dim: int = 128,
) -> dict[str, dict[str, float]]:
    """FLOPs and weight parameters of vision encoder, language model and projection for one
    image of ``image_hw`` (the fixed input resolution) and ``text_tokens`` prompt tokens."""
    d = dims
    n = (image_hw[0] // d.patch) * (image_hw[1] // d.patch)  # patches
    tokens = n // d.merge**2  # visual tokens after the patch merger
    length = tokens + text_tokens
    h, hi = d.vision_hidden, d.vision_intermediate
    merger = 16 * h * h + 4 * h * d.text_hidden  # [4h -> 4h -> out] on merged tokens
    v_params = 6 * d.patch**2 * h + d.vision_depth * (4 * h * h + d.vision_mlp_mats * h * hi)
    v_params += (1 + d.deepstack) * merger
    v_macs = 6 * d.patch**2 * h * n  # patch embedding (3 channels x 2 frames x p x p)
    scores = 0  # attention scores and values (MACs), reported apart as well
    for layer in range(d.vision_depth):
        windowed = (
            d.window_patches is not None and layer < d.vision_depth - d.full_attention_layers
        )
        context = d.window_patches if windowed else n
        v_macs += n * (4 * h * h + d.vision_mlp_mats * h * hi)
        scores += 2 * n * context * h
    v_macs += scores
    v_macs += (1 + d.deepstack) * tokens * merger
    q = d.text_heads * d.head_dim
    kv = d.text_kv_heads * d.head_dim
    layer_params = (
        2 * d.text_hidden * q + 2 * d.text_hidden * kv + 3 * d.text_hidden * (d.text_intermediate)
    )
    t_params = d.text_layers * layer_params
    # attention over the whole prompt (a causal kernel may skip half of the score matmuls)
    t_scores = d.text_layers * 2 * length * length * q
    t_macs = d.text_layers * length * layer_params + t_scores
    p_params = d.text_hidden * (1 + global_dim + token_dim) + global_dim**2 + token_dim**2
    p_macs = length * d.text_hidden * (1 + token_dim) + length * token_dim**2
    p_macs += d.text_hidden * global_dim + global_dim**2
    return {
        "vision_encoder": {"flops": 2.0 * v_macs, "params": float(v_params)},
        "language_model": {"flops": 2.0 * t_macs, "params": float(t_params)},
        "projection": {"flops": 2.0 * p_macs, "params": float(p_params)},
        "_detail": {
            "patches": float(n),
            "visual_tokens": float(tokens),
            "tokens": float(length),
            "attention_score_flops": 2.0 * (scores + t_scores),
        },
    }


def gpu_bound_ms(flops: float, params: float, gpu: dict = H100, bytes_per_param: int = 2) -> float:
    """Lower bound (ms) of a batch-1 stage: compute- or weight-read-bound, whichever is slower."""
    compute = flops / gpu["bf16_flops"]
    memory = params * bytes_per_param / gpu["memory_bytes_per_s"]
    return 1000.0 * max(compute, memory)


def flavour_report(
    name: str, text_tokens: int, point_stages: dict[str, float], cfg: GraspNetConfig | None = None
) -> dict:
    """Per-stage GFLOPs and H100 bounds of flavour ``name`` at its fixed input resolution.

    ``point_stages``: measured FLOPs of the point stages (point network, heads), the same for
    every flavour with the default PointNet++ (they do not depend on the backbone).
    """
    cfg = cfg or get_config(name)
    bcfg = cfg.encoder.backbone
    image_hw = tuple(bcfg.image_size)
    counts = encoder_counts(
        dims_of(bcfg), image_hw, text_tokens, cfg.encoder.global_dim, cfg.encoder.token_dim
    )
    shape = counts.pop("_detail")
    stages = {}
    for stage, c in counts.items():
        stages[stage] = {
            "gflops": round(c["flops"] / 1e9, 3),
            "params_m": round(c["params"] / 1e6, 1),
            "h100_bound_ms": round(gpu_bound_ms(c["flops"], c["params"]), 4),
        }
    for stage, flops in point_stages.items():  # fp32 weights, a few MB: compute-bound here
        stages[stage] = {
            "gflops": round(flops / 1e9, 3),
            "h100_bound_ms": round(1000.0 * flops / H100["bf16_flops"], 4),
        }
    total = sum(s["h100_bound_ms"] for s in stages.values())
    return {
        "image": list(image_hw),
        "visual_tokens": int(shape["visual_tokens"]),
        "prompt_tokens": int(shape["tokens"]),
        "stages": stages,
        "total_gflops": round(sum(s["gflops"] for s in stages.values()), 2),
        "h100_bound_ms": round(total, 3),
    }
