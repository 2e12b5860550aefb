"""Decoding of the grasp heads' outputs into ranked 4x4 grasps, and smoothed contact probability.

Grasp parameterisation after Contact-GraspNet (Sundermeyer et al., ICRA 2021): every point is
a candidate first-finger contact ``c`` with a closing direction ``b`` (from that finger into
the object), an approach direction ``a`` (orthogonal to ``b``), an opening width ``w`` and a
grasp-success logit. Decoding uses ``gripper.py``'s convention (+z approach, +x closing,
y = z x x, TCP = c + w/2 b). Ranking is grasp score x contact probability (the task-relevant
part), then greedy non-maximum suppression by pose distance (TCP translation and rotation,
with the parallel-jaw symmetry: a 180 degree turn about the approach axis is the same grasp).

With the observed cloud, decoding first plans grasps across the part the contact head points
at (``part_planning.py``: the part's axis on the support plane, closed across), ranked by
the planner's quality or by a learned grasp scorer (``models/grasp_scorer.py``, fed by
``scorer_features.py``); the grasp head answers when nothing can be planned, or with
``part_grasps.enabled`` off.

The head's grasps are refined and checked against the cloud a few at a time: a closing
direction that is already near the inward surface normal at its contact (within
``snap_closing_deg``) is turned about the approach axis towards it, since a finger pushing
along the normal is what the friction cone asks for and the cloud measures that normal better
than the head predicts it; then grasps whose opened gripper would hit the cloud are dropped.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from grasp_semantics.grasping.gripper import cloud_collisions, grasp_poses
from grasp_semantics.grasping.part_planning import (
    NearestPoints,
    PlannedGrasps,
    collision_free_parts,
)
from grasp_semantics.models.config import GripperConfig, HeadsConfig
from grasp_semantics.models.pointnet2 import knn


def contact_probability(
    points: torch.Tensor, contact_logits: torch.Tensor, neighbours: int
) -> torch.Tensor:
    """Contact probability [B, N] of points [B, N, 3] from the head's logits [B, N]: the mean
    sigmoid over each point and its ``neighbours - 1`` nearest others.

    The head scores every point on its own, and the most probable one (where decoding grows
    the part from, and what part accuracy measures) is sometimes a single stray point beside
    the part; its neighbours rarely agree with it. A few neighbours are enough; many more blur
    the part's edge (docs/model_card.md).
    """
    probability = torch.sigmoid(contact_logits)
    if neighbours <= 1:
        return probability
    b, n = probability.shape
    k = min(neighbours, n)
    if points.device.type == "cpu":  # open3d's k-d tree: faster than the dense top-k on CPU
        clouds = points.detach().numpy()
        index = torch.from_numpy(np.stack([NearestPoints(c).indices(c, k) for c in clouds]))
    else:
        _, index = knn(points, points, k)  # [B, N, k]
    return probability.gather(1, index.reshape(b, n * k)).reshape(b, n, k).mean(-1)


def rotation_cosine(r1: np.ndarray, r2: np.ndarray, symmetric: bool = True) -> np.ndarray:
    """Cosines [P, Q] of the pairwise rotation angles between r1 [P, 3, 3] and r2 [Q, 3, 3].

    ``symmetric``: also compare with r2 turned 180 degrees about its z (approach) axis and keep
    the smaller angle, since a parallel-jaw grasp is unchanged by swapping the fingers.
    """
    # trace(r1^T r2) = sum over the columns c of <r1[:, c], r2[:, c]>: three [P, Q] matmuls.
    dx, dy, dz = (r1[:, :, c] @ r2[:, :, c].T for c in range(3))
    cos = (dx + dy + dz - 1.0) / 2.0
    if symmetric:  # r2 diag(-1, -1, 1): x and y columns flipped
        cos = np.maximum(cos, (-dx - dy + dz - 1.0) / 2.0)
    return np.clip(cos, -1.0, 1.0)


def pose_nms(
    poses: np.ndarray,
    scores: np.ndarray,
    max_keep: int,
    translation: float,
    rotation_rad: float,
) -> np.ndarray:
    """Greedy NMS over poses [P, 4, 4] by score [P]: indices kept, best first.

    A pose is suppressed by a better kept one when its TCP is within ``translation`` metres and
    its rotation within ``rotation_rad``. Pairwise distances are computed at once; the loop
    runs over the (few hundred) candidates only.
    """
    order = np.argsort(-scores, kind="stable")
    poses = poses[order]
    # Squared TCP distances and rotation cosines against squared / cosine thresholds: the
    # same comparisons as with norms and angles, without a sqrt and arccos per pair.
    diff = poses[:, None, :3, 3] - poses[None, :, :3, 3]
    near = np.einsum("ijk,ijk->ij", diff, diff) < translation * translation
    duplicate = near & (rotation_cosine(poses[:, :3, :3], poses[:, :3, :3]) > np.cos(rotation_rad))
    suppressed = np.zeros(len(order), dtype=bool)
    keep: list[int] = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        if len(keep) == max_keep:
            break
        suppressed |= duplicate[i]
    return order[np.asarray(keep, dtype=np.int64)]


def decode_grasps(
    points: np.ndarray,
    contact_prob: np.ndarray,
    grasp_prob: np.ndarray,
    approach: np.ndarray,
    closing: np.ndarray,
    width: np.ndarray,
    cfg: HeadsConfig,
    max_grasps: int = 10,
    cloud: np.ndarray | None = None,
    rank_planned: Callable[[PlannedGrasps], np.ndarray] | None = None,
    gripper: GripperConfig | None = None,
) -> dict[str, np.ndarray]:
    """One sample's per-point outputs (points [M, 3], probabilities [M], directions [M, 3],
    widths [M]) → the best ``max_grasps`` distinct grasps, best first.

    With ``cloud`` [P, 3] (the observed points) and ``cfg.collision_check``, grasps whose
    opened gripper would hit the cloud are dropped and the next distinct ones taken, so fewer
    than ``max_grasps`` (even none) come back when the candidates all collide.

    With ``cloud`` and ``cfg.part_grasps.enabled``, the grasps planned across the predicted part
    come back instead when there are any (see the module doc), ranked by their quality or, with
    ``rank_planned`` (``scorer_features.scorer_ranking`` of a grasp scorer), by the scores it
    gives the collision-free ones.

    ``gripper`` (default: one opening ``cfg.max_width``, the trained one) is the gripper the
    grasps are planned and checked against the cloud for: no grasp comes back wider than its
    ``max_width`` (the head's wider ones are dropped, not narrowed: they would not span what
    the head meant them to hold).

    Returns poses [G, 4, 4], widths [G], scores [G] (the task-conditioned quality the grasps are
    ranked by: grasp probability x contact probability, a planned grasp's quality or its
    predicted chance of success),
    contact_scores [G] (contact probability), contact_points [G, 3] and point_index [G] (into
    ``points``; for planned grasps the contact the part was grown from).
    """
    gripper = gripper or GripperConfig(max_width=cfg.max_width)
    if cloud is not None and cfg.part_grasps.enabled and max_grasps > 0 and len(points):
        planned = _planned(points, contact_prob, cloud, cfg, max_grasps, rank_planned, gripper)
        if planned is not None:
            return planned
    rank = grasp_prob * contact_prob
    fits = np.flatnonzero(width <= gripper.max_width)
    n_cand = min(cfg.nms_candidates, len(fits))
    cand = (
        fits[np.argpartition(-rank[fits], n_cand - 1)[:n_cand]]
        if n_cand > 0
        else np.zeros(0, np.int64)
    )
    poses = grasp_poses(
        points[cand].astype(np.float64),
        approach[cand].astype(np.float64),
        closing[cand].astype(np.float64),
        width[cand].astype(np.float64),
    )
    refine = cloud is not None and (cfg.collision_check or cfg.snap_closing_deg > 0)
    if len(cand) == 0 or max_grasps <= 0:
        keep = np.zeros(0, dtype=np.int64)
    else:
        keep = pose_nms(
            poses,
            rank[cand],
            len(cand) if refine else max_grasps,
            cfg.nms_translation,
            np.deg2rad(cfg.nms_rotation_deg),
        )
    if refine:
        keep = _refine_and_check(
            poses, points[cand], width[cand], keep, cloud, cfg, max_grasps, gripper
        )
    idx = cand[keep]
    return {
        "poses": poses[keep],
        "widths": width[idx].astype(np.float32),
        "scores": rank[idx].astype(np.float32),
        "contact_scores": contact_prob[idx].astype(np.float32),
        "contact_points": points[idx].astype(np.float32),
        "point_index": idx.astype(np.int64),
    }


def _planned(
    points: np.ndarray,
    contact_prob: np.ndarray,
    cloud: np.ndarray,
    cfg: HeadsConfig,
    max_grasps: int,
    rank: Callable[[PlannedGrasps], np.ndarray] | None,
    gripper: GripperConfig,
) -> dict[str, np.ndarray] | None:
    """``decode_grasps``'s output from the grasps planned across the predicted part for
    ``gripper``."""
    # each part's collision-free candidates scored, then NMS over those of all parts
    poses, widths, scores, seeds = [], [], [], []
    parts = collision_free_parts(
        points, contact_prob, cloud, cfg.part_grasps, gripper, cfg.collision_tolerance
    )
    for planned in parts:
        if planned.part_rank > 0 and not poses:  # nothing on the most probable part: the
            break  # grasp head answers there, rather than another part alone
        poses.append(planned.poses)
        widths.append(planned.widths)
        scores.append(planned.scores if rank is None else rank(planned))
        seeds.append(np.full(len(planned.poses), planned.seed_index, dtype=np.int64))
    if not poses:
        return None
    poses_a, widths_a, scores_a, seeds_a = (
        np.concatenate(a) for a in (poses, widths, scores, seeds)
    )
    keep = pose_nms(
        poses_a, scores_a, max_grasps, cfg.nms_translation, np.deg2rad(cfg.nms_rotation_deg)
    )
    kept_poses, kept_widths = poses_a[keep], widths_a[keep]
    return {
        "poses": kept_poses,
        "widths": kept_widths.astype(np.float32),
        "scores": scores_a[keep].astype(np.float32),
        "contact_scores": contact_prob[seeds_a[keep]].astype(np.float32),
        # the first finger's side of the part: TCP - w/2 * closing
        "contact_points": (
            kept_poses[:, :3, 3] - 0.5 * kept_widths[:, None] * kept_poses[:, :3, 0]
        ).astype(np.float32),
        "point_index": seeds_a[keep],
    }


def surface_normals(
    at: np.ndarray, cloud: NearestPoints, neighbours: int, flatness: float = 0.25
) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals [G, 3] (sign arbitrary) of the surface the ``cloud`` samples at points
    ``at`` [G, 3]: the least-variance axis of each point's ``neighbours`` nearest cloud points;
    and whether that neighbourhood is a surface at all [G] (its least variance at most
    ``flatness`` times the middle one: not a line, a single point or a blob)."""
    near = cloud.points[cloud.indices(at, neighbours)]  # [G, k, 3]
    centred = (near - near.mean(axis=1, keepdims=True)).astype(np.float64)
    variances, axes = np.linalg.eigh(centred.transpose(0, 2, 1) @ centred)  # ascending
    surface = (variances[:, 1] > 1e-12) & (variances[:, 0] <= flatness * variances[:, 1])
    return axes[:, :, 0], surface


