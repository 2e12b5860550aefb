"""What scenes are made of: categories and their parts, the object instances, the task->part
table, the instructions' wordings and the nouns that name a category.

``PROCEDURAL`` is the built-in world (``data/objects.py``, ``data/tasks.py``);
``catalogue(folder)`` reads a mesh folder of your own (``docs/mesh_folder.md``). The scene
generator and the splits take either (``generate_scene(..., catalogue=...)``,
``split_pools(split, catalogue)``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from grasp_semantics.data import tasks as task_lib
from grasp_semantics.data.mesh_folder import INDEX_FILE, load_objects
from grasp_semantics.data.objects import (
    CATEGORY_PARTS,
    COLOUR_NAMES,
    N_INSTANCES,
    ObjectModel,
    make_object,
)
from grasp_semantics.data.references import NOUNS
from grasp_semantics.data.wordings import TEMPLATES, instruction


@dataclass(frozen=True, eq=False)
class Catalogue:
    """The world scenes draw from. Compared and hashed by identity (one per folder, cached);
    pickles as its folder, so generator processes load it themselves."""

    category_parts: Mapping[str, tuple[str, ...]]  # category -> part names, part-index order
    task_parts: Mapping[str, Mapping[str, str]]  # task -> category -> the part it grasps
    instances: Mapping[str, tuple[int, ...]]  # category -> its instance indices
    templates: Mapping[str, tuple[str, ...]]  # task -> wordings, "{obj}" the target's phrase
    nouns: Mapping[str, tuple[str, ...]]  # category -> nouns instructions call it by
    lookup: Callable[[str, int], ObjectModel]  # (category, index) -> the instance
    colours: tuple[str, ...]  # every colour name an instance may have
    own_wordings: frozenset[str] = frozenset()  # tasks worded by the folder, not data.tasks
    folder: Path | None = None  # None: the procedural world

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """(task, category) pairs of the task table, in its order."""
        return tuple((t, c) for t, cs in self.task_parts.items() for c in cs)

    def make_object(self, category: str, index: int) -> ObjectModel:
        return self.lookup(category, index)

    def task_part(self, task: str, category: str) -> int:
        """Part index (in ``category_parts[category]``) that ``task`` grasps on ``category``."""
        return self.category_parts[category].index(self.task_parts[task][category])

    def instruction(self, paraphrase_id: str, reference: str) -> str:
        """The instruction of wording ``paraphrase_id`` ("<task>/<index>") naming the target
        by ``reference``."""
        task, i = paraphrase_id.rsplit("/", 1)
        if task not in self.own_wordings:
            return instruction(paraphrase_id, reference)
        text = self.templates[task][int(i)].format(obj=reference)
        return text[0].upper() + text[1:]

    def __reduce__(self):
        return catalogue, (self.folder,)


PROCEDURAL = Catalogue(
    category_parts=CATEGORY_PARTS,
    task_parts=task_lib.TASK_PARTS,
    instances={c: tuple(range(N_INSTANCES)) for c in CATEGORY_PARTS},
    templates=TEMPLATES,
    nouns=NOUNS,
    lookup=make_object,
    colours=COLOUR_NAMES,
)


def catalogue(folder: str | Path | None = None) -> Catalogue:
    """The catalogue of mesh folder ``folder`` (read once per process), or ``PROCEDURAL``."""
    return PROCEDURAL if folder is None else _folder_catalogue(Path(folder).resolve())


@functools.cache
def _folder_catalogue(folder: Path) -> Catalogue:
    """A folder's catalogue. Its tasks are worded by its ``wordings:`` or, for tasks
    ``data.wordings`` knows, by ``data.wordings.TEMPLATES``; a task with neither is refused. A
    category is called by its ``nouns:``, else ``data.references.NOUNS``, else its own name."""
    loaded = load_objects(folder)
    templates = {}
    for task in loaded.task_parts:
        worded = loaded.wordings.get(task) or TEMPLATES.get(task)
        if not worded:
            raise ValueError(
                f"{folder / INDEX_FILE}: task {task!r} has no wordings; give it a list under "
                f"'wordings:' (each with {{obj}}), or use a task data.tasks words: "
                f"{', '.join(sorted(TEMPLATES))}"
            )
        templates[task] = tuple(worded)
    objects = {(o.category, o.index): o for o in loaded.objects}
    return Catalogue(
        category_parts=loaded.category_parts,
        task_parts=loaded.task_parts,
        instances={
            c: tuple(sorted(i for k, i in objects if k == c)) for c in loaded.category_parts
        },
        templates=templates,
        nouns={c: loaded.nouns.get(c) or NOUNS.get(c) or (c,) for c in loaded.category_parts},
        lookup=lambda category, index: objects[category, index],
        colours=tuple(sorted({o.colour_name for o in loaded.objects})),
        own_wordings=frozenset(loaded.wordings),
        folder=folder,
    )
