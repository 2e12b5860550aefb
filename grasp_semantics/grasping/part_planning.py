"""Grasps planned from the observed cloud on the part the network says to touch.

The network answers *where* to touch for this task (per-point contact probability); this module
answers *how*, from the geometry the sensor saw, the way a person grasps a handle or a blade:

1. the support plane under the most probable contact (a seeded RANSAC fit, so the same input
   always gives the same plane), whose normal is "up";
2. the predicted part around that contact (points whose probability is close to its), and the
   part's main axis on the plane. The part is measured on the observed cloud at the sensor's
   resolution, each point taking the probability of the nearest point the network scored
   (``part_neighbourhood``): the network sees a fixed sample ~10-20x sparser, on which a thin
   shaft or a small handle is a handful of points, too few to fill a section or to tell what
   lies between the fingers;
3. candidates that close across the part: top-down at sections along the axis, turned a little
   either way, at two heights above the plane; from the side (horizontal approach from the
   cloud frame's origin, the camera in an optical frame) for parts that stand up; and
   top-down over the part's top edge, closing across it, for hollow parts wider than the
   gripper opens (a mug's body: one finger inside the wall, one outside);
4. each candidate's quality: the mean contact probability of the part's points between its
   fingers (the fingers should hold the predicted part and nothing else) times a preference for
   closing straight across the part at the contact (1 there, less for turned, shifted or side
   grasps); candidates whose opened gripper would hit the cloud are dropped, near duplicates
   removed.

With ``cfg.regions`` > 1 (``plan_part_regions``) the next most probable parts are planned on
too, each grown from the most probable contact off the parts already planned on, so that a
robot's later grasps try the next most likely part rather than near copies of the first.

Planning rather than regressing the grasp: the friction cone asks for a closing across the
part, which the part's axis gives directly. ``decode_grasps`` falls back to the grasp head when
nothing is planned (no support plane, too few points on the part, every candidate colliding).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import open3d as o3d
import open3d.core as o3c

from grasp_semantics.grasping.gripper import cloud_collisions, grasp_poses, opening
from grasp_semantics.models.config import OPENING_CLEARANCE, GripperConfig, PartGraspConfig

PLANE_SAMPLE = 4096  # neighbourhood points the plane hypotheses are scored on
SIDE_PREFERENCE = 0.9  # side grasps rank below equally good top-down ones


def support_plane(
    cloud: np.ndarray, seed: np.ndarray, cfg: PartGraspConfig
) -> tuple[np.ndarray, float] | None:
    """The plane ``(up [3], d)`` (up . x + d = 0 on it, ``seed`` [3] above it) that most of
    ``cloud`` [P, 3] within ``cfg.plane_radius`` of ``seed`` lies on; None when no plane holds
    ``cfg.plane_min_fraction`` of them or the seed is on it.

    RANSAC over ``cfg.plane_hypotheses`` point triples drawn by a fixed-seed generator (open3d's
    ``segment_plane`` gives a different plane from call to call), then a least-squares fit to
    the best hypothesis's inliers.
    """
    near = cloud[np.sum((cloud - seed) ** 2, axis=1) < cfg.plane_radius**2].astype(np.float64)
    rng = np.random.default_rng(0)
    if len(near) > PLANE_SAMPLE:
        near = near[rng.choice(len(near), PLANE_SAMPLE, replace=False)]
    if len(near) < 3:
        return None
    a, b, c = (near[rng.integers(0, len(near), cfg.plane_hypotheses)] for _ in range(3))
    normals = np.cross(b - a, c - a)  # [H, 3]
    length = np.linalg.norm(normals, axis=1)
    valid = length > 1e-9
    if not valid.any():
        return None
    normals = normals[valid] / length[valid, None]
    offsets = -np.sum(normals * a[valid], axis=1)
    inliers = np.abs(normals @ near.T + offsets[:, None]) < cfg.plane_tolerance  # [H, P']
    best = int(np.argmax(inliers.sum(axis=1)))
    on_plane = near[inliers[best]]
    if len(on_plane) < cfg.plane_min_fraction * len(near):
        return None
    centre = on_plane.mean(axis=0)
    up = np.linalg.svd(on_plane - centre, full_matrices=False)[2][2]  # least-variance axis
    d = -float(up @ centre)
    height = float(up @ seed) + d
    if abs(height) <= cfg.plane_tolerance:
        return None
    return (up, d) if height > 0 else (-up, -d)


def _horizontal(v: np.ndarray, up: np.ndarray) -> np.ndarray:
    """``v`` [3] projected onto the plane with normal ``up``, normalised."""
    h = v - (v @ up) * up
    return h / max(float(np.linalg.norm(h)), 1e-12)


def part_axes(region: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The main (largest-spread) horizontal axis of ``region`` [R, 3] and the horizontal axis
    across it, both unit [3]."""
    flat = region - np.outer(region @ up, up)
    spread = np.cov((flat - flat.mean(axis=0)).T) if len(region) > 1 else np.eye(3)
    main = _horizontal(np.linalg.eigh(spread)[1][:, 2], up)
    return main, np.cross(up, main)


