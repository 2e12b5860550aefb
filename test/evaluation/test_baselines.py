"""The baselines given the right object, and what ``evaluate`` reports of them."""

from __future__ import annotations

import numpy as np
import pytest

from grasp_semantics.data.objects import CATEGORY_PARTS
from grasp_semantics.data.splits import SplitPools, held_out_pairs, split_pools
from grasp_semantics.data.tasks import TASK_PARTS
from grasp_semantics.data.wordings import instruction
from grasp_semantics.evaluation.baselines import (
    PART_EDGE_CONTACT,
    KeywordRule,
    NaiveBayes,
    category_defaults,
    part_contact,
    training_table,
)
from grasp_semantics.evaluation.diagnosis import diagnose, format_diagnosis
from grasp_semantics.evaluation.evaluate import NOT_GIVEN_OBJECT, evaluate
from grasp_semantics.evaluation.metrics import bootstrap_intervals


def test_naive_bayes_reads_the_words_and_ignores_unknown_ones() -> None:
    texts = ["open the cap", "unscrew the lid", "hand me it", "give me it", "pass me it"]
    labels = ["open", "open", "hand over", "hand over", "hand over"]
    nb = NaiveBayes().fit(texts, labels)
    assert nb.probabilities("please OPEN the bottle")["open"] > 0.5
    assert nb.probabilities("give it to me")["hand over"] > 0.5
    unknown = nb.probabilities("xylophone")  # no known word: the class prior
    assert unknown == pytest.approx({"open": 0.4, "hand over": 0.6})
    with pytest.raises(ValueError):
        NaiveBayes().fit([], [])


def _pools(pairs: list[tuple[str, str]], tasks: list[str]) -> SplitPools:
    paraphrases = {t: tuple(f"{t}/{i:02d}" for i in range(3)) for t in tasks}
    return SplitPools({}, paraphrases, tuple(pairs))


def test_category_default_is_the_part_most_training_tasks_grasp() -> None:
    pools = _pools([("use", "knife"), ("cut", "knife"), ("hand over", "knife")], ["use"])
    assert category_defaults(pools) == {"knife": CATEGORY_PARTS["knife"].index("handle")}
    tie = _pools([("drink", "mug"), ("hand over", "mug")], ["use"])  # handle 1, body 1: body
    assert category_defaults(tie) == {"mug": 0}
    for category, part in category_defaults().items():  # the real training split
        counts = [0] * len(CATEGORY_PARTS[category])
        for name in training_table()[category].values():
            counts[CATEGORY_PARTS[category].index(name)] += 1
        assert counts[part] == max(counts)


def test_keyword_rule_knows_only_the_training_table() -> None:
    # "hand over" wordings are known, but not as a task on knives: the rule keeps to the
    # parts training tasks grasp on a knife
    pools = SplitPools(
        {},
        {"use": ("use/00", "use/01"), "hand over": ("hand over/00", "hand over/01")},
        (("use", "knife"), ("hand over", "mug")),
    )
    rule = KeywordRule(pools)
    handle = CATEGORY_PARTS["knife"].index("handle")
    assert rule.part(instruction("hand over/00", "the knife"), "knife", "the knife") == handle
    assert rule.part(instruction("hand over/00", "the mug"), "mug", "the mug") == (
        CATEGORY_PARTS["mug"].index(TASK_PARTS["hand over"]["mug"])
    )


def test_keyword_rule_reads_the_training_wordings() -> None:
    rule, pools = KeywordRule(), split_pools("train")
    right = [
        rule.part(instruction(p, "the red thing"), category, "the red thing")
        == CATEGORY_PARTS[category].index(TASK_PARTS[task][category])
        for task, category in pools.pairs
        for p in pools.paraphrases[task]
    ]
    assert np.mean(right) >= 0.95
    assert not set(held_out_pairs()) & {(t, c) for c, ts in rule.table.items() for t in ts}


def test_part_contact_peaks_in_the_middle_of_the_part_only() -> None:
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, (200, 3)).astype(np.float32)
    objects = rng.integers(0, 3, 200)
    parts = rng.integers(0, 2, 200)
    contact = part_contact(objects, parts, points, target=1, part=0)
    on = (objects == 1) & (parts == 0)
    assert (contact[~on] == 0).all()
    assert contact[on].min() == pytest.approx(PART_EDGE_CONTACT) and contact.max() == 1.0
    centre = points[on].mean(axis=0)
    nearest = np.flatnonzero(on)[np.argmin(np.linalg.norm(points[on] - centre, axis=1))]
    assert int(np.argmax(contact)) == nearest
    assert not part_contact(objects, parts, points, target=5, part=0).any()


