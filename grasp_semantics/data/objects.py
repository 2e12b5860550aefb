"""Procedural part-annotated objects: ten categories built from primitives.

Every object instance is fixed by ``(category, index)``: its shape, size and colour come from
a generator seeded with both, so ``make_object("mug", 3)`` is the same mug in every process and
on every run, and ``instance_id`` ("mug/03") names it in the held-out-instance split.
Objects are built in their own frame: resting on the table plane z=0 (z up), footprint centred
on the origin, the long axis along x. Parts differ in geometry and in colour or shade.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass

import numpy as np

from grasp_semantics.data.mesh import (
    Mesh,
    box,
    extrude,
    frustum,
    hollow_frustum,
    pose,
    ring_band,
    rot_x,
    rot_y,
    torus_arc,
)

N_INSTANCES = 16  # instances per category

# Part names per category, in part-index order. Half the categories have three or more parts.
CATEGORY_PARTS: dict[str, tuple[str, ...]] = {
    "mug": ("body", "handle"),
    "cup": ("body", "sleeve"),
    "knife": ("blade", "handle"),
    "hammer": ("head", "handle"),
    "spatula": ("blade", "handle"),
    "screwdriver": ("shaft", "handle"),
    "bottle": ("cap", "body"),
    "pan": ("body", "handle"),
    "scissors": ("blades", "handles"),
    "brush": ("bristles", "handle"),
    "kettle": ("body", "handle", "spout", "lid"),
    "teapot": ("body", "handle", "spout", "lid"),
    "jug": ("body", "handle", "spout"),
    "saucepan": ("body", "handle", "lid"),
    "goblet": ("bowl", "stem", "base"),
    "flashlight": ("head", "barrel", "tail"),
    "wrench": ("jaw", "shaft", "ring"),
    "pliers": ("jaws", "joint", "handles"),
    "tongs": ("tips", "arms", "hinge"),
    "toothbrush": ("head", "neck", "handle"),
    "sprayer": ("body", "trigger", "nozzle"),
    "hairdryer": ("body", "nozzle", "handle"),
    "ladle": ("bowl", "handle"),
    "jar": ("lid", "body"),
}
CATEGORIES: tuple[str, ...] = tuple(CATEGORY_PARTS)

# Named colours (RGB 0..1) an instance can have; the name is what instructions use.
PALETTE: dict[str, tuple[float, float, float]] = {
    "red": (0.80, 0.12, 0.10),
    "orange": (0.95, 0.50, 0.10),
    "yellow": (0.95, 0.82, 0.15),
    "green": (0.15, 0.58, 0.20),
    "blue": (0.12, 0.30, 0.80),
    "purple": (0.50, 0.22, 0.70),
    "pink": (0.95, 0.50, 0.70),
    "black": (0.10, 0.10, 0.11),
    "white": (0.92, 0.92, 0.90),
}
COLOUR_NAMES: tuple[str, ...] = tuple(PALETTE)
STEEL = (0.72, 0.73, 0.76)
DARK_STEEL = (0.33, 0.34, 0.36)
CARDBOARD = (0.66, 0.50, 0.32)
BRISTLE = (0.88, 0.78, 0.58)


@dataclass(frozen=True)
class ObjectModel:
    """One object instance in its own frame (resting on z=0)."""

    category: str
    index: int
    colour_name: str
    part_names: tuple[str, ...]
    mesh: Mesh  # part indices follow part_names
    half_extent: np.ndarray  # [2] half sizes of the xy footprint (centred on the origin)
    height: float

    @property
    def instance_id(self) -> str:
        return instance_id(self.category, self.index)


def instance_id(category: str, index: int) -> str:
    return f"{category}/{index:02d}"


def _colour(rng: np.random.Generator, name: str) -> np.ndarray:
    base = np.asarray(PALETTE[name])
    return np.clip(base * (1 + rng.normal(0, 0.06, 3)) + rng.normal(0, 0.02, 3), 0, 1)


def _shade(c, factor: float) -> np.ndarray:
    """Darker (factor < 1) or, for near-black colours, lighter version of a colour."""
    c = np.asarray(c, dtype=np.float64)
    return np.clip(c * factor, 0, 1) if c.max() > 0.25 else np.clip(c + (1 - factor) * 0.6, 0, 1)


def _jitter(rng: np.random.Generator, c) -> np.ndarray:
    return np.clip(np.asarray(c) * (1 + rng.normal(0, 0.05)), 0, 1)


def _along_x(length: float, r0: float, r1: float | None = None, n: int = 20):
    """Cylinder (frustum) of ``length`` along +x starting at x=0, axis through the origin."""
    v, t = frustum(r0, r0 if r1 is None else r1, length, n)
    return (v @ rot_y(np.pi / 2).T, t)


def _mug(rng, colour):
    m = Mesh.empty()
    r1 = rng.uniform(0.036, 0.046)
    r0 = r1 * rng.uniform(0.88, 1.0)
    h = rng.uniform(0.08, 0.11)
    wall = rng.uniform(0.004, 0.007)
    m.add(hollow_frustum(r0, r1, h, wall, 0.006), 0, colour, 0.25)
    rh, rt = rng.uniform(0.022, 0.03), rng.uniform(0.005, 0.008)
    zc = h * rng.uniform(0.45, 0.55)
    r_at = r0 + (r1 - r0) * zc / h
    cx = r_at + rh * rng.uniform(0.15, 0.35)
    a_end = np.arccos(np.clip((r_at - wall / 2 - cx) / rh, -1, 1))
    handle = torus_arc(rh, rt, -a_end, a_end, 20, 10)
    m.add(handle, 1, _shade(colour, rng.uniform(0.6, 0.75)), 0.25, pose(None, (cx, 0, zc)))
    return m


def _cup(rng, colour):
    m = Mesh.empty()
    r1 = rng.uniform(0.026, 0.031)
    r0 = r1 * rng.uniform(0.72, 0.85)
    h = rng.uniform(0.09, 0.13)
    m.add(hollow_frustum(r0, r1, h, rng.uniform(0.002, 0.003), 0.004), 0, colour, 0.1)
    za, zb = h * rng.uniform(0.25, 0.35), h * rng.uniform(0.6, 0.7)
    ra, rb = r0 + (r1 - r0) * za / h, r0 + (r1 - r0) * zb / h
    t = rng.uniform(0.003, 0.005)
    sleeve = ring_band(ra - 0.001, ra + t, za, rb - 0.001, rb + t, zb, 32)
    sleeve_colour = _jitter(rng, CARDBOARD) if rng.random() < 0.6 else _shade(colour, 0.6)
    m.add(sleeve, 1, sleeve_colour, 0.0)
    return m


def _knife(rng, colour):
    m = Mesh.empty()
    lh, wh, hh = rng.uniform(0.09, 0.12), rng.uniform(0.016, 0.024), rng.uniform(0.014, 0.02)
    m.add(box((lh, wh, hh)), 1, colour, 0.2, pose(None, (-lh / 2, 0, hh / 2)))
    lb, bw, bt = rng.uniform(0.1, 0.16), rng.uniform(0.02, 0.032), rng.uniform(0.0018, 0.003)
    blade = np.array([[0, -bw / 2], [0.65 * lb, -bw / 2], [lb, bw / 2], [0, bw / 2]])
    m.add(extrude(blade, hh / 2 - bt / 2, hh / 2 + bt / 2), 0, _jitter(rng, STEEL), 0.8)
    return m


def _hammer(rng, colour):
    m = Mesh.empty()
    s = rng.uniform(0.024, 0.032)
    r = min(rng.uniform(0.011, 0.015), s / 2 - 0.001)
    lh = rng.uniform(0.2, 0.27)
    m.add(_along_x(lh, r, r * rng.uniform(0.85, 1.0)), 1, colour, 0.2, pose(None, (0, 0, s / 2)))
    lhead = rng.uniform(0.08, 0.11)
    head = box((s, lhead, s))
    m.add(head, 0, _jitter(rng, DARK_STEEL), 0.7, pose(None, (lh + s / 2 - 0.004, 0, s / 2)))
    return m


def _spatula(rng, colour):
    m = Mesh.empty()
    r = rng.uniform(0.008, 0.011)
    lh = rng.uniform(0.12, 0.17)
    handle_colour = _shade(colour, 0.55) if rng.random() < 0.5 else PALETTE["black"]
    m.add(_along_x(lh, r), 1, handle_colour, 0.3, pose(None, (-lh, 0, r)))
    wn, wf, lb = rng.uniform(0.025, 0.035), rng.uniform(0.055, 0.07), rng.uniform(0.08, 0.1)
    bt = rng.uniform(0.003, 0.005)
    blade = np.array([[0, -wn / 2], [lb, -wf / 2], [lb, wf / 2], [0, wn / 2]])
    m.add(extrude(blade, r - bt / 2, r + bt / 2), 0, colour, 0.15, pose(None, (-0.005, 0, 0)))
    return m


def _screwdriver(rng, colour):
    m = Mesh.empty()
    r = rng.uniform(0.012, 0.017)
    lh = rng.uniform(0.08, 0.11)
    m.add(_along_x(lh, r * 0.9, r, 12), 1, colour, 0.3, pose(None, (-lh, 0, r)))
    rs, ls = rng.uniform(0.0025, 0.0035), rng.uniform(0.07, 0.13)
    steel = _jitter(rng, STEEL)
    m.add(_along_x(ls, rs, rs, 12), 0, steel, 0.8, pose(None, (0, 0, r)))
    m.add(box((0.012, rs * 2.4, rs * 0.8)), 0, steel, 0.8, pose(None, (ls + 0.005, 0, r)))
    return m


def _bottle(rng, colour):
    m = Mesh.empty()
    rb = rng.uniform(0.027, 0.033)
    hb = rng.uniform(0.13, 0.19)
    m.add(frustum(rb * rng.uniform(0.95, 1.0), rb, hb, 28), 1, colour, 0.5)
    rn = rng.uniform(0.011, 0.014)
    hs = rng.uniform(0.025, 0.045)
    m.add(frustum(rb, rn, hs, 28), 1, colour, 0.5, pose(None, (0, 0, hb)))
    hn = rng.uniform(0.01, 0.02)
    m.add(frustum(rn, rn, hn, 20), 1, colour, 0.5, pose(None, (0, 0, hb + hs)))
    rc, hc = rn + rng.uniform(0.002, 0.004), rng.uniform(0.015, 0.022)
    others = [c for c in COLOUR_NAMES if c != _nearest_name(colour)]
    cap_colour = _colour(rng, others[rng.integers(len(others))])
    m.add(frustum(rc, rc, hc, 20), 0, cap_colour, 0.3, pose(None, (0, 0, hb + hs + hn - 0.002)))
    return m


def _pan(rng, colour):
    m = Mesh.empty()
    r1 = rng.uniform(0.08, 0.105)
    h = rng.uniform(0.035, 0.05)
    m.add(
        hollow_frustum(r1 * rng.uniform(0.8, 0.9), r1, h, rng.uniform(0.004, 0.006), 0.005, 40),
        0,
        colour,
        0.4,
    )
    lh, r = rng.uniform(0.13, 0.18), rng.uniform(0.009, 0.012)
    tilt = rng.uniform(0.0, 0.25)
    handle_colour = PALETTE["black"] if rng.random() < 0.6 else (0.45, 0.3, 0.16)
    m.add(
        _along_x(lh, r, r * 0.9, 14),
        1,
        handle_colour,
        0.2,
        pose(rot_y(-tilt), (r1 - 0.004, 0, h * rng.uniform(0.55, 0.8))),
    )
    return m


def _scissors(rng, colour):
    m = Mesh.empty()
    major, minor = rng.uniform(0.016, 0.02), rng.uniform(0.0045, 0.006)
    lh = rng.uniform(0.04, 0.05)
    v, t = torus_arc(major, minor, 0, 2 * np.pi, 20, 8)
    v = v @ rot_x(np.pi / 2).T  # lying flat
    v[:, 2] *= 1.5  # plastic loops are taller than wide: oval cross-section
    zc = 1.5 * minor
    off = major + minor + rng.uniform(0.006, 0.012)
    for side in (-1, 1):
        m.add((v, t), 1, colour, 0.3, pose(None, (-lh, side * off, zc)))
        conn = box((lh - major, 2 * minor, 2 * minor))
        m.add(conn, 1, colour, 0.3, pose(None, ((-lh + major) / 2, side * off * 0.5, zc)))
    lb, bw = rng.uniform(0.07, 0.1), rng.uniform(0.016, 0.022)
    blade = np.array([[-0.004, -bw / 2], [lb, -0.002], [lb, 0.002], [-0.004, bw / 2]])
    m.add(extrude(blade, zc - 0.002, zc + 0.002), 0, _jitter(rng, STEEL), 0.8)
    return m


def _brush(rng, colour):
    m = Mesh.empty()
    r = rng.uniform(0.006, 0.009)
    lh = rng.uniform(0.12, 0.17)
    m.add(_along_x(lh, r * 0.8, r, 14), 1, colour, 0.3, pose(None, (-lh, 0, r)))
    hb, wb, lb = rng.uniform(0.009, 0.013), rng.uniform(0.025, 0.042), rng.uniform(0.035, 0.055)
    m.add(box((0.02, wb, hb)), 1, _jitter(rng, STEEL), 0.8, pose(None, (0.01, 0, r)))
    tuft = np.array([[0, -wb / 2], [lb, -wb * 0.56], [lb, wb * 0.56], [0, wb / 2]])  # flared
    bristle = BRISTLE if rng.random() < 0.6 else PALETTE["black"]
    m.add(
        extrude(tuft, r - hb * 0.4, r + hb * 0.4),
        0,
        _jitter(rng, bristle),
        0.0,
        pose(None, (0.02, 0, 0)),
    )
    return m


_BUILDERS = {
    "mug": _mug,
    "cup": _cup,
    "knife": _knife,
    "hammer": _hammer,
    "spatula": _spatula,
    "screwdriver": _screwdriver,
    "bottle": _bottle,
    "pan": _pan,
    "scissors": _scissors,
    "brush": _brush,
}


def _nearest_name(colour) -> str:
    names = list(PALETTE)
    d = [np.sum((np.asarray(PALETTE[n]) - colour) ** 2) for n in names]
    return names[int(np.argmin(d))]


@functools.cache
def make_object(category: str, index: int) -> ObjectModel:
    """The instance ``index`` (0..N_INSTANCES-1) of ``category``; cached, treat as read-only."""
    if category not in _BUILDERS:
        raise ValueError(f"unknown category {category!r}; known: {', '.join(CATEGORIES)}")
    rng = np.random.default_rng([zlib.crc32(category.encode()), index, 17])
    colour_name = COLOUR_NAMES[rng.integers(len(COLOUR_NAMES))]
    mesh = _BUILDERS[category](rng, _colour(rng, colour_name))
    lo, hi = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    centre = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
    mesh = mesh.transformed(pose(None, -centre))
    for a in (mesh.vertices, mesh.triangles, mesh.part, mesh.colour, mesh.shine):
        a.setflags(write=False)
    return ObjectModel(
        category=category,
        index=index,
        colour_name=colour_name,
        part_names=CATEGORY_PARTS[category],
        mesh=mesh,
        half_extent=(hi[:2] - lo[:2]) / 2,
        height=float(hi[2] - lo[2]),
    )
