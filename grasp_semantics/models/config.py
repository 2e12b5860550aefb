"""Model configuration: small dataclasses, YAML round trip and a registry of named flavours.

Every network part has its own dataclass beside the whole-model :class:`GraspNetConfig`;
``to_dict`` / ``from_dict`` give plain dicts for ``config.yaml`` next to ``model.safetensors``.
Named flavours (``tiny``, ``debug_qwen3_vl``, ``qwen2_5_vl_3b``...) follow torchtitan's
"registry of flavours": ``get_config(name)`` returns a fresh config.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BACKBONE_NAMES = ("tiny", "qwen2_5_vl", "qwen3_vl")
TUNING_MODES = ("frozen", "lora", "full")
FUSION_MODES = ("global", "pixel_aligned")

# Where users put real checkpoints (a `save_pretrained` / hub-snapshot directory each).
CHECKPOINT_ROOT_ENV = "GRASP_SEMANTICS_CHECKPOINTS"
DEFAULT_CHECKPOINT_ROOT = "~/.cache/grasp_semantics/checkpoints"


@dataclass
class BackboneConfig:
    """The Qwen-VL backbone: which architecture, where its weights are, how it is tuned.

    ``checkpoint`` is a local directory (hub snapshot layout); ``None`` builds a random-init
    model from the size fields below (the ``tiny`` and ``debug_*`` flavours, and the real
    flavours without their weights: their fields hold the published sizes, for benchmarks).
    """

    name: str = "tiny"  # tiny (Qwen3-VL architecture, random init) | qwen2_5_vl | qwen3_vl
    checkpoint: str | None = None
    hub_id: str | None = None  # only named in error messages: what to download
    # Size of a random-init backbone (ignored when a checkpoint is given).
    text_hidden: int = 128
    text_layers: int = 4
    text_heads: int = 4
    text_kv_heads: int = 2
    text_intermediate: int = 384
    mrope_section: tuple[int, ...] = (6, 5, 5)  # must sum to head_dim / 2
    head_dim: int | None = None  # None: text_hidden / text_heads
    vision_depth: int = 4
    vision_hidden: int = 128
    vision_heads: int = 4
    vision_intermediate: int = 384
    patch_size: int = 16
    merge_size: int = 2
    # Qwen2.5-VL: the vision blocks with full attention (the others attend within windows);
    # None: the last block only.
    vision_full_attention: tuple[int, ...] | None = None
    # Qwen3-VL: vision blocks whose features also reach the language model (deepstack), and
    # the side of the learned position grid (interpolated to the patch grid) squared.
    deepstack_layers: tuple[int, ...] = (0,)
    vision_position_embeddings: int = 576
    # 0: the full Qwen vocabulary; >0: a compact table of that many rows (see tokenizer.py).
    compact_vocab: int = 4096
    # Fixed input resolution (H, W) in pixels: static shapes; both multiples of patch*merge.
    image_size: tuple[int, int] = (256, 320)
    instruction_first: bool = True  # instruction before the image: image tokens attend to it
    system_prompt: str | None = None
    tuning: str = "full"  # frozen | lora | full
    lora_r: int = 32
    lora_alpha: int = 64
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = (
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    )
    gradient_checkpointing: bool = False
    attn_implementation: str = "auto"  # auto: flash_attention_2 on CUDA when importable, else sdpa
    dtype: str = "auto"  # auto: bf16 on CUDA (fp16 overflows in these models), fp32 on CPU

    @property
    def text_head_dim(self) -> int:
        """The language model's attention head size (``head_dim``, else hidden / heads)."""
        return self.head_dim or self.text_hidden // self.text_heads

    @property
    def full_attention_blocks(self) -> tuple[int, ...]:
        """Qwen2.5-VL's vision blocks with full attention (``vision_full_attention``, else the
        last)."""
        return self.vision_full_attention or (self.vision_depth - 1,)


