"""Part-annotated objects as a folder of meshes: the procedural objects written out, and such a
folder (yours) read back as the same :class:`ObjectModel` s the scene generator renders.

The folder (``docs/mesh_folder.md``)::

    objects.yaml
    <category>/<NN>/<part>.ply     one triangle mesh per part of instance NN of the category

``objects.yaml``::

    format: 1
    categories:                    # category -> its part names, in part-index order
      mug: {parts: [body, handle], nouns: [mug, coffee mug]}   # nouns: optional
    tasks:                         # task -> category -> the part that task grasps
      drink: {mug: handle}
      hand over: {mug: body}
    wordings:                      # optional: task -> instruction wordings, {obj} the target
      drink: ["drink from {obj}", "pick up {obj} to take a sip"]
    instances:                     # colour: the name instructions use for it
      - {category: mug, index: 0, colour: red, shine: {body: 0.25, handle: 0.25}}

Every instance has one mesh per part of its category.

Meshes are in metres, in the object's own frame: z up, resting on the plane z = 0 (they are
re-centred on their footprint when read). Each triangle's colour is the mean of its vertices'
colours (grey where a file has none); ``shine`` (specular weight per part) is optional, 0 by
default. Any format open3d reads works (``.ply``, ``.obj``, ``.stl``, ``.glb``...); written
folders use binary PLY, one vertex per triangle corner so that each triangle keeps its colour.

    grasp-semantics export-objects --out my_objects [--categories mug knife] [--instances 4]

writes the procedural objects in this form, as an example to follow;
``grasp-semantics generate --objects my_objects ...`` renders scenes of a folder's objects
(``data/catalogue.py``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import open3d as o3d
import yaml

from grasp_semantics.data.mesh import Mesh, pose
from grasp_semantics.data.objects import (
    CATEGORY_PARTS,
    N_INSTANCES,
    ObjectModel,
    make_object,
)
from grasp_semantics.data.tasks import TASK_PARTS

FORMAT = 1
INDEX_FILE = "objects.yaml"
MESH_SUFFIXES = (".ply", ".obj", ".stl", ".off", ".gltf", ".glb")
GREY = (0.5, 0.5, 0.5)
# objects.yaml's sections: the type of each and of its entries
LAYOUT = {
    "categories": (dict, dict),
    "tasks": (dict, dict),
    "wordings": (dict, list),
    "instances": (list, dict),
}


@dataclass
class MeshFolder:
    """What a folder holds: the categories' parts, the task table and the instances."""

    category_parts: dict[str, tuple[str, ...]]
    task_parts: dict[str, dict[str, str]]
    objects: list[ObjectModel]
    wordings: dict[str, tuple[str, ...]]  # task -> the folder's own wordings (optional)
    nouns: dict[str, tuple[str, ...]]  # category -> the folder's nouns for it (optional)


def instance_dir(folder: Path, category: str, index: int) -> Path:
    return folder / category / f"{index:02d}"


def export_objects(
    folder: str | Path,
    categories: tuple[str, ...] = tuple(CATEGORY_PARTS),
    instances: int = N_INSTANCES,
) -> Path:
    """Write the first ``instances`` procedural instances of each of ``categories``, with the
    categories' parts and the task table restricted to them, as a mesh folder."""
    folder = Path(folder)
    entries = []
    for category in categories:
        for index in range(instances):
            obj = make_object(category, index)
            directory = instance_dir(folder, category, index)
            directory.mkdir(parents=True, exist_ok=True)
            shine = {}
            for p, name in enumerate(obj.part_names):
                on = obj.mesh.part == p
                _write_part(directory / f"{name}.ply", obj.mesh, on)
                shine[name] = round(float(obj.mesh.shine[on].mean()), 4) if on.any() else 0.0
            entries.append(
                {"category": category, "index": index, "colour": obj.colour_name, "shine": shine}
            )
    index_data = {
        "format": FORMAT,
        "categories": {c: {"parts": list(CATEGORY_PARTS[c])} for c in categories},
        "tasks": {
            task: {c: part for c, part in parts.items() if c in categories}
            for task, parts in TASK_PARTS.items()
            if any(c in categories for c in parts)
        },
        "instances": entries,
    }
    (folder / INDEX_FILE).write_text(yaml.safe_dump(index_data, sort_keys=False))
    return folder


def _write_part(path: Path, mesh: Mesh, on: np.ndarray) -> None:
    """The triangles ``on`` [T] of ``mesh`` as a mesh file, three vertices of its own per
    triangle carrying the triangle's colour."""
    triangles = mesh.triangles[on]
    out = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(mesh.vertices[triangles].reshape(-1, 3)),
        o3d.utility.Vector3iVector(np.arange(3 * len(triangles)).reshape(-1, 3)),
    )
    out.vertex_colors = o3d.utility.Vector3dVector(
        np.repeat(mesh.colour[on].astype(np.float64), 3, axis=0)
    )
    if not o3d.io.write_triangle_mesh(str(path), out, write_ascii=False):
        raise OSError(f"could not write {path}")


