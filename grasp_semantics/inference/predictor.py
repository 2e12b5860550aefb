"""ROS-free inference: numpy image + cloud + instruction in, contacts and ranked grasps out.

``GraspPredictor.from_pretrained(name_or_dir)`` loads a :class:`GraspNet` (a checkpoint
directory, ``"default"`` for the shipped weights, or a registry flavour with random weights);
``predict(rgb, points, instruction, intrinsics=None)`` validates the inputs, samples a fixed
number of points (static shapes), runs the network under ``torch.inference_mode()`` and returns
a :class:`Prediction` with per-stage timings. The encoder output is cached per (image,
instruction), so a robot re-planning on the same view does not rerun the backbone, and the
point network's per (cloud, image, intrinsics), so a new instruction on a cloud already seen
does not resample it or rerun PointNet++.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import ThreadpoolController

from grasp_semantics.grasping.decoding import contact_probability, decode_grasps
from grasp_semantics.grasping.gripper import to_robot_tcp
from grasp_semantics.grasping.scorer_features import scorer_ranking
from grasp_semantics.inference.camera import check_intrinsics
from grasp_semantics.inference.instructions import check_instruction_text
from grasp_semantics.models.cache import ContentCache, content_key
from grasp_semantics.models.config import FLAVOURS, GraspNetConfig, GripperConfig, get_config
from grasp_semantics.models.describe_config import DESCRIBE_DIR
from grasp_semantics.models.grasp_net import CONFIG_FILE, GraspNet
from grasp_semantics.models.grasp_scorer import SCORER_DIR, GraspScorer
from grasp_semantics.models.pointnet2 import sample_indices
from grasp_semantics.models.semantics_qwen import image_key, resolve_dtype

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "default"
MAX_UNKNOWN_TOKEN_FRACTION = 0.5  # of a compact-vocabulary model's instruction tokens
MIN_POINTS = 32
MAX_POINT_RANGE_M = 1000.0  # a coordinate beyond this is corrupt data, not a far return
# Larger clouds are thinned to this many points before sampling and grasp planning: the cloud
# size of the training scenes (data/scene.py, SceneConfig.max_points), so the planner's
# collision tolerance and the grasp scorer see the density they were tuned and trained at,
# and the cost stops growing with the sensor's resolution.
MAX_CLOUD_POINTS = 40_000
POINT_CACHE_SIZE = 4  # point-network results kept per (cloud, image, intrinsics)


@dataclass
class Prediction:
    """One sample's result; every array is in the frame of the input cloud.

    ``points`` are the points the network saw, aligned with ``contact``. Grasps are best
    first, planned for the predictor's gripper: ``poses`` (+z approach, +x closing, origin at
    the gripper's ``tcp_depth``: between the fingertips by default), ``widths`` (m, at most
    the gripper's ``max_width``), ``scores`` (the
    task-conditioned quality they are ranked by: for grasps planned across the part, the grasp
    scorer's predicted chance of success or the planner's quality; for the grasp head's,
    grasp probability x contact probability),
    ``contact_scores`` (contact probability at the grasp's contact point).
    """

    points: np.ndarray  # [M, 3] float32
    contact: np.ndarray  # [M] float32 in [0, 1]
    poses: np.ndarray  # [G, 4, 4] float64
    widths: np.ndarray  # [G] float32
    scores: np.ndarray  # [G] float32
    contact_scores: np.ndarray  # [G] float32
    contact_points: np.ndarray  # [G, 3] float32
    instruction: str = ""
    timings: dict[str, float] = field(default_factory=dict)  # stage → ms


@dataclass
class PointSample:
    """What the point path made of one input cloud: reused whole when the cloud comes again."""

    cloud: np.ndarray  # [P, 3] the thinned cloud grasps are planned on
    points: np.ndarray  # [M, 3] the network's fixed-size sample of it
    features: torch.Tensor | None = None  # [M, C] PointNet++ output (None until computed)


def checkpoint_gripper(cfg: GraspNetConfig) -> GripperConfig:
    """The gripper a model was trained for (its grasp head's widest opening; the rest
    ``GripperConfig``'s defaults, the gripper the training scenes' grasps were made with)."""
    return GripperConfig(max_width=cfg.heads.max_width)


def missing_heads(name: str, path: Path, model: GraspNet, scorer: bool) -> list[str]:
    """A warning for each head the checkpoint at ``path`` lacks (logged here), so that a
    model copied or installed without its ``grasp_scorer/`` or ``describe/`` folder does not
    degrade silently: without the scorer grasps are ranked by the planner's quality; without
    the describe head scene questions are refused (a model whose backbone is a real Qwen-VL
    checkpoint answers with that checkpoint's own head and needs none)."""
    missing = []
    if scorer and not (path / SCORER_DIR).is_dir():
        missing.append(
            f"model {name!r} has no grasp scorer ({path / SCORER_DIR} is missing): planned "
            "grasps are ranked by the planner's quality"
        )
    if model.cfg.encoder.backbone.checkpoint is None and not (path / DESCRIBE_DIR).is_dir():
        missing.append(
            f"model {name!r} has no describe head ({path / DESCRIBE_DIR} is missing): scene "
            "questions (~/describe, grasp-semantics describe) will be refused"
        )
    for warning in missing:
        log.warning(warning)
    return missing


def resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class GraspPredictor:
    """Wraps a :class:`GraspNet` for inference on numpy inputs."""

    def __init__(
        self,
        model: GraspNet,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype | None = None,
        seed: int = 0,
        compile: bool = False,
        scorer: GraspScorer | None = None,
        max_cloud_points: int | None = MAX_CLOUD_POINTS,
        point_cache_size: int = POINT_CACHE_SIZE,
        gripper: GripperConfig | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        # ranks the grasps planned across the part by their predicted chance of success
        self.scorer = scorer.to(self.device).eval() if scorer is not None else None
        self._gripper = checkpoint_gripper(model.cfg)
        self.gripper = gripper or self._gripper
        backbone_dtype = resolve_dtype(
            dtype if dtype is not None else model.cfg.encoder.backbone.dtype, self.device
        )
        self.model.encoder.backbone.to(backbone_dtype)  # the rest stays fp32
        self.num_points = model.cfg.pointnet.num_points
        self.max_cloud_points = max_cloud_points  # None: every point is kept
        self.seed = seed
        self.point_cache: ContentCache[PointSample] = ContentCache(point_cache_size)
        self.point_net_calls = 0  # samples PointNet++ has run on (tests, cache statistics)
        # Decoding's numpy calls are small: on one BLAS thread, since idle OpenBLAS workers
        # spin after each call and take the cores from torch's threads in the next stages
        # (None: numpy's default; the bench times both).
        self.decode_blas_threads: int | None = 1
        self._threadpools = ThreadpoolController()
        self.compiled = compile
        # what from_pretrained found missing beside the weights, one sentence each (logged)
        self.missing_heads: list[str] = []
        if compile:  # in place: parameter names (and checkpoints) stay as they are
            for module in (self.model.pointnet, self.model.fusion, self.model.heads):
                module.compile(dynamic=False)

    @property
    def gripper(self) -> GripperConfig:
        """The gripper grasps are planned, checked against the cloud and ranked for; the
        poses come back at its ``tcp_depth``."""
        return self._gripper

    @gripper.setter
    def gripper(self, gripper: GripperConfig) -> None:
        """Plan for ``gripper`` from the next prediction on; a ValueError (and the gripper
        unchanged) when the grasp scorer cannot rank its grasps (``GraspScorer.unsupported``:
        rank by the planner's quality instead, ``scorer=False``)."""
        if not isinstance(gripper, GripperConfig):
            raise ValueError(f"gripper must be a GripperConfig, got {type(gripper).__name__}")
        reason = self.scorer.unsupported(gripper) if self.scorer is not None else ""
        if reason:
            raise ValueError(
                f"model '{self.model.cfg.name}' cannot rank grasps for this gripper: {reason}; "
                "rank them by the planner's quality instead (scorer=False, or the node's "
                "grasp_scorer:=false)"
            )
        self._gripper = gripper

    def warm_up(self, runs: int = 2) -> float:
        """Run ``runs`` predictions on synthetic inputs of the configured sizes (compiles the
        network when ``compile`` is set; first-call allocations); returns the seconds taken."""
        start = time.perf_counter()
        h, w = self.model.cfg.encoder.backbone.image_size
        rng = np.random.default_rng(0)
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        points = rng.uniform(-0.2, 0.2, (4 * self.num_points, 3)).astype(np.float32)
        points[:, 2] += 0.7
        k = np.array([[w, 0, w / 2], [0, w, h / 2], [0, 0, 1]], dtype=np.float32)
        for _ in range(runs):
            self.predict(rgb, points, "pick up the object", intrinsics=k)
        self.clear_caches()
        return time.perf_counter() - start

    def clear_caches(self) -> None:
        """Forget every cached encoder and point-network result."""
        self.model.encoder.clear_cache()
        self.point_cache.clear()

    @classmethod
    def from_pretrained(
        cls,
        name_or_dir: str | os.PathLike = "default",
        device: str | torch.device = "auto",
        dtype: str | torch.dtype | None = None,
        compile: bool = False,
        scorer: bool = True,
        max_cloud_points: int | None = MAX_CLOUD_POINTS,
        point_cache_size: int = POINT_CACHE_SIZE,
        random_backbone: bool = False,
        gripper: GripperConfig | None = None,
    ) -> GraspPredictor:
        """A checkpoint directory, ``"default"`` (``grasp_semantics/weights/default``) or a
        registry flavour name (random weights, for tests and benchmarks; a real flavour's
        backbone comes from its checkpoint directory unless ``random_backbone``: then it too
        is random, at the checkpoint's published sizes, for benchmarks). ``compile``:
        ``torch.compile`` the point network, fusion and heads (static shapes; call
        :meth:`warm_up` before timing-critical use). ``scorer``: rank planned grasps with the
        checkpoint's grasp scorer (``grasp_scorer/`` in its directory) when it has one; False
        ranks them by the planner's quality. ``max_cloud_points``: see :meth:`thin_cloud`
        (None keeps every point). ``point_cache_size``: point-network results kept for clouds
        that come again (0: none). ``gripper``: the gripper to plan for (default: the one the
        checkpoint was trained for, :func:`checkpoint_gripper`); a ValueError when the grasp
        scorer cannot rank its grasps (see :attr:`gripper`)."""
        name = str(name_or_dir)
        path = DEFAULT_WEIGHTS if name == "default" else Path(name).expanduser()
        grasp_scorer = None
        if random_backbone and name not in FLAVOURS:
            raise ValueError(f"a random backbone needs a flavour name ({sorted(FLAVOURS)})")
        missing: list[str] = []
        if (path / CONFIG_FILE).is_file():
            model = GraspNet.from_pretrained(path)
            if scorer and (path / SCORER_DIR).is_dir():
                grasp_scorer = GraspScorer.load(path / SCORER_DIR, model.fingerprint())
            missing = missing_heads(name, path, model, scorer)
        elif name == "default":
            raise FileNotFoundError(
                f"no default weights at {DEFAULT_WEIGHTS} (config.yaml + model.safetensors); "
                f"train a model and save it there, or pass a checkpoint directory or one of "
                f"{sorted(FLAVOURS)}"
            )
        elif name in FLAVOURS:
            log.warning("model %r: registry flavour with untrained random weights", name)
            cfg = get_config(name)
            if random_backbone:
                cfg.encoder.backbone.checkpoint = None
            model = GraspNet(cfg)
        else:
            raise FileNotFoundError(
                f"{name!r} is neither a checkpoint directory (with {CONFIG_FILE}) nor a model "
                f"flavour ({sorted(FLAVOURS)})"
            )
        predictor = cls(
            model,
            device=device,
            dtype=dtype,
            compile=compile,
            scorer=grasp_scorer,
            max_cloud_points=max_cloud_points,
            point_cache_size=point_cache_size,
            gripper=gripper,
        )
        predictor.missing_heads = missing
        return predictor

    # ------------------------------------------------------------ validation
    def _check_image(self, rgb) -> np.ndarray:
        views = list(rgb) if isinstance(rgb, list | tuple) else [rgb]
        arrays = []
        for view in views:
            arr = view.detach().cpu().numpy() if isinstance(view, torch.Tensor) else view
            if not isinstance(arr, np.ndarray):
                raise ValueError(f"rgb must be a numpy array, got {type(arr).__name__}")
            if arr.dtype != np.uint8:
                raise ValueError(f"rgb must be uint8, got {arr.dtype}")
            if arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 1:
                raise ValueError(f"rgb must be H x W x 3, got shape {arr.shape}")
            arrays.append(arr)
        if len({a.shape for a in arrays}) != 1:
            raise ValueError("all views of a sample must have the same size")
        return np.stack(arrays)  # [V, H, W, 3]

    @staticmethod
    def _check_points(points) -> np.ndarray:
        arr = points.detach().cpu().numpy() if isinstance(points, torch.Tensor) else points
        arr = np.asarray(arr)
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise ValueError(f"points must have shape (N, 3), got {arr.shape}")
        if not np.issubdtype(arr.dtype, np.number):
            raise ValueError(f"points must be numeric, got {arr.dtype}")
        finite = np.isfinite(arr).all(axis=1)
        if not finite.all():
            arr = arr[finite]  # NaN / inf rows dropped
        far = np.abs(arr).max(axis=1) > MAX_POINT_RANGE_M if len(arr) else np.zeros(0, bool)
        if far.any():  # no sensor returns these: corrupt data, a wrong endianness or unit
            raise ValueError(
                f"{int(far.sum())} of {len(arr)} points lie more than {MAX_POINT_RANGE_M:g} m "
                f"from the sensor (largest coordinate {float(np.abs(arr).max()):.4g} m): "
                "corrupt cloud (wrong endianness, field layout or unit?)"
            )
        # Contiguous, writable float32 (torch takes no read-only memory): at most one copy, none
        # for such an input, one for a view of a message's x, y, z.
        if not (arr.dtype == np.float32 and arr.flags.c_contiguous and arr.flags.writeable):
            arr = np.array(arr, dtype=np.float32, order="C")
        if len(arr) < MIN_POINTS:
            raise ValueError(
                f"too few valid points: {len(arr)} finite points, at least {MIN_POINTS} needed"
            )
        return arr

    def check_instruction(self, instruction) -> str:
        """The stripped instruction, or a ValueError saying why the model cannot take it.

        Beyond the rules of every model (:func:`check_instruction_text`: non-empty, at most
        ``MAX_INSTRUCTION_CHARS`` characters, printable), a model with a compact vocabulary
        (the tiny default) only knows the words of its training instructions: text that is
        mostly unknown to it (another language, say) is refused rather than answered with a
        guess.
        """
        text = check_instruction_text(instruction)
        compact = self.model.encoder.compact
        if compact is not None:
            ids = self.model.encoder.tokenizer.encode(instruction, add_special_tokens=False)
            unknown = int((compact(torch.tensor(ids)) == 0).sum())
            if unknown > MAX_UNKNOWN_TOKEN_FRACTION * len(ids):
                raise ValueError(
                    f"instruction is outside the vocabulary of model "
                    f"'{self.model.cfg.name}' ({unknown} of {len(ids)} tokens unknown); it "
                    f"was trained on English instructions"
                )
        return text

    @property
    def needs_intrinsics(self) -> bool:
        """Whether the model projects points into the image (pixel-aligned fusion or point
        colours), so that every prediction needs the camera intrinsics."""
        return self.model.cfg.fusion.mode == "pixel_aligned" or self.model.cfg.pointnet.colour

    def _check_intrinsics(self, intrinsics, image_hw: tuple[int, int]) -> np.ndarray | None:
        if intrinsics is None:
            if self.needs_intrinsics:
                raise ValueError(
                    "this model projects points into the image (pixel-aligned fusion or point "
                    "colours): camera intrinsics are required"
                )
            return None
        return check_intrinsics(intrinsics, image_hw)

    # ------------------------------------------------------------ sampling
    def thin_cloud(self, points: np.ndarray) -> np.ndarray:
        """``points`` [P, 3], or a uniform random ``max_cloud_points`` of them (in their order)
        when there are more: what the point network samples from and the grasps are planned
        on. Seeded on every call, like :meth:`sample_points`."""
        if self.max_cloud_points is None or len(points) <= self.max_cloud_points:
            return points
        rng = np.random.default_rng(self.seed)
        return points[np.sort(rng.choice(len(points), self.max_cloud_points, replace=False))]

    def sample_points(self, points: np.ndarray) -> np.ndarray:
        """Exactly ``num_points`` points [M, 3] of the thinned cloud (:meth:`thin_cloud`): FPS
        when there are more, repeats when fewer.

        The random parts (thinning, repeats) restart from ``seed`` on every call: the same
        input always gives the same prediction, whatever came before (a replayed bag
        reproduces the live run).
        """
        points = self.thin_cloud(points)
        # An FPS *set* is enough: the network's first set-abstraction level samples its own
        # centroids (cheaper than ordering all M points).
        rng = np.random.default_rng(self.seed)
        return points[sample_indices(points, self.num_points, rng, ordered=False)]

    # ------------------------------------------------------------ point path
    def _point_samples(
        self, clouds: list[np.ndarray], image_keys: list[str], ks: list[np.ndarray | None]
    ) -> list[PointSample]:
        """Each cloud's thinned cloud and network sample: from the point cache for a cloud seen
        before (with the same image and intrinsics when the network reads point colours), else
        made now (its features still None)."""
        colour = self.model.cfg.pointnet.colour
        settings = f"{self.num_points} {self.max_cloud_points} {self.seed}"
        samples = []
        for cloud, key, k in zip(clouds, image_keys, ks, strict=True):
            seen_as = (key, k) if colour else (None, None)  # what the colours are read from
            cache_key = content_key(cloud, settings, *seen_as)
            sample = self.point_cache.get(cache_key)
            if sample is None:
                thinned = self.thin_cloud(cloud)
                if thinned is cloud:  # the caller's array: kept as it is now, not as it may be
                    thinned = cloud.copy()
                sample = PointSample(thinned, self.sample_points(thinned))
                self.point_cache.put(cache_key, sample)
            samples.append(sample)
        return samples

    def _point_features(
        self,
        samples: list[PointSample],
        xyz: torch.Tensor,
        images: torch.Tensor,
        intrinsics: torch.Tensor | None,
    ) -> torch.Tensor:
        """PointNet++ features [B, M, C] of the samples (``xyz`` [B, M, 3] their points), run
        only on those without features yet, which keep theirs for next time."""
        todo = [i for i, sample in enumerate(samples) if sample.features is None]
        if todo:
            rows = torch.tensor(todo, device=xyz.device)
            k_rows = None if intrinsics is None else intrinsics[rows]
            inputs = self.model.point_inputs(xyz[rows], images[rows], k_rows)
            feats = self.model.point_features(xyz[rows], inputs)
            self.point_net_calls += len(todo)
            for j, i in enumerate(todo):
                samples[i].features = feats[j]
        return torch.stack([sample.features for sample in samples])

    # ------------------------------------------------------------ inference
    @contextmanager
    def _timer(self, timings: dict[str, float], stage: str):
        start = time.perf_counter()
        yield
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        timings[stage] = timings.get(stage, 0.0) + 1000.0 * (time.perf_counter() - start)

    def predict(
        self,
        rgb,
        points,
        instruction: str,
        intrinsics=None,
        max_grasps: int = 10,
        min_score: float | None = None,
    ) -> Prediction:
        """Contacts and grasps for one sample: rgb uint8 [H, W, 3] (or a list of views),
        points [N, 3] in the cloud frame, an instruction, optional K [3, 3] of rgb. Of the
        ``max_grasps`` best grasps, those scoring below ``min_score`` are left out."""
        return self.predict_batch(
            [rgb], [points], [instruction], [intrinsics], max_grasps, min_score
        )[0]

    @torch.inference_mode()
    def predict_batch(
        self,
        rgbs: Sequence,
        points: Sequence,
        instructions: Sequence[str],
        intrinsics: Sequence | None = None,
        max_grasps: int = 10,
        min_score: float | None = None,
    ) -> list[Prediction]:
        """Batched :meth:`predict`; images of one batch must share their size."""
        timings: dict[str, float] = {}
        b = len(rgbs)
        if not b or len(points) != b or len(instructions) != b:
            raise ValueError("rgbs, points and instructions must be non-empty and equally long")
        intrinsics = list(intrinsics) if intrinsics is not None else [None] * b
        with self._timer(timings, "preprocess"):
            images = [self._check_image(x) for x in rgbs]
            if len({x.shape for x in images}) != 1:
                raise ValueError("all images of a batch must have the same shape")
            clouds = [self._check_points(p) for p in points]
            texts = [self.check_instruction(t) for t in instructions]
            ks = [self._check_intrinsics(k, images[0].shape[1:3]) for k in intrinsics]
            image_t = torch.from_numpy(np.stack(images)).to(self.device)  # [B, V, H, W, 3]
            image_keys = [image_key(views) for views in image_t]  # for both caches
        with self._timer(timings, "encoder"):
            enc = self.model.encode(image_t, texts, cached=True, image_keys=image_keys)
        with self._timer(timings, "point_sampling"):
            if any(k is None for k in ks) and any(k is not None for k in ks):
                raise ValueError("give intrinsics for all samples of a batch or none")
            samples = self._point_samples(clouds, image_keys, ks)
            clouds = [sample.cloud for sample in samples]  # planned on below, too
            sampled = np.stack([sample.points for sample in samples])  # [B, M, 3]
            xyz = torch.from_numpy(sampled).to(self.device)
            k_t = None if ks[0] is None else torch.from_numpy(np.stack(ks)).to(self.device)
        with self._timer(timings, "point_net"):
            feats = self._point_features(samples, xyz, image_t, k_t)
        with self._timer(timings, "heads"):
            out = self.model.fuse_and_predict(xyz, feats, enc, images[0].shape[1:3], k_t)
            out["contact"] = contact_probability(
                xyz, out["contact_logits"], self.model.cfg.heads.contact_neighbours
            )
            out = {k: v.float().cpu().numpy() for k, v in out.items()}
        results = []
        blas = (
            self._threadpools.limit(limits=self.decode_blas_threads, user_api="blas")
            if self.decode_blas_threads
            else nullcontext()
        )
        gripper = self.gripper  # one gripper for the whole batch, whatever a setter does
        rank_planned = None if self.scorer is None else scorer_ranking(self.scorer)
        with self._timer(timings, "decode"), blas:
            contact = out["contact"]  # [B, M]
            grasp = 1.0 / (1.0 + np.exp(-out["grasp_logits"]))
            for i in range(b):
                g = decode_grasps(
                    sampled[i],
                    contact[i],
                    grasp[i],
                    out["approach"][i],
                    out["closing"][i],
                    out["width"][i],
                    self.model.cfg.heads,
                    max_grasps,
                    cloud=clouds[i],
                    rank_planned=rank_planned,
                    gripper=gripper,
                )
                if min_score is not None:  # of the best max_grasps, those scoring min_score
                    keep = g["scores"] >= min_score
                    g = {key: value[keep] for key, value in g.items()}
                results.append(
                    Prediction(
                        points=sampled[i],
                        contact=contact[i].astype(np.float32),
                        poses=to_robot_tcp(g["poses"], gripper),
                        widths=g["widths"],
                        scores=g["scores"],
                        contact_scores=g["contact_scores"],
                        contact_points=g["contact_points"],
                        instruction=texts[i],
                    )
                )
        timings["total"] = sum(timings.values())
        for r in results:
            r.timings = dict(timings)
        return results
