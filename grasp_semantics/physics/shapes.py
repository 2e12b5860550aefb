"""Convex pieces of the generator's objects, the shapes MuJoCo collides.

MuJoCo collides a mesh geom as the convex hull of its vertices, so every object is handed over
as convex pieces, each tagged with its part:

- each primitive the generator assembled an object from (a connected component of its mesh:
  boxes, frusta, prisms, tubes, vessels) is one piece when it is convex, i.e. its convex hull
  adds at most ``CONVEX_SLACK`` to its volume;
- the others (the vessels of mugs, cups and pans, mug handles, cup sleeves, scissor loops) are
  cut into convex pieces by CoACD (approximate convex decomposition, ``coacd`` on PyPI). A
  decomposition is looked up by a hash of the shape (centred, so the two loops of a pair of
  scissors share one) and the settings: first in the file shipped with the package
  (``SHIPPED``, every instance of the generator, rebuilt by ``python -m
  grasp_semantics.physics.shapes``), then in the user cache (``cache_dir()``); only a shape in
  neither runs CoACD (seconds per shape) and is added to the user cache.

CoACD must be imported after open3d (the other order makes open3d's import fail with
std::bad_cast), so it is imported only where a decomposition runs.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import ConvexHull

from grasp_semantics.data.objects import CATEGORIES, N_INSTANCES, make_object

LOG = logging.getLogger(__name__)
CONVEX_SLACK = 0.10  # a component whose hull is at most 10 % larger than it counts as convex
# CoACD settings: concavity threshold (fraction of the shape's size) and search effort, chosen
# to cut a 4 mm vessel wall into pieces that keep the cavity open in seconds, not minutes.
# The meshes are closed (up to a mug handle's open ends), so CoACD's remeshing step is off: it
# took a mug handle from 3 s and 12 pieces to 160 s and 82 pieces.
COACD_SETTINGS: dict[str, float | int | str] = {
    "threshold": 0.05,
    "preprocess_mode": "off",
    "resolution": 1000,
    "mcts_iterations": 40,
    "mcts_nodes": 10,
    "max_ch_vertex": 64,
    "seed": 0,
}
SHIPPED = Path(__file__).with_name("convex_pieces.npz")
CACHE_VERSION = 1


@dataclass(frozen=True)
class Piece:
    """One convex piece of an object: its vertices (object frame) and the part it belongs to."""

    part: int
    vertices: np.ndarray  # [V, 3] float64, in the object's own frame


def cache_dir() -> Path:
    """Where decompositions are kept: ``$GRASP_SEMANTICS_CACHE/convex`` or
    ``~/.cache/grasp_semantics/convex``."""
    root = os.environ.get("GRASP_SEMANTICS_CACHE") or Path.home() / ".cache" / "grasp_semantics"
    return Path(root) / "convex"


def components(triangles: np.ndarray, n_vertices: int) -> tuple[int, np.ndarray]:
    """Connected components of a triangle mesh: their count and the label of each triangle
    (triangles sharing a vertex index are connected)."""
    n_tris = len(triangles)
    rows = np.repeat(np.arange(n_tris), 3)
    cols = n_tris + triangles.ravel()  # vertex nodes follow the triangle nodes
    size = n_tris + n_vertices
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(size, size))
    _, labels = connected_components(graph, directed=False)
    uniques, labels = np.unique(labels[:n_tris], return_inverse=True)
    return len(uniques), labels


def enclosed_volume(vertices: np.ndarray, triangles: np.ndarray) -> float:
    """Volume enclosed by an outward-wound triangle surface (divergence theorem)."""
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    return float(np.abs(np.einsum("ij,ij->i", a, np.cross(b, c)).sum()) / 6)


def is_convex(vertices: np.ndarray, triangles: np.ndarray, slack: float = CONVEX_SLACK) -> bool:
    """Whether the convex hull of a closed component adds at most ``slack`` to its volume."""
    volume = enclosed_volume(vertices, triangles)
    return volume > 0 and ConvexHull(vertices).volume <= (1 + slack) * volume


def shape_key(vertices: np.ndarray, triangles: np.ndarray) -> str:
    """Hash of a centred shape and the decomposition settings."""
    centred = np.round(vertices - vertices.mean(axis=0), 9)
    return hashlib.sha256(
        np.ascontiguousarray(centred, np.float64).tobytes()
        + np.ascontiguousarray(triangles, np.int64).tobytes()
        + repr((CACHE_VERSION, sorted(COACD_SETTINGS.items()))).encode()
    ).hexdigest()[:20]


@functools.cache
def _shipped() -> dict[str, list[np.ndarray]]:
    """The decompositions shipped with the package, by shape key (centred vertices)."""
    if not SHIPPED.exists():
        return {}
    out: dict[str, list[np.ndarray]] = {}
    with np.load(SHIPPED) as stored:
        for name in stored.files:  # "<key>/<piece index>"
            key, _ = name.split("/")
            out.setdefault(key, []).append(stored[name].astype(np.float64))
    return out


def run_coacd(vertices: np.ndarray, triangles: np.ndarray) -> list[np.ndarray]:
    """CoACD's convex pieces (vertex arrays) of a shape, with ``COACD_SETTINGS``."""
    import coacd

    coacd.set_log_level("error")
    parts = coacd.run_coacd(coacd.Mesh(vertices, triangles), **COACD_SETTINGS)
    return [np.asarray(v, np.float64) for v, _ in parts]


