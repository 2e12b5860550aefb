"""Small triangle-mesh toolkit: primitives with outward winding, transforms, part-labelled meshes.

Every primitive returns ``(vertices [V,3] float64, triangles [T,3] int32)`` in its own frame,
wound counter-clockwise seen from the free side, so the right-hand triangle normal points
out of the solid (into the cavity for the inner walls of hollow shapes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def triangle_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Unit normals ``[T,3]`` of the right-hand winding."""
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    n = np.cross(b - a, c - a)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def orient(vertices: np.ndarray, triangles: np.ndarray, refs: np.ndarray, sign: float = 1.0):
    """Flip triangles so that ``sign * n . (centroid - ref) > 0``; ``refs`` is ``[T,3]`` or [3]."""
    n = triangle_normals(vertices, triangles)
    centroid = vertices[triangles].mean(axis=1)
    flip = sign * np.sum(n * (centroid - refs), axis=1) < 0
    triangles = triangles.copy()
    triangles[flip] = triangles[flip][:, ::-1]
    return triangles


def box(size) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box with full extents ``size`` (3,), centred at the origin."""
    hx, hy, hz = np.asarray(size, dtype=np.float64) / 2
    v = np.array([[x, y, z] for x in (-hx, hx) for y in (-hy, hy) for z in (-hz, hz)])
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    t = np.array([[q[0], q[1], q[2]] for q in quads] + [[q[0], q[2], q[3]] for q in quads])
    return v, orient(v, t.astype(np.int32), np.zeros(3))


def _ring(radius: float, z: float, n: int) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([radius * np.cos(a), radius * np.sin(a), np.full(n, z)], axis=1)


def _band(i0: int, i1: int, n: int) -> np.ndarray:
    """Quads between two rings of ``n`` vertices starting at indices i0 and i1."""
    k = np.arange(n)
    k1 = (k + 1) % n
    return np.concatenate(
        [np.stack([i0 + k, i0 + k1, i1 + k1], 1), np.stack([i0 + k, i1 + k1, i1 + k], 1)]
    )


def _fan(centre: int, i0: int, n: int) -> np.ndarray:
    k = np.arange(n)
    return np.stack([np.full(n, centre), i0 + k, i0 + (k + 1) % n], 1)


def frustum(r0: float, r1: float, height: float, n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Closed truncated cone along +z from z=0 (radius r0) to z=height (radius r1)."""
    v = np.concatenate([_ring(r0, 0, n), _ring(r1, height, n), [[0, 0, 0], [0, 0, height]]])
    side = _band(0, n, n)
    caps = np.concatenate([_fan(2 * n, 0, n), _fan(2 * n + 1, n, n)])
    side = orient(v, side.astype(np.int32), _axis_refs(v, side))
    caps = orient(v, caps.astype(np.int32), np.array([0, 0, height / 2]))
    return v, np.concatenate([side, caps])


def _axis_refs(v: np.ndarray, t: np.ndarray) -> np.ndarray:
    c = v[t].mean(axis=1)
    c[:, :2] = 0
    return c