@dataclass
class EncoderConfig:
    """Projection of backbone hidden states to the semantic vector and token features."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    global_dim: int = 256  # the global semantic vector [B, 256]
    token_dim: int = 128  # projected per-token features for pixel-aligned fusion
    pool: str = "attention"  # attention | mean (both masked)
    cache_size: int = 8  # encoder outputs kept per (image hash, instruction); 0 disables


@dataclass
class SetAbstractionConfig:
    """One PointNet++ set-abstraction level; several radii make it multi-scale (MSG)."""

    npoint: int = 512
    radii: tuple[float, ...] = (0.03,)
    nsamples: tuple[int, ...] = (32,)
    mlps: tuple[tuple[int, ...], ...] = ((32, 32, 64),)


@dataclass
class PointNetConfig:
    """PointNet++ encoder-decoder over the fixed-size sampled cloud."""

    num_points: int = 2048  # points the network sees per sample (static shape)
    in_features: int = 0  # extra per-point input channels beside xyz (0: geometry only)
    # Sample the image colour at each point's pixel as 3 more input channels (needs intrinsics):
    # parts and objects differ in appearance, which geometry alone does not show.
    colour: bool = False
    sa: tuple[SetAbstractionConfig, ...] = (
        SetAbstractionConfig(512, (0.02, 0.04), (16, 32), ((32, 32, 64), (32, 32, 64))),
        SetAbstractionConfig(128, (0.08,), (32,), ((128, 128, 256),)),
        SetAbstractionConfig(32, (0.16,), (32,), ((256, 256, 256),)),
    )
    fp_mlps: tuple[tuple[int, ...], ...] = ((256, 256), (256, 128), (128, 128))
    center: bool = True  # subtract the cloud centroid before the network (metric scale kept)


@dataclass
class FusionConfig:
    """How the instruction reaches the point features."""

    mode: str = "global"  # global | pixel_aligned
    global_op: str = "film"  # film | concat (how the [B, 256] vector enters)
    out_dim: int = 128


@dataclass
class PartGraspConfig:
    """Grasps planned from the cloud across the predicted part (``grasping/part_planning.py``).

    Lengths in metres, angles in degrees.
    """

    enabled: bool = True  # False: the grasp head's grasps only
    # The part measured on the observed cloud near the contact (probabilities from the nearest
    # scored point) rather than on the network's sparser sample alone (grasping/part_planning.py).
    dense: bool = True
    region_radius: float = 0.05  # the part: points this close to the most probable contact ...
    region_fraction: float = 0.5  # ... with at least this fraction of its probability
    min_points: int = 3  # on the part, in a section across it, and between the fingers
    offsets: tuple[float, ...] = (0.0, -0.01, 0.01, -0.02, 0.02)  # sections along the part
    section: float = 0.01  # half-length of the section a top-down grasp closes across
    yaw_deg: tuple[float, ...] = (0.0, 15.0, -15.0, 30.0, -30.0)  # turns off "across the part"
    side_yaw_deg: tuple[float, ...] = (0.0, 20.0, -20.0, 40.0, -40.0)  # side approach turns
    side_levels: tuple[float, ...] = (0.5, 0.3, 0.7)  # side grasp heights, fraction of the part
    side_reach: tuple[float, ...] = (0.01, 0.025)  # fingertips beyond the part's middle
    width_margin: float = 0.01  # opening beyond the part's seen width
    # Top-down grasps over the part's top edge (the rim of a mug's body): the points within
    # rim_band of the part's top are its edge, tried at rim_places places far apart (0 = none),
    # each closing across the edge points within rim_reach, the fingertips rim_depth below the
    # top; ranked below equally good grasps across the part (rim_preference).
    rim_band: float = 0.006
    rim_places: int = 4
    rim_reach: float = 0.015
    rim_depth: float = 0.015
    rim_preference: float = 0.8
    table_clearance: float = 0.004  # lowest fingertip height above the support plane
    plane_radius: float = 0.3  # support plane fitted to cloud points this close to the part
    plane_tolerance: float = 0.005  # RANSAC inlier distance
    plane_hypotheses: int = 128
    plane_min_fraction: float = 0.2  # of the nearby points on the plane, else no plan
    # Parts planned on: the most probable contact's and, with regions > 1, the next most
    # probable part's, and so on: the points of a part already planned on (those with at least
    # region_fraction of its contact's probability, linked to it by steps shorter than
    # region_separation) and the points that near them score 0 for the next. When the first
    # part is the wrong one, the robot's next grasps are on the next most likely.
    regions: int = 1
    region_separation: float = 0.02


OPENING_CLEARANCE = 0.005  # m opened beyond the grasp width on each side before closing


@dataclass(frozen=True)
class GripperConfig:
    """Geometry of a parallel-jaw gripper; the defaults are Franka-Hand-like. A checkpoint's
    heads and grasp scorer are trained for one (``grasping/gripper.py`` has the frame)."""

    max_width: float = 0.08  # largest finger opening, m
    finger_depth: float = 0.045  # finger length along the approach axis, m
    finger_thickness: float = 0.01  # finger size along the closing axis, m
    finger_breadth: float = 0.02  # finger size along y, m
    palm_depth: float = 0.02  # palm size along the approach axis, behind the fingers, m
    # The robot's tool centre point: this far behind the fingertips' midpoint along the
    # approach axis (towards the palm), m. 0: between the fingertips, the planning frame;
    # finger_depth / 2: between the finger pads' centres; finger_depth: at the palm's face.
    tcp_depth: float = 0.0

    def __post_init__(self) -> None:
        for name in ("max_width", "finger_depth", "finger_thickness", "finger_breadth"):
            if not getattr(self, name) > 0:
                raise ValueError(f"gripper {name} must be positive, got {getattr(self, name)}")
        if self.max_width <= 2 * OPENING_CLEARANCE:
            raise ValueError(
                f"gripper max_width {self.max_width} m leaves no opening: more than "
                f"{2 * OPENING_CLEARANCE} m (the clearance on both sides) needed"
            )
        if self.palm_depth < 0:
            raise ValueError(f"gripper palm_depth must not be negative, got {self.palm_depth}")


@dataclass
class GraspScorerConfig:
    """The grasp scorer (``grasp_scorer.py``): the chance a planned grasp succeeds, from the
    observed cloud in the gripper's frame. Lengths in metres."""

    # Voxel grid in the gripper frame (x closing, y along the finger breadth, z approach; TCP at
    # the origin, fingers at z in [-finger_depth, 0], the palm above): cells per axis and the
    # box they split, large enough to hold the opened fingers, the palm's underside and what
    # lies just beyond them.
    cells: tuple[int, int, int] = (12, 5, 8)
    low: tuple[float, float, float] = (-0.05, -0.025, -0.065)
    high: tuple[float, float, float] = (0.05, 0.025, 0.015)
    hidden: tuple[int, ...] = (128, 64)
    dropout: float = 0.2

    @property
    def num_features(self) -> int:
        """Two channels per cell (point count, mean contact probability), the up direction in
        the gripper frame (3), the opening and the planner's quality (2), and which part the
        candidate was planned on: its rank and relative probability (2)."""
        return 2 * self.cells[0] * self.cells[1] * self.cells[2] + 7

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GraspScorerConfig:
        return _build(cls, data)


