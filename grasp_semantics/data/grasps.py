"""Parallel-jaw grasp checks and ground-truth antipodal grasp sampling.

Conventions are those of ``grasp_semantics.grasping.gripper``: gripper frame at the TCP
midway between the fingertips, +z approach, +x closing, y = z x x. Here the fingers occupy
``z in [-finger_depth, 0]`` (the tips are at the TCP plane), the palm lies behind them.

A grasp is *successful* on part ``(object, part)`` when (the evaluation metric):

1. ``width <= max_width`` (``width_ok``);
2. the gripper, opened to ``min(width + 2 * clearance, max_width)``, does not intersect the table
   or any object (``collision_free``, ``in_collision``);
3. closing, each finger's pad first touches a surface (``closes``), and both touched surfaces
   belong to the part (``on_part``, ``fingers_on_part``);
4. both contact normals lie within the friction cone (``mu``) of the closing axis
   (``antipodal``, ``is_antipodal``).

Everything is in one frame (the camera/cloud frame of a ``Scene``); the geometry is a
``GraspWorld`` built from a scene's object meshes and table plane.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import open3d as o3d

from grasp_semantics.data.render import cast, make_raycaster
from grasp_semantics.grasping.gripper import grasp_poses, gripper_boxes, opening
from grasp_semantics.models.config import OPENING_CLEARANCE, GripperConfig

DEFAULT_GRIPPER = GripperConfig()
SURFACE_DENSITY = 1.6e5  # surface samples per m^2 for collision checks (~2.5 mm spacing)
GEN_MARGIN = 0.001  # m, ground truth clears the table and objects by this much more


@dataclass
class GraspWorld:
    """Scene geometry (one frame) that grasps are checked against."""

    vertices: np.ndarray  # [V,3] float
    triangles: np.ndarray  # [T,3] int
    triangle_object: np.ndarray  # [T] int, object index of each triangle
    triangle_part: np.ndarray  # [T] int, part index (within its object) of each triangle
    table_plane: np.ndarray  # [4] (n, d): n . x + d = 0 on the table top, n points up
    _raycaster: o3d.t.geometry.RaycastingScene | None = field(default=None, repr=False)
    _surface: np.ndarray | None = field(default=None, repr=False)

    @property
    def raycaster(self) -> o3d.t.geometry.RaycastingScene:
        if self._raycaster is None:
            self._raycaster = make_raycaster(self.vertices, self.triangles)
        return self._raycaster

    @property
    def surface(self) -> np.ndarray:
        """Deterministic area-weighted samples ``[S,3]`` of all object surfaces."""
        if self._surface is None:
            self._surface = sample_surface(
                self.vertices, self.triangles, np.random.default_rng(0), density=SURFACE_DENSITY
            )[0]
        return self._surface

    def normals(self, triangles: np.ndarray) -> np.ndarray:
        """Outward unit normals ``[...,3]`` of the given triangle indices."""
        v = self.vertices[self.triangles[triangles]]
        n = np.cross(v[..., 1, :] - v[..., 0, :], v[..., 2, :] - v[..., 0, :])
        return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)


def sample_surface(
    vertices: np.ndarray,
    triangles: np.ndarray,
    rng: np.random.Generator,
    density: float | None = None,
    count: int | None = None,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Area-weighted random surface points ``[S,3]`` and their triangle indices ``[S]``;
    ``count`` points, or ``density`` points per m^2; ``weights`` [T] scale the areas."""
    v = vertices[triangles]  # [T,3,3]
    area = 0.5 * np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)
    if count is None:
        count = max(1, int(area.sum() * density))
    p = area if weights is None else area * weights
    tri = rng.choice(len(triangles), size=count, p=p / p.sum())
    r1, r2 = rng.random(count), rng.random(count)
    s = np.sqrt(r1)
    w = np.stack([1 - s, s * (1 - r2), s * r2], 1)
    return np.einsum("sk,skd->sd", w, v[tri]), tri


def is_antipodal(
    contact1: np.ndarray,
    normal1: np.ndarray,
    contact2: np.ndarray,
    normal2: np.ndarray,
    mu: float = 0.5,
    closing: np.ndarray | None = None,
) -> np.ndarray:
    """Whether two contacts ``[...,3]`` with OUTWARD surface normals ``[...,3]`` are antipodal:
    the closing direction (``closing`` [...,3], default the line contact1 -> contact2) lies within
    the friction cone (half-angle atan(mu)) of the inward normal at contact1 and at contact2."""
    d = contact2 - contact1 if closing is None else np.broadcast_to(closing, contact1.shape)
    d = d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-12)
    cos_lim = np.cos(np.arctan(mu))
    return (np.sum(-normal1 * d, axis=-1) >= cos_lim) & (np.sum(normal2 * d, axis=-1) >= cos_lim)


