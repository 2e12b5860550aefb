"""Held-out splits, fixed by ``SPLIT_SEED``: by object instance, by instruction paraphrase and by
task-category pair (the TaskGrasp protocol).

``train`` / ``val`` draw only from what no test split holds out, so one model trained on
``train`` can be scored on each test split:

- ``test_instance``: every object in the scene is a held-out instance; train paraphrases/pairs.
- ``test_paraphrase``: held-out instruction templates; train instances and pairs.
- ``test_pair``: the target's (task, category) pair is held out; train instances/paraphrases.
- ``all``: no restriction (demos, bags).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from grasp_semantics.data.objects import CATEGORIES, CATEGORY_PARTS, N_INSTANCES
from grasp_semantics.data.tasks import PAIRS, TASK_PARTS, TEMPLATES, names_task

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


@functools.cache
def held_out_instances() -> dict[str, tuple[int, ...]]:
    rng = np.random.default_rng([SPLIT_SEED, 1])
    return {
        c: tuple(
            sorted(int(i) for i in rng.permutation(N_INSTANCES)[:HELD_OUT_INSTANCES_PER_CATEGORY])
        )
        for c in CATEGORIES
    }


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


def category_default_parts(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """category -> the part ``pairs``' tasks grasp most often on it (ties: the lower part
    index): what a rule that ignores the instruction would grasp."""
    counts: dict[str, Counter] = {}
    for task, category in pairs:
        counts.setdefault(category, Counter())[TASK_PARTS[task][category]] += 1
    return {
        category: min(c, key=lambda part: (-c[part], CATEGORY_PARTS[category].index(part)))
        for category, c in counts.items()
    }


@functools.cache
def held_out_pairs() -> tuple[tuple[str, str], ...]:
    """``HELD_OUT_PAIRS`` pairs held out so that every task and category keeps a training pair
    and the held-out pair's part is still grasped on that category by another training task
    (the part is known, the combination is new). Pairs whose part is not the category's most
    common training part are taken first, up to ``HELD_OUT_OFF_DEFAULT`` of them: there the
    instruction, not the category, decides the part."""
    rng = np.random.default_rng([SPLIT_SEED, 3])
    order = [PAIRS[i] for i in rng.permutation(len(PAIRS))]
    train = set(PAIRS)
    held: list[tuple[str, str]] = []

    def hold(task: str, cat: str, off_default: bool) -> bool:
        rest = train - {(task, cat)}
        part = TASK_PARTS[task][cat]
        learnable = any(t == task for t, _ in rest) and any(
            c == cat and TASK_PARTS[t][c] == part for t, c in rest
        )
        if not learnable:
            return False
        defaults = category_default_parts(sorted(rest))
        if off_default and part == defaults[cat]:
            return False
        # holding it out must not make an earlier held-out pair's part the new default
        if any(TASK_PARTS[t][c] == defaults[c] for t, c in held if c == cat):
            return False
        train.discard((task, cat))
        held.append((task, cat))
        return True

    for task, cat in order:
        if len(held) < HELD_OUT_OFF_DEFAULT:
            hold(task, cat, off_default=True)
    for task, cat in order:
        if len(held) < HELD_OUT_PAIRS and (task, cat) not in held:
            hold(task, cat, off_default=False)
    return tuple(sorted(held))


@functools.cache
def split_pools(split: str) -> SplitPools:
    """The pools of ``split`` (one of ``SPLITS``)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    inst_out, para_out, pair_out = held_out_instances(), held_out_paraphrases(), held_out_pairs()
    all_inst = {c: tuple(range(N_INSTANCES)) for c in CATEGORIES}
    all_para = {t: tuple(f"{t}/{i:02d}" for i in range(len(ts))) for t, ts in TEMPLATES.items()}
    train_inst = {c: tuple(i for i in all_inst[c] if i not in inst_out[c]) for c in CATEGORIES}
    train_para = {t: tuple(p for p in all_para[t] if p not in para_out[t]) for t in TEMPLATES}
    train_pairs = tuple(p for p in PAIRS if p not in pair_out)
    if split == "all":
        return SplitPools(all_inst, all_para, PAIRS)
    if split == "test_instance":
        return SplitPools(dict(inst_out), train_para, train_pairs)
    if split == "test_paraphrase":
        return SplitPools(train_inst, dict(para_out), train_pairs)
    if split == "test_pair":
        return SplitPools(train_inst, train_para, pair_out)
    return SplitPools(train_inst, train_para, train_pairs)


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