@dataclass
class HeadsConfig:
    """Per-point contact and Contact-GraspNet-style grasp heads, and decoding."""

    hidden: int = 128
    dropout: float = 0.0
    # A head telling whether each point lies on the object the instruction names: trained
    # with loss.w_target as an auxiliary task (denser than the contact labels), for grounding.
    target_head: bool = False
    max_width: float = 0.08  # gripper max opening (m), Franka-like
    # A point's contact probability is the mean of the sigmoid over it and its nearest sampled
    # neighbours, this many in all (1 = each point alone): one stray confident point no longer
    # decides where to touch; see grasping/decoding.py, contact_probability.
    contact_neighbours: int = 4
    nms_translation: float = 0.02  # m: grasps closer than this in TCP ...
    nms_rotation_deg: float = 30.0  # ... and in rotation are duplicates
    nms_candidates: int = 256  # best candidates considered by NMS
    collision_check: bool = True  # drop grasps whose gripper would hit the observed cloud
    collision_tolerance: int = 3  # cloud points allowed inside the gripper (sensor noise)
    # With the observed cloud at decoding: a closing direction within this angle (at most 45)
    # of the inward surface normal at its contact is turned towards it about the approach
    # axis (0 = off); see grasping/decoding.py.
    snap_closing_deg: float = 45.0
    normal_neighbours: int = 16  # cloud points the surface normal at a contact is fitted to
    part_grasps: PartGraspConfig = field(default_factory=PartGraspConfig)