def table_collision(
    world: GraspWorld,
    poses: np.ndarray,
    widths: np.ndarray,
    gripper: GripperConfig = DEFAULT_GRIPPER,
    margin: float = 0.0,
) -> np.ndarray:
    """Whether some corner of the opened gripper ``[G]`` lies below the table top (+ margin)."""
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, 4, 4)
    lo, hi = gripper_boxes(opening(np.reshape(widths, -1), gripper), gripper)
    lo, hi = lo - margin, hi + margin
    sel = np.array([[i & 1, (i >> 1) & 1, (i >> 2) & 1] for i in range(8)], bool)  # [8,3]
    corners = np.where(sel[None, None], hi[:, :, None], lo[:, :, None])  # [G, boxes, 8, 3]
    corners = corners.reshape(len(poses), -1, 3) if len(poses) else np.zeros((0, 0, 3))
    n, d = world.table_plane[:3], world.table_plane[3]
    # n . (R c + t) + d = (R^T n) . c + n . t + d
    rn = np.einsum("gji,j->gi", poses[:, :3, :3], n)  # [G,3]
    height = np.einsum("gi,gki->gk", rn, corners) + (poses[:, :3, 3] @ n + d)[:, None]
    return (height < margin).any(axis=1)


def object_collision(
    world: GraspWorld,
    poses: np.ndarray,
    widths: np.ndarray,
    gripper: GripperConfig = DEFAULT_GRIPPER,
    margin: float = 0.0,
    chunk: int = 32,
) -> np.ndarray:
    """Whether the opened gripper ``[G]`` (boxes grown by ``margin``) contains a sample of any
    object surface."""
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, 4, 4)
    lo, hi = gripper_boxes(opening(np.reshape(widths, -1), gripper), gripper)
    lo, hi = lo - margin, hi + margin
    box_lo, box_hi = lo.min(axis=1), hi.max(axis=1)  # [G,3] bounds of all three boxes
    reach = np.linalg.norm(np.maximum(np.abs(box_lo), np.abs(box_hi)), axis=1)  # [G]
    pts = world.surface
    hit = np.zeros(len(poses), bool)
    for s in range(0, len(poses), chunk):
        sl = slice(s, s + chunk)
        c, r = poses[sl, :3, 3], reach[sl, None]
        near = np.all((pts >= (c - r).min(axis=0)) & (pts <= (c + r).max(axis=0)), axis=1)
        q = pts[near]
        if len(q) == 0:
            continue
        rot = poses[sl, :3, :3]
        dq = q[None] - c[:, None]  # [g,N,3]
        # local = R^T dq, written out per column (batched small matmuls are slow here)
        local = [
            dq[..., 0] * rot[:, None, 0, k]
            + dq[..., 1] * rot[:, None, 1, k]
            + dq[..., 2] * rot[:, None, 2, k]
            for k in range(3)
        ]
        inside = np.zeros(dq.shape[:2], bool)
        for b in range(3):
            ib = np.ones(dq.shape[:2], bool)
            for k in range(3):
                ib &= (local[k] >= lo[sl, b, k, None]) & (local[k] <= hi[sl, b, k, None])
            inside |= ib
        hit[sl] = inside.any(axis=1)
    return hit


def in_collision(
    world: GraspWorld,
    poses: np.ndarray,
    widths: np.ndarray,
    gripper: GripperConfig = DEFAULT_GRIPPER,
    margin: float = 0.0,
) -> np.ndarray:
    """Whether the opened gripper ``[G]`` intersects the table or any object.

    ``poses`` [G,4,4], ``widths`` [G]; boxes are grown and the table raised by ``margin`` (m).
    """
    hit = table_collision(world, poses, widths, gripper, margin)
    rest = np.nonzero(~hit)[0]
    if len(rest):
        poses = np.asarray(poses).reshape(-1, 4, 4)
        widths = np.reshape(widths, -1)
        hit[rest] = object_collision(world, poses[rest], widths[rest], gripper, margin)
    return hit


