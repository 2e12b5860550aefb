"""Wordings, held-out wordings, nouns and referring expressions (sizes, relations, colours)."""

import numpy as np
import pytest

from grasp_semantics.data.objects import CATEGORIES, make_object
from grasp_semantics.data.scene import SceneConfig, _choose_objects
from grasp_semantics.data.splits import SplitPools, held_out_paraphrases, split_pools
from grasp_semantics.data.tasks import (
    NOUNS,
    TASK_KEYWORDS,
    TASK_PARTS,
    TASKS,
    TEMPLATES,
    names_task,
    refer,
    template,
)

OLD_CATEGORIES = (
    "mug",
    "cup",
    "knife",
    "hammer",
    "spatula",
    "screwdriver",
    "bottle",
    "pan",
    "scissors",
    "brush",
)


def test_every_task_has_many_wordings_and_indirect_ones():
    assert set(TEMPLATES) == set(TASK_PARTS) == set(TASK_KEYWORDS)
    every = [t for ts in TEMPLATES.values() for t in ts]
    assert len(every) == len(set(every)), "a wording is used by two tasks"
    for task, templates in TEMPLATES.items():
        assert len(templates) >= 12, task
        assert all(t.count("{obj}") == 1 for t in templates), task
        indirect = [t for t in templates if not names_task(task, t)]
        assert len(indirect) >= 3, (task, indirect)
        for t in indirect:
            assert not any(k in t.lower() for k in TASK_KEYWORDS[task])


def test_names_task_matches_keywords():
    assert names_task("fill", "Refill the red mug")
    assert names_task("tighten", "make it tight with the wrench")
    assert not names_task("light", "it's too dark in here, get the torch")
    assert not names_task("water", "the plants look dry, take the jug")


def test_held_out_wordings_are_indirect_and_disjoint_from_training():
    held = held_out_paraphrases()
    train = split_pools("train").paraphrases
    assert held == held_out_paraphrases()  # deterministic
    for task in TASKS:
        assert len(held[task]) >= 2
        assert set(split_pools("test_paraphrase").paraphrases[task]) == set(held[task])
        assert not set(held[task]) & set(train[task])
        assert any(not names_task(task, template(p)) for p in held[task]), task
        # training still sees the task said indirectly
        assert any(not names_task(task, template(p)) for p in train[task]), task


def test_nouns_cover_every_category():
    assert set(NOUNS) == set(CATEGORIES)
    assert NOUNS["sprayer"] and "torch" in NOUNS["flashlight"]
    names = [n for ns in NOUNS.values() for n in ns]
    assert len(names) == len(set(names)), "a name shared by two categories"


def _refer(
    categories,
    colours,
    *,
    u=None,
    distance=None,
    sizes=None,
    heights=None,
    centres=None,
    target=0,
    seed=0,
    draws=40,
):
    """Every reference ``refer`` produces over ``draws`` random draws."""
    k = len(categories)
    u = np.arange(k, dtype=float) * 5 if u is None else np.asarray(u, float)  # no clear side
    distance = np.full(k, 0.7) if distance is None else np.asarray(distance, float)
    sizes = np.full(k, 0.1) if sizes is None else np.asarray(sizes, float)
    heights = np.full(k, 0.1) if heights is None else np.asarray(heights, float)
    centres = np.zeros((k, 3)) if centres is None else np.asarray(centres, float)
    rng = np.random.default_rng(seed)
    out = {
        refer(
            categories,
            colours,
            u,
            distance,
            target,
            rng,
            sizes=sizes,
            heights=heights,
            centres=centres,
        )
        for _ in range(draws)
    }
    return out