@dataclass
class LossConfig:
    """Weights and parameters of the training losses (criterion.py)."""

    contact_loss: str = "focal"  # focal | weighted_bce
    focal_gamma: float = 2.0
    focal_alpha: float = 0.75  # weight of positives (functional contacts are rare)
    max_pos_weight: float = 50.0  # cap of the automatic pos_weight of weighted_bce
    grasp_radius: float = 0.01  # m: a point gets a GT grasp whose finger contact is this close
    w_contact: float = 1.0
    w_score: float = 1.0
    w_approach: float = 1.0
    w_closing: float = 1.0
    w_width: float = 1.0
    w_target: float = 0.5  # target-object loss (only with heads.target_head)


@dataclass
class GraspNetConfig:
    """The whole network: encoder + PointNet++ + fusion + heads (+ loss settings)."""

    name: str = "tiny"
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    pointnet: PointNetConfig = field(default_factory=PointNetConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    heads: HeadsConfig = field(default_factory=HeadsConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples become lists) for YAML."""
        return _to_plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GraspNetConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise, missing keys take defaults."""
        return _build(cls, data)

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: str | os.PathLike) -> GraspNetConfig:
        return cls.from_dict(yaml.safe_load(Path(path).read_text()) or {})


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_plain(v) for v in value]
    return value