@dataclass
class Closing:
    """Where the fingers stop when the gripper closes; per grasp and finger ``[G,2,...]``."""

    hit: np.ndarray  # [G,2] bool, the finger touched something
    contacts: np.ndarray  # [G,2,3] first-touched points (nan where no hit)
    normals: np.ndarray  # [G,2,3] outward normals there (facing the finger)
    objects: np.ndarray  # [G,2] int object index (-1 where no hit)
    parts: np.ndarray  # [G,2] int part index (-1 where no hit)
    mixed: np.ndarray  # [G,2] bool, the contact patch spans more than one part or object

    def on(self, object_id: int, part_id: int) -> np.ndarray:
        """``[G]``: both fingers touch only part ``part_id`` of object ``object_id``."""
        ok = self.hit & ~self.mixed & (self.objects == object_id) & (self.parts == part_id)
        return ok.all(axis=1)


def close_fingers(
    world: GraspWorld,
    poses: np.ndarray,
    widths: np.ndarray,
    gripper: GripperConfig = DEFAULT_GRIPPER,
    row_spacing: float = 0.002,
    columns: int = 3,
    patch_tolerance: float = 0.0005,
) -> Closing:
    """Close both fingers from the opening towards each other; each stops at the first surface
    any point of its pad (a grid of rays over y x z) touches. The contact normal is the mean
    normal of the pad's contact patch (the rays stopping within ``patch_tolerance`` of the
    first), so a flat pad resting on two points of a concave surface pushes along their mean."""
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, 4, 4)
    g = len(poses)
    w_open = opening(np.reshape(widths, -1), gripper)
    rows = int(np.ceil(gripper.finger_depth / row_spacing)) + 1
    zs = np.linspace(-gripper.finger_depth, 0.0, rows)
    ys = np.linspace(-gripper.finger_breadth / 2, gripper.finger_breadth / 2, columns)
    yy, zz = (a.ravel() for a in np.meshgrid(ys, zs))
    m = len(yy)
    origins = np.zeros((g, 2, m, 3))
    origins[:, 0, :, 0] = -w_open[:, None] / 2
    origins[:, 1, :, 0] = w_open[:, None] / 2
    origins[..., 1], origins[..., 2] = yy, zz
    dirs_local = np.zeros((2, 3))
    dirs_local[0, 0], dirs_local[1, 0] = 1.0, -1.0
    o = np.einsum("gij,gfmj->gfmi", poses[:, :3, :3], origins) + poses[:, None, None, :3, 3]
    d = np.einsum("gij,fj->gfi", poses[:, :3, :3], dirs_local)  # [G,2,3]
    d_full = np.broadcast_to(d[:, :, None], o.shape)
    t, tri, _ = cast(world.raycaster, o.reshape(-1, 3), d_full.reshape(-1, 3))
    t = t.reshape(g, 2, m)
    tri = tri.reshape(g, 2, m)
    t = np.where(t <= w_open[:, None, None], t, np.inf)
    best = np.argmin(t, axis=2)  # [G,2]
    tb = np.take_along_axis(t, best[..., None], 2)[..., 0]
    trib = np.take_along_axis(tri, best[..., None], 2)[..., 0]
    hit = np.isfinite(tb)
    ob = np.take_along_axis(o, best[..., None, None].repeat(3, -1), 2)[:, :, 0]
    contacts = np.where(hit[..., None], ob + d * np.where(hit, tb, 0)[..., None], np.nan)
    # the pad's contact patch: every pad ray that stops within patch_tolerance of the first
    patch = t <= (tb + patch_tolerance)[..., None]  # [G,2,M]
    safe_all = np.where(patch, tri, 0)
    n_all = world.normals(safe_all)  # [G,2,M,3]
    n_all = np.where((np.einsum("gfmi,gfi->gfm", n_all, d) > 0)[..., None], -n_all, n_all)
    normals = np.sum(n_all * patch[..., None], axis=2)
    normals /= np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-12)
    safe = np.where(hit, trib, 0)
    obj, part = world.triangle_object[safe], world.triangle_part[safe]
    same = (world.triangle_object[safe_all] == obj[..., None]) & (
        world.triangle_part[safe_all] == part[..., None]
    )
    return Closing(
        hit=hit,
        contacts=contacts,
        normals=np.where(hit[..., None], normals, np.nan),
        objects=np.where(hit, obj, -1),
        parts=np.where(hit, part, -1),
        mixed=hit & ~np.all(same | ~patch, axis=2),
    )


