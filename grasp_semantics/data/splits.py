"""Held-out splits, fixed by ``SPLIT_SEED``: by object instance, by instruction paraphrase and by
task-category pair (the TaskGrasp protocol).

``train`` / ``val`` draw only from what no test split holds out, so one model trained on
``train`` can be scored on each test split:

- ``test_instance``: every object in the scene is a held-out instance; train paraphrases/pairs.
- ``test_paraphrase``: held-out instruction templates; train instances and pairs.
- ``test_pair``: the target's (task, category) pair is held out; train instances/paraphrases.
- ``all``: no restriction (demos, bags).

Every function takes the catalogue the scenes draw from (default: the procedural world). A
mesh folder's catalogue is split by the same rules, the held-out counts scaled to its size
(``_scaled``); tasks worded by ``data.tasks`` keep its held-out wordings.
"""

from __future__ import annotations

import functools
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from grasp_semantics.data.catalogue import PROCEDURAL, Catalogue
from grasp_semantics.data.objects import N_INSTANCES
from grasp_semantics.data.tasks import PAIRS
from grasp_semantics.data.wordings import TEMPLATES, names_task

SPLIT_SEED = 20261123
SPLITS: tuple[str, ...] = ("train", "val", "test_instance", "test_paraphrase", "test_pair", "all")
HELD_OUT_INSTANCES_PER_CATEGORY = 4
HELD_OUT_PARAPHRASES_PER_TASK = 2
HELD_OUT_PAIRS = 16
HELD_OUT_OFF_DEFAULT = 12  # of them, pairs whose part is not the category's usual one

# Scene seeds from FINAL_SEED on are the final test range: no design decision (checkpoint,
# threshold, decoding setting, recipe) may look at them; choices are made on ``val`` and the
# final figures are measured once, with `evaluate --seed final`. Training and validation
# refuse them (``check_not_final``).
FINAL_SEED = 900_000_000


@dataclass(frozen=True)
class SplitPools:
    """What a split may draw from."""

    instances: dict[str, tuple[int, ...]]  # category -> instance indices
    paraphrases: dict[str, tuple[str, ...]]  # task -> paraphrase ids
    pairs: tuple[tuple[str, str], ...]  # (task, category) pairs a target may have
    catalogue: Catalogue = PROCEDURAL  # the objects, parts and wordings behind the names


def _scaled(count: int, n: int, n_procedural: int) -> int:
    """How many of ``n`` items to hold out where the procedural world holds out ``count`` of
    ``n_procedural``: in proportion, at least one, and never all (none of a single item)."""
    if n < 2:
        return 0
    return min(n - 1, max(1, round(count * n / n_procedural)))


@functools.cache
def held_out_instances(catalogue: Catalogue = PROCEDURAL) -> dict[str, tuple[int, ...]]:
    rng = np.random.default_rng([SPLIT_SEED, 1])
    out = {}
    for c, ids in catalogue.instances.items():
        k = _scaled(HELD_OUT_INSTANCES_PER_CATEGORY, len(ids), N_INSTANCES)
        out[c] = tuple(sorted(ids[int(i)] for i in rng.permutation(len(ids))[:k]))
    return out


@functools.cache
def held_out_paraphrases() -> dict[str, tuple[str, ...]]:
    """Per task, one INDIRECT template (no task keyword, see ``tasks.TASK_KEYWORDS``) and
    ``HELD_OUT_PARAPHRASES_PER_TASK - 1`` others, drawn with ``SPLIT_SEED``: the test asks
    for tasks said in unseen words, also without naming the task; training keeps the task's
    other indirect templates."""
    rng = np.random.default_rng([SPLIT_SEED, 2])
    out = {}
    for task, templates in TEMPLATES.items():
        indirect = [i for i, t in enumerate(templates) if not names_task(task, t)]
        if len(indirect) < 2:
            raise ValueError(f"task {task!r} needs two indirect templates, has {len(indirect)}")
        first = indirect[rng.integers(len(indirect))]
        rest = [i for i in range(len(templates)) if i != first]
        more = rng.permutation(rest)[: HELD_OUT_PARAPHRASES_PER_TASK - 1]
        out[task] = tuple(f"{task}/{i:02d}" for i in sorted([first, *(int(i) for i in more)]))
    return out


def held_out_wordings(catalogue: Catalogue = PROCEDURAL) -> dict[str, tuple[str, ...]]:
    """``held_out_paraphrases`` for the tasks ``data.tasks`` words; for a task with a folder's
    own wordings, as many of them drawn (one always stays for training)."""
    known = held_out_paraphrases()
    out = {}
    for task, wordings in catalogue.templates.items():
        if task not in catalogue.own_wordings:
            out[task] = known[task]
            continue
        rng = np.random.default_rng([SPLIT_SEED, 2, zlib.crc32(task.encode())])
        k = min(HELD_OUT_PARAPHRASES_PER_TASK, len(wordings) - 1)
        idx = sorted(int(i) for i in rng.permutation(len(wordings))[:k])
        out[task] = tuple(f"{task}/{i:02d}" for i in idx)
    return out