def _build(cls: type, data: dict[str, Any]) -> Any:
    """Recursively build dataclass ``cls`` from a dict, turning lists back into tuples."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    kwargs = {}
    for key, value in data.items():
        default = getattr(cls(), key)
        kwargs[key] = _coerce(default, value)
    return cls(**kwargs)


def _coerce(default: Any, value: Any) -> Any:
    if dataclasses.is_dataclass(default):
        return _build(type(default), value)
    if isinstance(default, tuple) and isinstance(value, list | tuple):
        if default and dataclasses.is_dataclass(default[0]):
            return tuple(_build(type(default[0]), v) for v in value)
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    if default is None and isinstance(value, list):  # an optional tuple (None by default)
        return tuple(value)
    return value


def checkpoint_root() -> Path:
    """Directory holding real backbone checkpoints (env ``GRASP_SEMANTICS_CHECKPOINTS``)."""
    return Path(os.environ.get(CHECKPOINT_ROOT_ENV, DEFAULT_CHECKPOINT_ROOT)).expanduser()


# Published sizes of the real checkpoints (their config.json files): a real flavour without
# its weights (``checkpoint: null``) is built at these sizes with random weights.
_QWEN2_5_VL_3B = dict(
    text_hidden=2048,
    text_layers=36,
    text_heads=16,
    text_kv_heads=2,
    text_intermediate=11008,
    mrope_section=(16, 24, 24),
    vision_depth=32,
    vision_hidden=1280,
    vision_heads=16,
    vision_intermediate=3420,
    patch_size=14,
    vision_full_attention=(7, 15, 23, 31),
)
_QWEN3_VL_VISION = dict(
    mrope_section=(24, 20, 20),
    head_dim=128,
    vision_depth=24,
    vision_hidden=1024,
    vision_heads=16,
    vision_intermediate=4096,
    patch_size=16,
    deepstack_layers=(5, 11, 17),
    vision_position_embeddings=2304,
)
_QWEN3_VL_2B = dict(
    text_hidden=2048,
    text_layers=28,
    text_heads=16,
    text_kv_heads=8,
    text_intermediate=6144,
    **_QWEN3_VL_VISION,
)
_QWEN3_VL_4B = dict(
    text_hidden=2560,
    text_layers=36,
    text_heads=32,
    text_kv_heads=8,
    text_intermediate=9728,
    **_QWEN3_VL_VISION,
)


def _real(
    name: str, arch: str, hub_id: str, dirname: str, image_size: tuple[int, int], sizes: dict
) -> GraspNetConfig:
    backbone = BackboneConfig(
        name=arch,
        checkpoint=str(checkpoint_root() / dirname),
        hub_id=hub_id,
        compact_vocab=0,
        image_size=image_size,
        tuning="lora",
        gradient_checkpointing=True,
        **sizes,
    )
    return GraspNetConfig(name=name, encoder=EncoderConfig(backbone=backbone))


def _tiny() -> GraspNetConfig:
    return GraspNetConfig(name="tiny")


def _debug_qwen3_vl() -> GraspNetConfig:
    backbone = BackboneConfig(
        name="qwen3_vl",
        text_hidden=64,
        text_layers=2,
        text_heads=4,
        text_kv_heads=2,
        text_intermediate=128,
        mrope_section=(3, 3, 2),
        vision_depth=2,
        vision_hidden=64,
        vision_heads=2,
        vision_intermediate=128,
        compact_vocab=0,
        image_size=(128, 160),
    )
    return GraspNetConfig(name="debug_qwen3_vl", encoder=EncoderConfig(backbone=backbone))


def _debug_qwen2_5_vl() -> GraspNetConfig:
    backbone = BackboneConfig(
        name="qwen2_5_vl",
        text_hidden=64,
        text_layers=2,
        text_heads=4,
        text_kv_heads=2,
        text_intermediate=128,
        mrope_section=(2, 3, 3),
        vision_depth=2,
        vision_hidden=64,
        vision_heads=2,
        vision_intermediate=128,
        patch_size=14,
        compact_vocab=0,
        image_size=(112, 140),
    )
    return GraspNetConfig(name="debug_qwen2_5_vl", encoder=EncoderConfig(backbone=backbone))


FLAVOURS = {
    "tiny": _tiny,
    "debug_qwen3_vl": _debug_qwen3_vl,
    "debug_qwen2_5_vl": _debug_qwen2_5_vl,
    "qwen2_5_vl_3b": lambda: _real(
        "qwen2_5_vl_3b",
        "qwen2_5_vl",
        "Qwen/Qwen2.5-VL-3B-Instruct",
        "Qwen2.5-VL-3B-Instruct",
        (448, 588),
        _QWEN2_5_VL_3B,
    ),
    "qwen3_vl_2b": lambda: _real(
        "qwen3_vl_2b",
        "qwen3_vl",
        "Qwen/Qwen3-VL-2B-Instruct",
        "Qwen3-VL-2B-Instruct",
        (480, 640),
        _QWEN3_VL_2B,
    ),
    "qwen3_vl_4b": lambda: _real(
        "qwen3_vl_4b",
        "qwen3_vl",
        "Qwen/Qwen3-VL-4B-Instruct",
        "Qwen3-VL-4B-Instruct",
        (480, 640),
        _QWEN3_VL_4B,
    ),
}


# The flavours of published checkpoints (the others are random-init models of our own sizes).
REAL_FLAVOURS: tuple[str, ...] = ("qwen2_5_vl_3b", "qwen3_vl_2b", "qwen3_vl_4b")


def get_config(name: str) -> GraspNetConfig:
    """A fresh copy of the named flavour's config."""
    if name not in FLAVOURS:
        raise KeyError(f"unknown model flavour {name!r}; known: {sorted(FLAVOURS)}")
    return copy.deepcopy(FLAVOURS[name]())