def fingers_on_part(
    world: GraspWorld,
    poses: np.ndarray,
    widths: np.ndarray,
    object_id: int,
    part_id: int,
    gripper: GripperConfig = DEFAULT_GRIPPER,
) -> np.ndarray:
    """Whether both fingers, closing, first touch part ``part_id`` of object ``object_id`` [G]."""
    return close_fingers(world, poses, widths, gripper).on(object_id, part_id)


@dataclass
class GraspCheck:
    """Per-grasp outcome of every success criterion, ``[G]`` bool arrays, and the closing."""

    width_ok: np.ndarray
    collision_free: np.ndarray
    closes: np.ndarray
    on_part: np.ndarray
    antipodal: np.ndarray
    closing: Closing

    @property
    def success(self) -> np.ndarray:
        return self.width_ok & self.collision_free & self.closes & self.on_part & self.antipodal


def check_grasps(
    world: GraspWorld,
    poses: np.ndarray,
    widths: np.ndarray,
    object_id: int,
    part_id: int,
    mu: float = 0.5,
    gripper: GripperConfig = DEFAULT_GRIPPER,
    margin: float = 0.0,
) -> GraspCheck:
    """All success criteria for grasps ``poses`` [G,4,4] with ``widths`` [G] (see module doc)."""
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, 4, 4)
    widths = np.asarray(widths, dtype=np.float64).reshape(-1)
    c = close_fingers(world, poses, widths, gripper)
    closes = c.hit.all(axis=1)
    x = poses[:, :3, 0]
    antipodal = closes & is_antipodal(
        np.nan_to_num(c.contacts[:, 0]),
        np.nan_to_num(c.normals[:, 0]),
        np.nan_to_num(c.contacts[:, 1]),
        np.nan_to_num(c.normals[:, 1]),
        mu=mu,
        closing=x,
    )
    return GraspCheck(
        width_ok=(widths > 0) & (widths <= gripper.max_width),
        collision_free=~in_collision(world, poses, widths, gripper, margin=margin),
        closes=closes,
        on_part=c.on(object_id, part_id),
        antipodal=antipodal,
        closing=c,
    )


@dataclass
class GraspSet:
    poses: np.ndarray  # [G,4,4] float64
    widths: np.ndarray  # [G]
    contacts: np.ndarray  # [G,2,3] where the fingers touch when closing
    scores: np.ndarray  # [G] quality in 0..1 (friction-cone margin), best first


