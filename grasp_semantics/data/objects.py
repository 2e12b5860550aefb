"""Procedural part-annotated objects: the category table, the palette, and the instances.

Every object instance is fixed by ``(category, index)``: its shape, size and colour come from
a generator seeded with both, so ``make_object("mug", 3)`` is the same mug in every process and
on every run, and ``instance_id`` ("mug/03") names it in the held-out-instance split.
Objects are built in their own frame: resting on the table plane z=0 (z up), footprint centred
on the origin, the long axis along x (the builders are in ``builders_kitchen`` and
``builders_tools``). Parts differ in geometry only: every part of every category draws its
colour (a ``PALETTE`` name, jittered) and shine (from ``SHINE_RANGE``) independently, so
appearance says nothing about which part a point is on; the instance's ``colour_name`` is the
colour of its largest part (by surface area).
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from grasp_semantics.data import builders_kitchen as kitchen
from grasp_semantics.data import builders_tools as tools
from grasp_semantics.data.mesh import Mesh, pose

N_INSTANCES = 16  # instances per category
SCALE_RANGE = (0.8, 1.0)  # each instance's overall scale, drawn after its shape

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

# The one palette (RGB 0..1) every part of every category draws its colour from; the name of
# an instance's largest part is what instructions call the instance (``colour_name``).
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
SHINE_RANGE = (0.0, 0.8)  # specular weight of a part, drawn uniformly


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


_BUILDERS: dict[str, Callable[[np.random.Generator], Mesh]] = {
    "mug": kitchen.mug,
    "cup": kitchen.cup,
    "knife": tools.knife,
    "hammer": tools.hammer,
    "spatula": tools.spatula,
    "screwdriver": tools.screwdriver,
    "bottle": kitchen.bottle,
    "pan": kitchen.pan,
    "scissors": tools.scissors,
    "brush": tools.brush,
    "kettle": kitchen.kettle,
    "teapot": kitchen.teapot,
    "jug": kitchen.jug,
    "saucepan": kitchen.saucepan,
    "goblet": kitchen.goblet,
    "flashlight": tools.flashlight,
    "wrench": tools.wrench,
    "pliers": tools.pliers,
    "tongs": tools.tongs,
    "toothbrush": tools.toothbrush,
    "sprayer": tools.sprayer,
    "hairdryer": tools.hairdryer,
    "ladle": kitchen.ladle,
    "jar": kitchen.jar,
}


def part_areas(mesh: Mesh, n_parts: int) -> np.ndarray:
    """Surface area ``[n_parts]`` of each part of a mesh."""
    v = mesh.vertices[mesh.triangles]
    area = np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1) / 2
    return np.bincount(mesh.part, weights=area, minlength=n_parts)


@functools.cache
def make_object(category: str, index: int) -> ObjectModel:
    """The instance ``index`` (0..N_INSTANCES-1) of ``category``; cached, treat as read-only."""
    if category not in _BUILDERS:
        raise ValueError(f"unknown category {category!r}; known: {', '.join(CATEGORIES)}")
    seed = zlib.crc32(category.encode())
    mesh = _BUILDERS[category](np.random.default_rng([seed, index, 17]))
    parts = CATEGORY_PARTS[category]
    # appearance: every part draws its colour and shine independently of its identity
    paint = np.random.default_rng([seed, index, 23])
    names = [COLOUR_NAMES[paint.integers(len(COLOUR_NAMES))] for _ in parts]
    rgb = np.array([_colour(paint, n) for n in names], np.float32)
    mesh.colour = rgb[mesh.part]
    mesh.shine = paint.uniform(*SHINE_RANGE, len(parts)).astype(np.float32)[mesh.part]
    colour_name = names[int(np.argmax(part_areas(mesh, len(parts))))]
    # overall size: instances of a category differ enough for "the larger mug" to be said; only
    # smaller than built, so every part still fits the gripper
    scale = np.random.default_rng([seed, index, 29]).uniform(*SCALE_RANGE)
    mesh = mesh.transformed(pose(np.eye(3) * scale))
    lo, hi = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    centre = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
    mesh = mesh.transformed(pose(None, -centre))
    for a in (mesh.vertices, mesh.triangles, mesh.part, mesh.colour, mesh.shine):
        a.setflags(write=False)
    return ObjectModel(
        category=category,
        index=index,
        colour_name=colour_name,
        part_names=parts,
        mesh=mesh,
        half_extent=(hi[:2] - lo[:2]) / 2,
        height=float(hi[2] - lo[2]),
    )