def _spread_out(points: np.ndarray, start: np.ndarray, count: int) -> np.ndarray:
    """Up to ``count`` of ``points`` [P, 3] far apart from each other [<=count, 3]: the nearest
    to ``start`` [3] first, then each time the one farthest from those chosen."""
    if not len(points) or count <= 0:
        return np.zeros((0, 3))
    distance = np.sum((points - start) ** 2, axis=1)
    chosen = [int(np.argmin(distance))]
    distance = np.sum((points - points[chosen[0]]) ** 2, axis=1)
    while len(chosen) < min(count, len(points)):
        chosen.append(int(np.argmax(distance)))
        distance = np.minimum(distance, np.sum((points - points[chosen[-1]]) ** 2, axis=1))
    return points[chosen]


def _candidates(
    region: np.ndarray,
    seed: np.ndarray,
    up: np.ndarray,
    d: float,
    cfg: PartGraspConfig,
    gripper: GripperConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate poses [C, 4, 4], widths [C] and preference weights [C] across the part
    ``region`` [R, 3] around ``seed`` [3], above the plane ``(up, d)``."""
    w_limit = gripper.max_width - 2 * OPENING_CLEARANCE
    finger_breadth = gripper.finger_breadth
    main, across = part_axes(region, up)
    tcps, approaches, closings, widths, prefs = [], [], [], [], []

    def add(tcp, approach, closing, width, pref) -> None:
        tcps.append(tcp)
        approaches.append(approach)
        closings.append(closing)
        widths.append(min(width + cfg.width_margin, w_limit))
        prefs.append(pref)

    height = region @ up + d  # [R] above the plane
    for offset in cfg.offsets:
        centre = seed + offset * main
        section = np.abs((region - centre) @ main) < cfg.section
        if section.sum() < cfg.min_points:
            continue
        heights = height[section]
        levels = sorted(
            {
                max(cfg.table_clearance, heights.min() - 0.005),
                max(cfg.table_clearance, 0.5 * (heights.min() + heights.max()) - 0.01),
            }
        )
        foot = centre - (centre @ up + d) * up  # on the plane
        for yaw in np.deg2rad(cfg.yaw_deg):
            closing = np.cos(yaw) * across + np.sin(yaw) * main
            spread = region[section] @ closing
            mid = foot + (0.5 * (spread.min() + spread.max()) - foot @ closing) * closing
            pref = np.cos(yaw) * (1.0 - abs(offset) / (2 * cfg.region_radius))
            for level in levels:
                add(mid + level * up, -up, closing, np.ptp(spread), pref)
    # Over the rim: a hollow part (a mug's or a pan's body) is often wider than the gripper
    # opens, but its wall is thin; top-down at a few places on the part's top edge, closing
    # across the edge there, one finger either side of the wall.
    top = height.max()
    rim = region[height >= top - cfg.rim_band]
    for place in _spread_out(rim, seed, cfg.rim_places):
        edge = rim[np.sum((rim - place) ** 2, axis=1) < cfg.rim_reach**2]
        if len(edge) < cfg.min_points:
            continue
        closing = part_axes(edge, up)[1]  # across the edge's local direction
        spread = edge @ closing
        mid = place + (0.5 * (spread.min() + spread.max()) - place @ closing) * closing
        tcp = mid + (top - cfg.rim_depth - (mid @ up + d)) * up
        pref = cfg.rim_preference * (1.0 - np.linalg.norm(place - seed) / (2 * cfg.region_radius))
        add(tcp, -up, closing, np.ptp(spread), pref)
    # From the side: horizontal approach from the cloud frame's origin (the camera).
    centroid = region.mean(axis=0)
    view = _horizontal(centroid, up)
    heights = height.min() + np.array(cfg.side_levels) * np.ptp(height)
    for yaw in np.deg2rad(cfg.side_yaw_deg):
        approach = np.cos(yaw) * view + np.sin(yaw) * np.cross(up, view)
        closing = np.cross(up, approach)
        spread, depth = region @ closing, region @ approach
        width = np.ptp(spread)
        # fingertips beyond the part's middle: the pads reach across its widest section
        for reach in cfg.side_reach:
            along = depth.min() + 0.5 * min(width + cfg.width_margin, w_limit) + reach
            for level in heights:
                level = max(level, cfg.table_clearance + 0.5 * finger_breadth)
                tcp = (
                    along * approach
                    + 0.5 * (spread.min() + spread.max()) * closing
                    + (level - d) * up
                )
                add(tcp, approach, closing, width, SIDE_PREFERENCE * np.cos(yaw))
    widths_a = np.asarray(widths)
    closings_a = np.asarray(closings)
    poses = grasp_poses(
        np.asarray(tcps) - 0.5 * widths_a[:, None] * closings_a,
        np.asarray(approaches),
        closings_a,
        widths_a,
    )
    return poses, widths_a, np.asarray(prefs)


def finger_reach(gripper: GripperConfig) -> float:
    """Farthest a point between the opened fingers can lie from the TCP, m."""
    return float(
        np.hypot(gripper.max_width / 2, np.hypot(gripper.finger_breadth / 2, gripper.finger_depth))
    )


def between_fingers(
    poses: np.ndarray,
    widths: np.ndarray,
    points: np.ndarray,
    contact: np.ndarray,
    gripper: GripperConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean contact probability [G] of the ``points`` [M, 3] (``contact`` [M]) inside the space
    between the opened fingers of each grasp (poses [G, 4, 4], widths [G]), and their count."""
    # only points within reach of some TCP can be between its fingers
    tcp = poses[:, :3, 3]
    reach = finger_reach(gripper)
    near = np.all((points >= tcp.min(0) - reach) & (points <= tcp.max(0) + reach), axis=1)
    points, contact = points[near], contact[near]
    local = (points[None] - tcp[:, None]) @ poses[:, :3, :3]  # [G, M', 3] gripper frame
    half = 0.5 * opening(widths, gripper)[:, None]
    inside = (
        (np.abs(local[..., 0]) <= half)
        & (np.abs(local[..., 1]) <= gripper.finger_breadth / 2)
        & (local[..., 2] >= -gripper.finger_depth)
        & (local[..., 2] <= 0)
    )  # [G, M]
    count = inside.sum(axis=1)
    return (inside @ contact) / np.maximum(count, 1), count


class NearestPoints:
    """The nearest of a fixed set of ``points`` [P, 3] to query points, by open3d's k-d tree
    (built once, exact; float32 coordinates, the cloud's own precision): several times faster
    than a distance matrix over thousands of points."""

    def __init__(self, points: np.ndarray) -> None:
        self.points = np.ascontiguousarray(points, dtype=np.float32)
        self._search = o3c.nns.NearestNeighborSearch(o3c.Tensor(self.points))
        self._search.knn_index()

    def indices(self, queries: np.ndarray, k: int) -> np.ndarray:
        """Indices [Q, min(k, P)] into ``points`` of the nearest to each of ``queries`` [Q, 3],
        nearest first."""
        found, _ = self._search.knn_search(
            o3c.Tensor(np.ascontiguousarray(queries, dtype=np.float32)), min(k, len(self.points))
        )
        return found.numpy().astype(np.int64)


def part_neighbourhood(
    points: np.ndarray, contact: np.ndarray, cloud: np.ndarray, seed: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """The ``cloud`` [P, 3] points within ``radius`` of ``seed`` [3] ([L, 3], float64) and their
    contact probabilities [L]: each that of its nearest point among the scored ``points``
    [M, 3] (``contact`` [M])."""
    local = cloud[np.sum((cloud - seed) ** 2, axis=1) < radius**2]
    if not len(local):
        return np.zeros((0, 3)), np.zeros(0)
    nearest = NearestPoints(points).indices(local, 1)[:, 0]
    return local.astype(np.float64), contact[nearest].astype(np.float64)


@dataclass
class PlannedGrasps:
    """Candidates across the part, in no order (``G`` of them), and the part's surroundings
    they were planned on (what the grasp scorer looks at)."""

    poses: np.ndarray  # [G, 4, 4]
    widths: np.ndarray  # [G] m
    scores: np.ndarray  # [G] quality in (0, 1], see the module doc
    seed_index: int  # the most probable contact the part was grown from, into ``points``
    points: np.ndarray  # [L, 3] cloud points within the fingers' reach of the part
    contact: np.ndarray  # [L] their contact probabilities
    up: np.ndarray  # [3] the support plane's normal
    part_rank: int = 0  # 0: planned on the most probable part, 1: on the next (regions)...
    part_probability: float = 1.0  # its contact's probability / the most probable contact's

    def subset(self, index: np.ndarray) -> PlannedGrasps:
        """The candidates ``index`` [G'] (same surroundings)."""
        return dataclasses.replace(
            self, poses=self.poses[index], widths=self.widths[index], scores=self.scores[index]
        )


def plan_part_grasps(
    points: np.ndarray,
    contact: np.ndarray,
    cloud: np.ndarray,
    cfg: PartGraspConfig,
    gripper: GripperConfig,
) -> PlannedGrasps | None:
    """Candidate grasps across the most probable contact's part (``points`` [M, 3] with
    ``contact`` [M]; the observed ``cloud`` [P, 3] for the support plane and, with
    ``cfg.dense``, the part's shape), not yet checked for collisions; None when nothing is
    planned."""
    seed_index = int(np.argmax(contact))
    seed = points[seed_index].astype(np.float64)
    plane = support_plane(cloud, seed, cfg)
    if plane is None:
        return None
    up, d = plane
    if cfg.dense:  # every point a candidate's fingers can reach: region + the gripper's reach
        part_points, part_contact = part_neighbourhood(
            points, contact, cloud, seed, cfg.region_radius + finger_reach(gripper)
        )
    else:
        part_points, part_contact = points.astype(np.float64), contact.astype(np.float64)
    region = (np.sum((part_points - seed) ** 2, axis=1) < cfg.region_radius**2) & (
        part_contact >= cfg.region_fraction * contact[seed_index]
    )
    if region.sum() < cfg.min_points:
        return None
    poses, widths, prefs = _candidates(part_points[region], seed, up, d, cfg, gripper)
    held, count = between_fingers(poses, widths, part_points, part_contact, gripper)
    quality = held * prefs * (count >= cfg.min_points)
    keep = np.flatnonzero(quality > 0)
    if not len(keep):
        return None
    return PlannedGrasps(
        poses[keep], widths[keep], quality[keep], seed_index, part_points, part_contact, up
    )


def predicted_part(
    points: np.ndarray, contact: np.ndarray, seed_index: int, fraction: float, link: float
) -> np.ndarray:
    """The points [M] bool of the part grown from ``points[seed_index]``: those with at least
    ``fraction`` of its contact probability that a chain of such points, each within ``link``
    of the next, joins to it (however long the part: a knife's whole handle). The chains are
    open3d's DBSCAN clusters with one point enough to start one (connected components)."""
    high = np.flatnonzero(contact >= fraction * contact[seed_index])  # includes the seed
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points[high].astype(np.float64)))
    cluster = np.asarray(cloud.cluster_dbscan(eps=link, min_points=1))
    part = np.zeros(len(points), dtype=bool)
    part[high[cluster == cluster[np.flatnonzero(high == seed_index)[0]]]] = True
    return part