def _perpendicular(d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random unit vectors ``[N,3]`` perpendicular to unit ``d`` [N,3]."""
    r = rng.normal(size=d.shape)
    r -= np.sum(r * d, axis=1, keepdims=True) * d
    return r / np.linalg.norm(r, axis=1, keepdims=True)


def _approach(d: np.ndarray, up: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Approach directions ``[N,3]`` perpendicular to closing directions ``d`` [N,3], never
    from below the table: half of them within 20 deg of the most top-down one, half uniform."""
    down = -up - (d @ -up)[:, None] * d  # top-down approach projected off the closing axis
    norm = np.linalg.norm(down, axis=1, keepdims=True)
    down = np.where(norm > 1e-6, down / np.maximum(norm, 1e-12), _perpendicular(d, rng))
    side = np.cross(d, down)
    angle = np.where(
        rng.random(len(d)) < 0.5,
        rng.uniform(-0.6, 0.6, len(d)),
        rng.uniform(-np.pi, np.pi, len(d)),
    )
    a = np.cos(angle)[:, None] * down + np.sin(angle)[:, None] * side
    return np.where((a @ up > 0)[:, None], -a, a)


def sample_grasps(
    world: GraspWorld,
    object_id: int,
    part_id: int,
    rng: np.random.Generator,
    gripper: GripperConfig = DEFAULT_GRIPPER,
    n_grasps: int = 32,
    max_candidates: int = 1024,
    batch: int = 256,
    mu: float = 0.5,
) -> GraspSet:
    """Ground-truth grasps on part ``part_id`` of object ``object_id``.

    Antipodal sampling: a contact on the part (side-facing surfaces favoured), a closing
    direction inside its friction cone,
    the opposite finger's contact by casting back from beyond the part; a random approach
    perpendicular to the closing direction (turned to face the table). Candidates are kept
    only if they pass ``check_grasps`` with stricter settings (mu * 0.8, 1 mm margin), so they
    still pass the plain check after rounding to float32.
    """
    sel = np.nonzero((world.triangle_object == object_id) & (world.triangle_part == part_id))[0]
    if len(sel) == 0:
        return GraspSet(np.zeros((0, 4, 4)), np.zeros(0), np.zeros((0, 2, 3)), np.zeros(0))
    w_lim = gripper.max_width - 2 * OPENING_CLEARANCE
    up = world.table_plane[:3]
    # favour side-facing surfaces: closing across them can be done from above the table
    bias = np.where(np.abs(world.normals(sel) @ up) < 0.3, 1.0, 0.1)
    kept: list[tuple] = []
    tried = 0
    while tried < max_candidates and len(kept) < 2 * n_grasps:
        n = min(batch, max_candidates - tried)
        tried += n
        p1, ti = sample_surface(world.vertices, world.triangles[sel], rng, count=n, weights=bias)
        n1 = world.normals(sel[ti])
        # closing direction: the inward normal tilted inside half the friction cone
        tilt = np.arctan(mu) * 0.5 * np.sqrt(rng.random(n))
        d = -n1 * np.cos(tilt)[:, None] + _perpendicular(n1, rng) * np.sin(tilt)[:, None]
        reach = np.where(rng.random(n) < 0.5, w_lim, rng.uniform(0.004, w_lim, n))
        t, tri2, _ = cast(world.raycaster, p1 + reach[:, None] * d, -d)
        width = reach - t
        ok = np.isfinite(t) & (width > 0.002) & (width <= w_lim)
        tri2 = np.where(ok, tri2, 0)
        ok &= (world.triangle_object[tri2] == object_id) & (world.triangle_part[tri2] == part_id)
        p2 = p1 + np.where(ok, width, 0.0)[:, None] * d  # a missed ray has no second contact
        n2 = world.normals(tri2)
        n2 = np.where((np.sum(n2 * d, axis=1) < 0)[:, None], -n2, n2)
        ok &= is_antipodal(p1, n1, p2, n2, mu=0.8 * mu)
        if not ok.any():
            continue
        p1, d, width = p1[ok], d[ok], width[ok]
        approach = _approach(d, up, rng)
        poses = grasp_poses(p1, approach, d, width)
        # cheap criteria first (rays, table), the point-based collision test on survivors
        c = close_fingers(world, poses, width, gripper)
        x = poses[:, :3, 0]
        good = c.on(object_id, part_id)
        good &= is_antipodal(
            np.nan_to_num(c.contacts[:, 0]),
            np.nan_to_num(c.normals[:, 0]),
            np.nan_to_num(c.contacts[:, 1]),
            np.nan_to_num(c.normals[:, 1]),
            mu=0.8 * mu,
            closing=x,
        )
        good &= ~table_collision(world, poses, width, gripper, margin=GEN_MARGIN)
        idx = np.nonzero(good)[0]
        if len(idx) == 0:
            continue
        idx = idx[~object_collision(world, poses[idx], width[idx], gripper, margin=GEN_MARGIN)]
        for i in idx:
            cn = c.normals[i]
            score = min(-cn[0] @ x[i], cn[1] @ x[i])
            kept.append((poses[i], width[i], c.contacts[i], score))
    return _select(kept, n_grasps, mu)


def _select(kept: list[tuple], n_grasps: int, mu: float) -> GraspSet:
    """Best-first, spatially diverse subset (TCPs >= 8 mm apart or approach >= 30 deg apart)."""
    if not kept:
        return GraspSet(np.zeros((0, 4, 4)), np.zeros(0), np.zeros((0, 2, 3)), np.zeros(0))
    order = np.argsort([-k[3] for k in kept], kind="stable")
    chosen: list[int] = []
    for i in order:
        p = kept[i][0]
        if all(
            np.linalg.norm(p[:3, 3] - kept[j][0][:3, 3]) >= 0.008
            or p[:3, 2] @ kept[j][0][:3, 2] < np.cos(np.pi / 6)
            for j in chosen
        ):
            chosen.append(int(i))
        if len(chosen) == n_grasps:
            break
    cos_lim = np.cos(np.arctan(mu))
    scores = np.array([(kept[i][3] - cos_lim) / (1 - cos_lim) for i in chosen])
    return GraspSet(
        poses=np.stack([kept[i][0] for i in chosen]),
        widths=np.array([kept[i][1] for i in chosen]),
        contacts=np.stack([kept[i][2] for i in chosen]),
        scores=np.clip(scores, 0, 1),
    )