def snap_closing(
    poses: np.ndarray,
    contacts: np.ndarray,
    widths: np.ndarray,
    normals: np.ndarray,
    max_angle_deg: float,
) -> np.ndarray:
    """Poses [G, 4, 4] whose closing axis is within ``max_angle_deg`` of the inward surface
    normal (``normals`` [G, 3], either sign) turned about the approach axis towards it: the new
    closing is the normal's part perpendicular to the approach. The approach (which the head
    chose clear of the table and neighbours) is kept, the first finger stays at its contact
    (TCP = contact + w/2 * closing)."""
    closing, approach = poses[:, :3, 0], poses[:, :3, 2]
    inward = normals * np.where((normals * closing).sum(1, keepdims=True) >= 0, 1.0, -1.0)
    # within 45 degrees of a closing that is perpendicular to the approach, the normal keeps
    # at least sin(45) of its length perpendicular to the approach: no degenerate projection
    snap = (inward * closing).sum(1) >= np.cos(np.deg2rad(min(max_angle_deg, 45.0)))
    if not snap.any():
        return poses
    a = approach[snap]
    b = inward[snap] - (inward[snap] * a).sum(1, keepdims=True) * a
    out = poses.copy()
    out[snap] = grasp_poses(contacts[snap], a, b, widths[snap])
    return out