def test_size_references_need_a_clear_difference():
    cats, cols = ["jar", "jar"], ["red", "red"]
    assert _refer(cats, cols, sizes=[0.11, 0.1], heights=[0.11, 0.1]) == {None}  # 10 %: unclear
    big = _refer(cats, cols, sizes=[0.13, 0.1], heights=[0.13, 0.1])
    assert None not in big
    assert any("larger" in r or "bigger" in r for r in big)
    assert any("taller" in r for r in big)
    assert not any(w in r for r in big for w in ("small", "short", "largest", "tallest"))
    small = _refer(cats, cols, target=1, sizes=[0.13, 0.1], heights=[0.13, 0.1])
    assert any("smaller" in r for r in small) and not any("large" in r for r in small)
    # three of a kind: superlatives, and only for the extreme one
    three = _refer(["mug"] * 3, ["blue"] * 3, sizes=[0.2, 0.1, 0.15], heights=[0.1] * 3)
    assert any("largest" in r or "biggest" in r for r in three)
    assert not any("tall" in r or "short" in r for r in three)
    middle = _refer(["mug"] * 3, ["blue"] * 3, target=2, sizes=[0.2, 0.1, 0.15])
    assert middle == {None}
    # lying tools are never "tall"
    knives = _refer(["knife", "knife"], ["red", "red"], sizes=[0.2, 0.1], heights=[0.04, 0.02])
    assert knives and not any("tall" in r for r in knives if r)


def test_relation_references_name_a_unique_anchor_and_a_clearly_nearest_target():
    cats = ["cup", "cup", "kettle"]
    cols = ["white", "white", "red"]
    centres = [[0.1, 0, 0.7], [-0.2, 0, 0.7], [0.2, 0, 0.7]]
    refs = _refer(cats, cols, centres=centres)
    assert None not in refs
    assert any("next to the kettle" in r or "beside the kettle" in r for r in refs)
    assert all("kettle" in r for r in refs)  # nothing else tells the two white cups apart
    # the other cup is far from the kettle: only "closest"-style relations would fit it,
    # and it is not the closest, so it cannot be named this way
    assert _refer(cats, cols, target=1, centres=centres) == {None}
    # rivals at similar distances: no relation
    even = [[0.1, 0, 0.7], [0.3, 0, 0.7], [0.2, 0, 0.7]]
    assert _refer(cats, cols, centres=even) == {None}
    # an anchor that is itself ambiguous (two red bottles) is not used
    cats2 = ["cup", "cup", "bottle", "bottle"]
    cols2 = ["white", "white", "red", "red"]
    c2 = [[0.1, 0, 0.7], [-0.2, 0, 0.7], [0.2, 0, 0.7], [0, 0.5, 0.7]]
    assert _refer(cats2, cols2, centres=c2) == {None}
    # ... unless its colour singles it out
    cols3 = ["white", "white", "red", "blue"]
    refs3 = _refer(cats2, cols3, centres=c2)
    assert None not in refs3 and all("red bottle" in r for r in refs3)


def test_colour_and_position_still_single_out():
    refs = _refer(["mug", "mug"], ["red", "blue"], u=[100, 400])
    assert None not in refs
    assert any(r == "the red mug" or r == "the red coffee mug" for r in refs)
    assert all("blue" not in r and "right" not in r for r in refs)


def _old_pools() -> SplitPools:
    """Train pools restricted to the categories whose builders every branch has."""
    pools = split_pools("train")
    return SplitPools(
        {c: pools.instances[c] for c in OLD_CATEGORIES},
        pools.paraphrases,
        tuple((t, c) for t, c in pools.pairs if c in OLD_CATEGORIES),
    )


def test_distractor_share():
    pools, cfg = _old_pools(), SceneConfig()
    hits = 0
    n = 200
    for seed in range(n):
        _, cat, models, _, target = _choose_objects(pools, np.random.default_rng(seed), cfg)
        assert models[target].category == cat
        hits += sum(m.category == cat for m in models) > 1
    assert hits / n >= 0.4, hits / n


@pytest.mark.parametrize("cat", OLD_CATEGORIES)
def test_sizes_of_instances_vary_enough_to_be_said(cat):
    sizes = [
        max(m.height, 2 * m.half_extent.max()) for m in (make_object(cat, i) for i in range(12))
    ]
    assert max(sizes) >= 1.2 * min(sizes), cat