def _read_part(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices [V, 3], triangles [T, 3] and triangle colours [T, 3] of a mesh file."""
    mesh = o3d.io.read_triangle_mesh(str(path))
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    triangles = np.asarray(mesh.triangles, dtype=np.int32)
    if not len(triangles):
        raise ValueError(f"{path}: no triangles read (empty or unreadable mesh file)")
    if mesh.has_vertex_colors():
        colours = np.asarray(mesh.vertex_colors)[triangles].mean(axis=1)
    else:
        colours = np.tile(GREY, (len(triangles), 1))
    return vertices, triangles, colours.astype(np.float32)


def _check_index(data: dict, path: Path) -> None:
    """A ValueError naming what is wrong with an ``objects.yaml``."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a mesh folder index (needs 'format: {FORMAT}')")
    for key, (kind, item) in LAYOUT.items():
        value = data.get(key) or kind()
        items = value.values() if isinstance(value, dict) else value
        if not isinstance(value, kind) or not all(isinstance(v, item) for v in items):
            raise ValueError(f"{path}: '{key}' is not laid out as docs/mesh_folder.md shows")
    categories, tasks = data.get("categories") or {}, data.get("tasks") or {}
    entries, wordings = data.get("instances") or [], data.get("wordings") or {}
    for category, spec in categories.items():
        parts = spec.get("parts") or []
        if not isinstance(parts, list) or not parts or len(set(parts)) != len(parts):
            raise ValueError(f"{path}: category {category!r} needs distinct part names")
        nouns = spec.get("nouns", [category])
        if not isinstance(nouns, list) or not all(isinstance(n, str) and n for n in nouns):
            raise ValueError(f"{path}: nouns of {category!r} must be a list of words")
    seen = set()
    for entry in entries:
        key = (entry.get("category"), entry.get("index"))
        if key[0] not in categories or not isinstance(key[1], int):
            raise ValueError(f"{path}: instance {entry} needs a known category and an index")
        if key in seen:
            raise ValueError(f"{path}: instance {key[1]} of {key[0]!r} is listed twice")
        seen.add(key)
    for task, table in tasks.items():
        for category, part in table.items():
            if category not in categories:
                raise ValueError(
                    f"{path}: task {task!r} names category {category!r}, which is not under "
                    "'categories'"
                )
            if part not in categories[category]["parts"]:
                raise ValueError(
                    f"{path}: task {task!r} grasps {part!r} on {category!r}, which is not "
                    "one of that category's parts"
                )
            if not any(c == category for c, _ in seen):
                raise ValueError(
                    f"{path}: task {task!r} grasps {category!r}, which has no instances"
                )
    for task, texts in wordings.items():
        if task not in tasks:
            raise ValueError(f"{path}: wordings for {task!r}, which is not under 'tasks'")
        if not texts:
            raise ValueError(f"{path}: wordings of {task!r} must be a non-empty list")
        for wording in texts:
            try:
                fine = isinstance(wording, str) and wording.format(obj="") != wording
            except (KeyError, IndexError, ValueError):
                fine = False
            if not fine:
                raise ValueError(
                    f"{path}: wording {wording!r} of {task!r} must be text holding {{obj}} "
                    "(where the target's name goes) and no other {field}"
                )


def load_objects(folder: str | Path) -> MeshFolder:
    """The categories, task table and instances of a mesh folder (a ValueError saying what is
    missing or inconsistent)."""
    folder = Path(folder)
    path = folder / INDEX_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no {INDEX_FILE}")
    data = yaml.safe_load(path.read_text())
    _check_index(data, path)
    category_parts = {c: tuple(spec["parts"]) for c, spec in data["categories"].items()}
    objects = []
    for entry in data.get("instances") or []:
        category, index = entry["category"], entry["index"]
        parts = category_parts[category]
        directory = instance_dir(folder, category, index)
        files = {
            f.stem: f for f in sorted(directory.glob("*")) if f.suffix.lower() in MESH_SUFFIXES
        }
        if set(files) != set(parts):
            missing = sorted(set(parts) - set(files))
            raise ValueError(
                f"{directory}: needs one mesh file per part of {category!r}, named after it "
                f"({', '.join(parts)}); found {sorted(files) or 'none'}"
                + (f", missing {', '.join(missing)}" if missing else "")
            )
        shine = entry.get("shine") or {}
        mesh = Mesh.empty()
        for p, name in enumerate(parts):
            vertices, triangles, colours = _read_part(files[name])
            mesh.add((vertices, triangles), p, (0, 0, 0), float(shine.get(name, 0.0)))
            mesh.colour[-len(triangles) :] = colours
        lo, hi = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
        centre = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
        objects.append(
            ObjectModel(
                category=category,
                index=index,
                colour_name=str(entry.get("colour", "")),
                part_names=parts,
                mesh=mesh.transformed(pose(None, -centre)),
                half_extent=(hi[:2] - lo[:2]) / 2,
                height=float(hi[2] - lo[2]),
            )
        )
    tasks = {t: dict(table) for t, table in (data.get("tasks") or {}).items()}
    wordings = {t: tuple(w) for t, w in (data.get("wordings") or {}).items()}
    nouns = {
        c: tuple(spec["nouns"]) for c, spec in data["categories"].items() if spec.get("nouns")
    }
    return MeshFolder(category_parts, tasks, objects, wordings, nouns)


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--out", type=Path, required=True, help="the folder to write")
    parser.add_argument(
        "--categories", nargs="+", default=list(CATEGORY_PARTS), help="categories to write"
    )
    parser.add_argument("--instances", type=int, default=N_INSTANCES, help="per category")


def run(args: argparse.Namespace, command: str) -> int:
    unknown = sorted(set(args.categories) - set(CATEGORY_PARTS))
    if unknown:
        print(
            f"error: unknown categories {unknown}; known: {list(CATEGORY_PARTS)}", file=sys.stderr
        )
        return 2
    folder = export_objects(args.out, tuple(args.categories), args.instances)
    count = len(load_objects(folder).objects)  # read back: the folder is valid
    print(f"{count} objects written to {folder} ({INDEX_FILE} + one mesh per part)")
    return 0
