"""What the grasp scorer sees of a planned grasp: ``gripper_view``.

Each candidate is described by what the sensor saw around it, in the gripper's frame: a voxel
grid over the opened fingers, the palm's underside and just beyond (``GraspScorerConfig.cells``,
``low``, ``high``) holding, per cell, log(1 + point count) and the mean contact probability of
those points; the up direction in the gripper frame (where the table is); the opening (as a
fraction of the gripper's largest) and the planner's quality; and, when the planner plans on
several parts (``part_grasps.regions``), which part: its rank (0 = the most probable) and its
contact's probability relative to the most probable one, so that a grasp on the second most
likely part ranks by the chance that part is the one asked for.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from grasp_semantics.grasping.part_planning import PlannedGrasps
from grasp_semantics.models.config import GraspScorerConfig
from grasp_semantics.models.grasp_scorer import GraspScorer


def _grid(cfg: GraspScorerConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Cells per axis [3], the grid's low and high corners [3] (gripper frame) and cell count."""
    cells = np.asarray(cfg.cells)
    return cells, np.asarray(cfg.low), np.asarray(cfg.high), int(cells.prod())


def _features(
    planned: PlannedGrasps, count: np.ndarray, contact_sum: np.ndarray, max_width: float
) -> np.ndarray:
    """``gripper_view``'s features from the per-cell point counts and contact sums [G, cells]."""
    g = len(planned.poses)
    mean_contact = contact_sum / np.maximum(count, 1)
    up = planned.up @ planned.poses[:, :3, :3]  # [G, 3]: rotation^T up, per candidate
    part = np.array([planned.part_rank, planned.part_probability], dtype=np.float64)
    scalars = np.c_[planned.widths / max_width, planned.scores, np.tile(part, (g, 1))]  # [G, 4]
    return np.concatenate([np.log1p(count), mean_contact, up, scalars], axis=1).astype(np.float32)


def _cell_sums(
    bins: np.ndarray, contact: np.ndarray, g: int, n_cells: int
) -> tuple[np.ndarray, np.ndarray]:
    """Point counts and contact sums [G, n_cells] from each (candidate, point)'s bin [G, L]
    (candidate k's cells are k * n_cells + cell; ``g * n_cells``: outside its grid) and the
    points' contact probabilities [L]: one bincount over all candidates."""
    count = np.bincount(bins.ravel(), minlength=g * n_cells + 1)[:-1].reshape(g, n_cells)
    weights = np.broadcast_to(contact, bins.shape).ravel()
    total = np.bincount(bins.ravel(), weights=weights, minlength=g * n_cells + 1)
    return count, total[:-1].reshape(g, n_cells)


def gripper_view(planned: PlannedGrasps, cfg: GraspScorerConfig, max_width: float) -> np.ndarray:
    """Features [G, cfg.num_features] float32 of each candidate of ``planned``: the voxel grid of
    its surroundings in the gripper frame (count channel, then contact channel, cells in C
    order), the up direction in that frame, opening / ``max_width``, planner quality, and the
    rank and relative probability of the part it was planned on.

    The same numbers as :func:`gripper_view_reference`, computed on less: only points within
    the grid's farthest corner of some candidate's TCP (an axis-aligned cut) can fall in a grid,
    and the gripper-frame coordinates are taken one axis at a time (numpy's batched [G, L, 3] @
    [G, 3, 3] product and its all() over a length-3 axis cost more than the arithmetic).
    """
    cells, low, high, n_cells = _grid(cfg)
    g = len(planned.poses)
    rotation, tcp = planned.poses[:, :3, :3], planned.poses[:, :3, 3]
    reach = float(np.sqrt(np.maximum(low**2, high**2).sum()))
    points, contact = planned.points, planned.contact
    near = np.all((points >= tcp.min(0) - reach) & (points <= tcp.max(0) + reach), axis=1)
    offset = points[near][None] - tcp[:, None]  # [G, L', 3]
    flat = np.zeros(offset.shape[:2], dtype=np.int64)
    inside = np.ones(offset.shape[:2], dtype=bool)
    for k in range(3):  # cell index along the gripper's k-th axis, C order
        local = sum(offset[..., i] * rotation[:, None, i, k] for i in range(3))  # [G, L']
        cell = np.floor((local - low[k]) / (high[k] - low[k]) * cells[k]).astype(np.int64)
        inside &= (cell >= 0) & (cell < cells[k])
        flat = flat * cells[k] + cell
    bins = np.where(inside, flat + n_cells * np.arange(g)[:, None], g * n_cells)
    return _features(planned, *_cell_sums(bins, contact[near], g, n_cells), max_width)


def gripper_view_reference(
    planned: PlannedGrasps, cfg: GraspScorerConfig, max_width: float
) -> np.ndarray:
    """:func:`gripper_view` written straightforwardly (every point in every candidate's frame):
    the reference the bench times it against and the tests compare it with."""
    cells, low, high, n_cells = _grid(cfg)
    g = len(planned.poses)
    rotation, tcp = planned.poses[:, :3, :3], planned.poses[:, :3, 3]
    local = (planned.points[None] - tcp[:, None]) @ rotation  # [G, L, 3]
    cell = np.floor((local - low) / (high - low) * cells).astype(np.int64)  # [G, L, 3]
    inside = np.all((cell >= 0) & (cell < cells), axis=-1)  # [G, L]
    flat = (cell[..., 0] * cells[1] + cell[..., 1]) * cells[2] + cell[..., 2]
    bins = np.where(inside, flat + n_cells * np.arange(g)[:, None], g * n_cells)
    return _features(planned, *_cell_sums(bins, planned.contact, g, n_cells), max_width)


def scorer_ranking(scorer: GraspScorer) -> Callable[[PlannedGrasps], np.ndarray]:
    """The chance [G] that each candidate of a plan succeeds, by ``scorer`` (what decoding
    ranks planned grasps by)."""

    @torch.inference_mode()
    def success_probability(planned: PlannedGrasps) -> np.ndarray:
        if not len(planned.poses):
            return np.zeros(0, dtype=np.float32)
        features = gripper_view(planned, scorer.cfg, scorer.max_width)
        return scorer.success_probability(features)

    return success_probability