def decompose(vertices: np.ndarray, triangles: np.ndarray) -> list[np.ndarray]:
    """Convex pieces (vertex arrays) of a non-convex shape: shipped, cached or computed."""
    centre = vertices.mean(axis=0)
    key = shape_key(vertices, triangles)
    if key in _shipped():
        return [p + centre for p in _shipped()[key]]
    path = cache_dir() / f"{key}.npz"
    if path.exists():
        with np.load(path) as stored:
            return [stored[f"piece{i}"] + centre for i in range(len(stored.files))]
    pieces = run_coacd(vertices - centre, triangles)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{key}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **{f"piece{i}": p for i, p in enumerate(pieces)})
    tmp.replace(path)  # atomic: parallel workers never read half a file
    LOG.info("decomposed a %d-triangle shape into %d convex pieces", len(triangles), len(pieces))
    return [p + centre for p in pieces]


def _component_shapes(category: str, index: int):
    """Each connected component of an instance's mesh: (part, vertices, local triangles)."""
    mesh = make_object(category, index).mesh
    count, label = components(mesh.triangles, len(mesh.vertices))
    for c in range(count):
        tris = mesh.triangles[label == c]
        used, local = np.unique(tris, return_inverse=True)
        part = int(np.bincount(mesh.part[label == c]).argmax())
        yield part, mesh.vertices[used], local.reshape(-1, 3).astype(np.int32)


@functools.cache
def object_pieces(category: str, index: int) -> tuple[Piece, ...]:
    """The convex pieces of instance ``index`` of ``category`` (object frame); cached."""
    pieces: list[Piece] = []
    for part, vertices, tris in _component_shapes(category, index):
        if is_convex(vertices, tris):
            pieces.append(Piece(part, vertices))
        else:
            pieces.extend(Piece(part, v) for v in decompose(vertices, tris))
    return tuple(pieces)


def build_shipped(path: Path = SHIPPED, held_out_only: bool = False) -> int:
    """Decompose every non-convex shape of every instance (the held-out test instances first;
    only those with ``held_out_only``) and write them to ``path`` (float32 vertices, centred);
    returns the number of shapes."""
    from grasp_semantics.data.splits import held_out_instances

    held = held_out_instances()
    instances = [(c, i) for c in CATEGORIES for i in held[c]]
    if not held_out_only:
        instances += [(c, i) for c in CATEGORIES for i in range(N_INSTANCES) if i not in held[c]]
    arrays: dict[str, np.ndarray] = {}
    for category, index in instances:
        for _, vertices, tris in _component_shapes(category, index):
            key = shape_key(vertices, tris)
            if is_convex(vertices, tris) or f"{key}/0" in arrays:
                continue
            pieces = decompose(vertices, tris)  # the user cache keeps a partial run's work
            centre = vertices.mean(axis=0)
            for i, p in enumerate(pieces):
                arrays[f"{key}/{i}"] = (p - centre).astype(np.float32)
            print(f"{category}/{index:02d}: {len(pieces)} pieces", flush=True)
    np.savez_compressed(path, **arrays)
    return len({name.split("/")[0] for name in arrays})


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.INFO)
    count = build_shipped(held_out_only="--held-out-only" in sys.argv[1:])
    print(f"{count} shapes written to {SHIPPED}")