def _refine_and_check(
    poses: np.ndarray,
    contacts: np.ndarray,
    widths: np.ndarray,
    order: np.ndarray,
    cloud: np.ndarray,
    cfg: HeadsConfig,
    max_grasps: int,
    gripper: GripperConfig,
) -> np.ndarray:
    """The first ``max_grasps`` of ``order`` (indices into poses [G, 4, 4], contacts [G, 3],
    widths [G]) after snapping (``poses`` is updated in place) and, with
    ``cfg.collision_check``, dropping those that hit ``cloud``. Chunks of ``max_grasps``
    candidates, then twice as many each time: most calls refine and check only ``max_grasps``,
    and a scene where most candidates collide takes a handful of passes over the cloud, not
    one per ``max_grasps`` candidates (the result is the same either way). Collisions are
    those of ``gripper``."""
    search = NearestPoints(cloud) if cfg.snap_closing_deg > 0 else None  # one tree, all chunks
    kept: list[np.ndarray] = []
    found, start, size = 0, 0, max(max_grasps, 1)
    while start < len(order):
        chunk = order[start : start + size]
        start, size = start + size, 2 * size
        if search is not None:
            normals, surface = surface_normals(contacts[chunk], search, cfg.normal_neighbours)
            on = chunk[surface]
            poses[on] = snap_closing(
                poses[on],
                contacts[on].astype(np.float64),
                widths[on].astype(np.float64),
                normals[surface],
                cfg.snap_closing_deg,
            )
        if cfg.collision_check:
            chunk = chunk[
                ~cloud_collisions(
                    poses[chunk], widths[chunk], cloud, gripper, cfg.collision_tolerance
                )
            ]
        kept.append(chunk[: max_grasps - found])
        found += len(kept[-1])
        if found == max_grasps:
            break
    return np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