def plan_part_regions(
    points: np.ndarray,
    contact: np.ndarray,
    cloud: np.ndarray,
    cfg: PartGraspConfig,
    gripper: GripperConfig,
) -> Iterator[PlannedGrasps]:
    """:func:`plan_part_grasps` on up to ``cfg.regions`` parts, most probable first, each
    planned only when asked for (a caller may stop after the first): after each, its whole
    predicted part (:func:`predicted_part`, linked within ``cfg.region_separation``) and the
    points within ``cfg.region_separation`` of it score 0, so the next plan grows from the
    most probable contact on another part. Parts where nothing is planned are left out."""
    contact = np.asarray(contact)
    top = float(contact.max())
    for rank in range(cfg.regions):
        if contact.max() <= 0:
            return
        planned = plan_part_grasps(points, contact, cloud, cfg, gripper)
        if planned is not None:
            probability = float(contact.max()) / top
            yield dataclasses.replace(planned, part_rank=rank, part_probability=probability)
        if rank + 1 == cfg.regions:
            return
        seed_index = int(np.argmax(contact))
        part = points[
            predicted_part(points, contact, seed_index, cfg.region_fraction, cfg.region_separation)
        ]
        near = NearestPoints(part).indices(points, 1)[:, 0]
        apart = np.sum((points - part[near]) ** 2, axis=1) >= cfg.region_separation**2
        contact = np.where(apart, contact, 0).astype(contact.dtype)


def collision_free_parts(
    points: np.ndarray,
    contact: np.ndarray,
    cloud: np.ndarray,
    cfg: PartGraspConfig,
    gripper: GripperConfig,
    tolerance: int,
) -> Iterator[PlannedGrasps]:
    """:func:`plan_part_regions`'s plans keeping only the candidates whose opened gripper hits
    at most ``tolerance`` ``cloud`` points (each part's candidates checked in one cloud pass);
    parts left with none are skipped. Lazy, as ``plan_part_regions`` is."""
    for planned in plan_part_regions(points, contact, cloud, cfg, gripper):
        free = ~cloud_collisions(planned.poses, planned.widths, cloud, gripper, tolerance)
        if free.any():
            yield planned.subset(np.flatnonzero(free))
