"""Held-out splits are disjoint, and scenes draw only from their split's pools."""

import pytest

from grasp_semantics.data.objects import CATEGORIES
from grasp_semantics.data.scene import generate_scene
from grasp_semantics.data.splits import (
    held_out_instances,
    held_out_pairs,
    held_out_paraphrases,
    split_pools,
)
from grasp_semantics.data.tasks import PAIRS, PARAPHRASE_IDS, TASK_PARTS, TASKS


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
