"""Held-out splits are disjoint, and scenes draw only from their split's pools."""

import pytest

from grasp_semantics.data.objects import CATEGORIES
from grasp_semantics.data.scene import generate_scene
from grasp_semantics.data.splits import (
    FINAL_SEED,
    category_default_parts,
    check_not_final,
    held_out_instances,
    held_out_pairs,
    held_out_paraphrases,
    split_pools,
)
from grasp_semantics.data.tasks import PAIRS, TASK_PARTS, TASKS
from grasp_semantics.data.wordings import PARAPHRASE_IDS


def test_instances_disjoint():
    train, test = split_pools("train"), split_pools("test_instance")
    for c in CATEGORIES:
        assert not set(train.instances[c]) & set(test.instances[c])
        assert len(test.instances[c]) >= 2 and len(train.instances[c]) >= 8
        assert set(test.instances[c]) == set(held_out_instances()[c])


def test_paraphrases_disjoint():
    train, test = split_pools("train"), split_pools("test_paraphrase")
    for t in TASKS:
        assert not set(train.paraphrases[t]) & set(test.paraphrases[t])
        assert train.paraphrases[t] and test.paraphrases[t]
        assert set(train.paraphrases[t]) | set(test.paraphrases[t]) <= set(PARAPHRASE_IDS)
    assert set(split_pools("test_paraphrase").paraphrases["pour"]) == set(
        held_out_paraphrases()["pour"]
    )


def test_pairs_disjoint_and_learnable():
    train, test = set(split_pools("train").pairs), set(split_pools("test_pair").pairs)
    assert test and not train & test and train | test == set(PAIRS)
    for task, cat in test:
        assert any(t == task for t, _ in train)  # the task is seen with other categories
        part = TASK_PARTS[task][cat]  # and the category's part is grasped by another task
        assert any(c == cat and TASK_PARTS[t][c] == part for t, c in train)
    assert held_out_pairs() == tuple(sorted(test))


def test_held_out_pairs_mostly_need_another_part_than_the_categorys_usual_one() -> None:
    """Composition is tested only where the task, not the category, decides the part: in at
    least half the held-out pairs (here by design 12 of 16) the answer is not the part the
    training tasks grasp most often on that category, and a scene of test_pair (category drawn
    first, then one of its held-out tasks) has the usual part as its answer at most half the
    time."""
    train, test = split_pools("train").pairs, split_pools("test_pair").pairs
    usual = category_default_parts(train)
    off = [(t, c) for t, c in test if TASK_PARTS[t][c] != usual[c]]
    assert len(off) >= 12 and len(off) >= len(test) / 2
    categories = sorted({c for _, c in test})
    expected_default_share = sum(
        sum(TASK_PARTS[t][c] == usual[c] for t, cc in test if cc == c)
        / sum(cc == c for _, cc in test)
        for c in categories
    ) / len(categories)
    assert expected_default_share <= 0.5


def test_category_default_is_the_most_common_part_with_ties_to_the_lower_index() -> None:
    pairs = [("use", "knife"), ("cut", "knife"), ("hand over", "knife")]
    assert category_default_parts(pairs) == {"knife": "handle"}
    assert category_default_parts([("drink", "mug"), ("hand over", "mug")]) == {"mug": "body"}


def test_the_final_range_is_refused_for_training_and_validation() -> None:
    check_not_final(FINAL_SEED - 300, 300, "validation")  # ends just below the range
    with pytest.raises(ValueError, match="final test range"):
        check_not_final(FINAL_SEED - 299, 300, "validation")
    with pytest.raises(ValueError, match="training seeds"):
        check_not_final(FINAL_SEED + 5, 1, "training")


def test_unknown_split():
    with pytest.raises(ValueError):
        split_pools("nope")


@pytest.mark.parametrize("split", ["train", "test_instance", "test_paraphrase", "test_pair"])
def test_scenes_draw_from_their_pools(split):
    pools = split_pools(split)
    for seed in range(2):
        s = generate_scene(seed, split)
        assert s.split == split
        for o in s.objects:
            cat, idx = o.instance_id.split("/")
            assert int(idx) in pools.instances[cat]
        assert s.paraphrase_id in pools.paraphrases[s.task]
        assert (s.task, s.objects[s.target].category) in pools.pairs


def test_same_seed_differs_across_splits():
    a, b = generate_scene(5, "train"), generate_scene(5, "val")
    assert a.instruction != b.instruction or (a.rgb != b.rgb).any()