def category_default_parts(
    pairs: Sequence[tuple[str, str]], catalogue: Catalogue = PROCEDURAL
) -> dict[str, str]:
    """category -> the part ``pairs``' tasks grasp most often on it (ties: the lower part
    index): what a rule that ignores the instruction would grasp."""
    counts: dict[str, Counter] = {}
    for task, category in pairs:
        counts.setdefault(category, Counter())[catalogue.task_parts[task][category]] += 1
    parts = catalogue.category_parts
    return {
        category: min(c, key=lambda part: (-c[part], parts[category].index(part)))
        for category, c in counts.items()
    }


@functools.cache
def held_out_pairs(catalogue: Catalogue = PROCEDURAL) -> tuple[tuple[str, str], ...]:
    """``HELD_OUT_PAIRS`` pairs held out so that every task and category keeps a training pair
    and the held-out pair's part is still grasped on that category by another training task
    (the part is known, the combination is new). Pairs whose part is not the category's most
    common training part are taken first, up to ``HELD_OUT_OFF_DEFAULT`` of them: there the
    instruction, not the category, decides the part."""
    rng = np.random.default_rng([SPLIT_SEED, 3])
    pairs, task_parts = catalogue.pairs, catalogue.task_parts
    n_held = _scaled(HELD_OUT_PAIRS, len(pairs), len(PAIRS))
    n_off_default = _scaled(HELD_OUT_OFF_DEFAULT, len(pairs), len(PAIRS))
    order = [pairs[i] for i in rng.permutation(len(pairs))]
    train = set(pairs)
    held: list[tuple[str, str]] = []

    def hold(task: str, cat: str, off_default: bool) -> bool:
        rest = train - {(task, cat)}
        part = task_parts[task][cat]
        learnable = any(t == task for t, _ in rest) and any(
            c == cat and task_parts[t][c] == part for t, c in rest
        )
        if not learnable:
            return False
        defaults = category_default_parts(sorted(rest), catalogue)
        if off_default and part == defaults[cat]:
            return False
        # holding it out must not make an earlier held-out pair's part the new default
        if any(task_parts[t][c] == defaults[c] for t, c in held if c == cat):
            return False
        train.discard((task, cat))
        held.append((task, cat))
        return True

    for task, cat in order:
        if len(held) < n_off_default:
            hold(task, cat, off_default=True)
    for task, cat in order:
        if len(held) < n_held and (task, cat) not in held:
            hold(task, cat, off_default=False)
    return tuple(sorted(held))


@functools.cache
def split_pools(split: str, catalogue: Catalogue = PROCEDURAL) -> SplitPools:
    """The pools of ``split`` (one of ``SPLITS``) of ``catalogue``'s world."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    inst_out, pair_out = held_out_instances(catalogue), held_out_pairs(catalogue)
    para_out = held_out_wordings(catalogue)
    all_inst = dict(catalogue.instances)
    templates = catalogue.templates
    all_para = {t: tuple(f"{t}/{i:02d}" for i in range(len(ts))) for t, ts in templates.items()}
    train_inst = {c: tuple(i for i in ids if i not in inst_out[c]) for c, ids in all_inst.items()}
    train_para = {t: tuple(p for p in all_para[t] if p not in para_out[t]) for t in templates}
    pairs = catalogue.pairs
    train_pairs = tuple(p for p in pairs if p not in pair_out)
    if split == "all":
        return _pools(split, all_inst, all_para, pairs, catalogue)
    if split == "test_instance":
        return _pools(split, dict(inst_out), train_para, train_pairs, catalogue)
    if split == "test_paraphrase":
        return _pools(split, train_inst, dict(para_out), train_pairs, catalogue)
    if split == "test_pair":
        return _pools(split, train_inst, train_para, pair_out, catalogue)
    return _pools(split, train_inst, train_para, train_pairs, catalogue)


def _pools(split, instances, paraphrases, pairs, catalogue: Catalogue) -> SplitPools:
    """The pools, less the categories without instances in them and the pairs those or an
    unworded task would need (none in the procedural world; a small folder may have some)."""
    instances = {c: ids for c, ids in instances.items() if ids}
    pairs = tuple(
        (t, c) for t, c in pairs if c in instances and (t not in paraphrases or paraphrases[t])
    )
    if not pairs:
        raise ValueError(
            f"split {split!r} of {catalogue.folder or 'the procedural world'} has no "
            "(task, category) pair to draw a target from: too few instances, wordings or "
            "pairs to hold some out"
        )
    return SplitPools(instances, paraphrases, pairs, catalogue)


def is_final(seed: int, scenes: int = 1) -> bool:
    """Whether scenes ``seed .. seed + scenes - 1`` reach into the final test range."""
    return seed + scenes > FINAL_SEED


def check_not_final(seed: int, scenes: int, what: str) -> None:
    """A ValueError when ``what`` (training or validation scenes) would use final-range seeds."""
    if is_final(seed, scenes):
        raise ValueError(
            f"{what} seeds {seed}..{seed + scenes - 1} reach the final test range "
            f"(from {FINAL_SEED:,}), which only the final evaluation may use"
        )