def hollow_frustum(
    r0: float, r1: float, height: float, wall: float, floor: float, n: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Open-topped vessel (cup, mug, pan): outer radii r0 (bottom) / r1 (top), wall thickness
    ``wall``, floor thickness ``floor``; the cavity is open at z=height."""
    q0 = r0 - wall + (r1 - r0) * floor / height  # inner radius at the floor
    q1 = r1 - wall
    v = np.concatenate(
        [
            _ring(r0, 0, n),  # 0: outer bottom
            _ring(r1, height, n),  # n: outer top
            _ring(q1, height, n),  # 2n: inner top
            _ring(q0, floor, n),  # 3n: inner floor
            [[0, 0, 0], [0, 0, floor]],  # 4n, 4n+1: centres
        ]
    )
    outer = _band(0, n, n)
    rim = _band(n, 2 * n, n)
    inner = _band(2 * n, 3 * n, n)
    bottom = _fan(4 * n, 0, n)
    floor_t = _fan(4 * n + 1, 3 * n, n)
    parts = [
        orient(v, outer.astype(np.int32), _axis_refs(v, outer)),
        orient(v, rim.astype(np.int32), np.array([0, 0, height - 1.0])),
        orient(v, inner.astype(np.int32), _axis_refs(v, inner), sign=-1.0),
        orient(v, bottom.astype(np.int32), np.array([0, 0, 1.0])),
        orient(v, floor_t.astype(np.int32), np.array([0, 0, floor - 1.0])),
    ]
    return v, np.concatenate(parts)


def torus_arc(
    major: float, minor: float, a0: float, a1: float, n_major: int = 24, n_minor: int = 12
) -> tuple[np.ndarray, np.ndarray]:
    """Tube of radius ``minor`` around the circle of radius ``major`` in the xz-plane, from
    angle a0 to a1 (radians from +x towards +z); a full circle when ``a1 - a0 >= 2 pi``."""
    closed = a1 - a0 >= 2 * np.pi - 1e-9
    m = n_major if closed else n_major + 1
    a = a0 + (a1 - a0) * np.arange(m) / (n_major if not closed else m)
    b = np.linspace(0, 2 * np.pi, n_minor, endpoint=False)
    centre = np.stack([major * np.cos(a), np.zeros(m), major * np.sin(a)], 1)  # [m,3]
    radial = centre / major
    y = np.array([0.0, 1.0, 0.0])
    v = (
        centre[:, None]
        + minor * np.cos(b)[None, :, None] * radial[:, None]
        + minor * np.sin(b)[None, :, None] * y
    ).reshape(-1, 3)
    tris = []
    for i in range(n_major if closed else m - 1):
        j = (i + 1) % m
        tris.append(_band(i * n_minor, j * n_minor, n_minor))
    t = np.concatenate(tris)
    refs = centre[t // n_minor].mean(axis=1)
    return v, orient(v, t.astype(np.int32), refs)


def extrude(polygon: np.ndarray, z0: float, z1: float) -> tuple[np.ndarray, np.ndarray]:
    """Prism from a convex 2-D polygon ``[K,2]`` (xy), between z0 and z1."""
    k = len(polygon)
    p = np.asarray(polygon, dtype=np.float64)
    v = np.concatenate([np.c_[p, np.full(k, z0)], np.c_[p, np.full(k, z1)]])
    side = _band(0, k, k)
    caps = np.concatenate(
        [
            np.stack([np.zeros(k - 2), np.arange(1, k - 1), np.arange(2, k)], 1),
            np.stack([np.full(k - 2, k), k + np.arange(1, k - 1), k + np.arange(2, k)], 1),
        ]
    )
    t = np.concatenate([side, caps]).astype(np.int32)
    centre = np.r_[p.mean(axis=0), (z0 + z1) / 2]
    return v, orient(v, t, centre)


def along_x(length: float, r0: float, r1: float | None = None, n: int = 20):
    """Cylinder (frustum) of ``length`` along +x starting at x=0, axis through the origin."""
    v, t = frustum(r0, r0 if r1 is None else r1, length, n)
    return (v @ rot_y(np.pi / 2).T, t)


def pose(rotation: np.ndarray | None = None, translation=(0.0, 0.0, 0.0)) -> np.ndarray:
    """4x4 homogeneous transform."""
    t = np.eye(4)
    if rotation is not None:
        t[:3, :3] = rotation
    t[:3, 3] = translation
    return t


def rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def transform_points(t: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to points ``[...,3]``."""
    flat = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    # (R @ P^T)^T: numpy's [N,3] @ [3,3] is much slower on CPU
    return ((t[:3, :3] @ flat.T).T + t[:3, 3]).reshape(np.shape(points))


@dataclass
class Mesh:
    """A triangle mesh whose triangles carry a part index, an RGB colour and a shininess."""

    vertices: np.ndarray  # [V,3] float64
    triangles: np.ndarray  # [T,3] int32
    part: np.ndarray  # [T] int16
    colour: np.ndarray  # [T,3] float32 in 0..1
    shine: np.ndarray  # [T] float32, specular weight

    @staticmethod
    def empty() -> Mesh:
        return Mesh(
            np.zeros((0, 3)),
            np.zeros((0, 3), np.int32),
            np.zeros(0, np.int16),
            np.zeros((0, 3), np.float32),
            np.zeros(0, np.float32),
        )

    def add(
        self, prim, part: int, colour=(0.0, 0.0, 0.0), shine: float = 0.0, transform=None
    ) -> Mesh:
        """Return this mesh plus primitive ``prim = (vertices, triangles)`` (in place too);
        builders leave colour and shine unset, ``objects.make_object`` paints each part."""
        v, t = prim
        if transform is not None:
            v = transform_points(transform, v)
        n = len(t)
        self.triangles = np.concatenate([self.triangles, t + len(self.vertices)]).astype(np.int32)
        self.vertices = np.concatenate([self.vertices, v])
        self.part = np.concatenate([self.part, np.full(n, part, np.int16)])
        self.colour = np.concatenate(
            [self.colour, np.tile(np.asarray(colour, np.float32), (n, 1))]
        )
        self.shine = np.concatenate([self.shine, np.full(n, shine, np.float32)])
        return self

    def transformed(self, t: np.ndarray) -> Mesh:
        v = transform_points(t, self.vertices)
        return Mesh(v, self.triangles, self.part, self.colour, self.shine)

    @staticmethod
    def concat(meshes: list[Mesh]) -> tuple[Mesh, np.ndarray]:
        """One mesh from many, and the index of the source mesh of each triangle ``[T]``."""
        out = Mesh.empty()
        for m in meshes:
            out.add((m.vertices, m.triangles), 0, (0, 0, 0))
        out.part = np.concatenate([m.part for m in meshes]).astype(np.int16)
        out.colour = np.concatenate([m.colour for m in meshes]).astype(np.float32)
        out.shine = np.concatenate([m.shine for m in meshes]).astype(np.float32)
        owner = np.concatenate(
            [np.full(len(m.triangles), i, np.int16) for i, m in enumerate(meshes)]
        )
        return out, owner


def ring_band(
    ri0: float, ro0: float, z0: float, ri1: float, ro1: float, z1: float, n: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Closed annular solid (a sleeve): inner/outer radii at z0 and at z1."""
    v = np.concatenate(
        [_ring(ro0, z0, n), _ring(ro1, z1, n), _ring(ri1, z1, n), _ring(ri0, z0, n)]
    )
    outer, top, inner, bottom = (
        _band(0, n, n),
        _band(n, 2 * n, n),
        _band(2 * n, 3 * n, n),
        _band(3 * n, 0, n),
    )
    parts = [
        orient(v, outer.astype(np.int32), _axis_refs(v, outer)),
        orient(v, top.astype(np.int32), np.array([0, 0, z1 - 1.0])),
        orient(v, inner.astype(np.int32), _axis_refs(v, inner), sign=-1.0),
        orient(v, bottom.astype(np.int32), np.array([0, 0, z0 + 1.0])),
    ]
    return v, np.concatenate(parts)