def test_bootstrap_intervals_skip_undefined_scenes() -> None:
    rows = [{"a": 1.0, "b": np.nan}, {"a": 0.0, "b": 1.0}, {"a": 1.0, "b": 1.0}]
    intervals = bootstrap_intervals(rows)
    assert intervals["b"] == [1.0, 1.0]  # only the two defined scenes
    low, high = intervals["a"]
    assert 0.0 <= low < 2 / 3 < high <= 1.0
    assert bootstrap_intervals(rows) == intervals  # a fixed seed


def _record(target: int, correct: str, usual: str, **methods: tuple[int, str]) -> dict:
    """A per-scene record as ``evaluate`` writes it; ``usual``: the category's usual part."""
    methods["category_default"] = (target, usual)
    return {
        "target": target,
        "correct_part": correct,
        "methods": {
            name: {"object": obj, "part": part, "part_correct": obj == target and part == correct}
            for name, (obj, part) in methods.items()
        },
    }


def test_diagnosis_separates_finding_the_object_from_choosing_its_part() -> None:
    records = [  # two tasks want the body, where the category's usual part is the handle
        _record(1, "body", "handle", model=(1, "handle"), reader=(1, "body")),
        _record(1, "body", "handle", model=(2, "body"), reader=(1, "body")),
        _record(0, "handle", "handle", model=(0, "handle"), reader=(0, "handle")),
        _record(2, "spout", "handle", model=(2, "handle"), reader=(1, "spout")),
    ]
    figures = diagnose(records)
    model, reader = figures["model"], figures["reader"]
    assert model["object_accuracy"] == 0.75 and model["on_object"] == 3
    assert model["part_accuracy_on_object"] == pytest.approx(1 / 3)  # the handle everywhere
    assert model["category_default_on_object"] == 1.0  # it ignores the task
    assert reader["object_accuracy"] == 0.75
    assert reader["part_accuracy_on_object"] == 1.0
    assert reader["category_default_on_object"] == pytest.approx(1 / 3)  # only where asked
    table = format_diagnosis({"test_pair": figures})
    assert "| test_pair | model | 0.750 | 0.333 | 1.000 |" in table
    assert diagnose([]) == {}


@pytest.fixture(scope="module")
def evaluated() -> dict:
    return evaluate("default", ["test_paraphrase"], 3, seed=7000, device="cpu", progress=False)


@pytest.mark.slow
def test_evaluate_reports_every_baseline_per_scene(evaluated) -> None:
    defaults = category_defaults()
    records = evaluated["per_scene"]["test_paraphrase"]
    assert [r["seed"] for r in records] == [7000, 7001, 7002]
    means = evaluated["splits"]["test_paraphrase"]
    for name in ("model", "category_default", "keyword_rule", "oracle_object", "random"):
        correct = [r["methods"][name]["part_correct"] for r in records]
        assert means[name]["part_accuracy"] == pytest.approx(np.mean(correct))
        success = [any(r["methods"][name]["successes"][:1]) for r in records]
        assert means[name]["success_at_1"] == pytest.approx(np.mean(success))
    for r in records:
        category = r["target_instance"].split("/")[0]
        default = r["methods"]["category_default"]
        assert default["object"] == r["target"]  # given the right object
        assert default["part"] == CATEGORY_PARTS[category][defaults[category]]
        assert default["part_correct"] == (default["part"] == r["correct_part"])
        assert r["methods"]["oracle_object"]["object"] == r["target"]
        assert len(r["methods"]["model"]["successes"]) <= 5


@pytest.mark.slow
def test_evaluate_gives_intervals_and_the_margin(evaluated) -> None:
    split = "test_paraphrase"
    for name, metrics in evaluated["splits"][split].items():
        for key, (low, high) in evaluated["ci95"][split][name].items():
            if not np.isnan(metrics[key]):
                assert low <= metrics[key] + 1e-9 and metrics[key] <= high + 1e-9
    margin = evaluated["margins"][split]
    assert margin["baseline"] in NOT_GIVEN_OBJECT
    means = evaluated["splits"][split]
    strongest = max(means[name]["part_accuracy"] for name in NOT_GIVEN_OBJECT)
    assert margin["baseline_part_accuracy"] == pytest.approx(strongest)
    assert margin["margin"] == pytest.approx(means["model"]["part_accuracy"] - strongest)
    found = evaluated["diagnosis"][split]["model"]  # part accuracy = found x right on it
    assert found["object_accuracy"] * np.nan_to_num(found["part_accuracy_on_object"]) == (
        pytest.approx(means["model"]["part_accuracy"])
    )
