"""Metric code on hand-built cases whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from grasp_semantics.evaluation.metrics import (
    average_precision,
    contact_iou,
    contact_metrics,
    mean_metrics,
    part_accuracy,
    success_at_k,
    top_grasp_criteria,
)


def test_average_precision_of_a_perfect_ranking_is_one() -> None:
    assert average_precision([0.9, 0.8, 0.1, 0.0], [1, 1, 0, 0]) == 1.0


def test_average_precision_by_hand() -> None:
    # ranking: pos, neg, pos, neg -> precision at hits 1/1 and 2/3 -> AP = (1 + 2/3) / 2
    assert average_precision([0.9, 0.8, 0.7, 0.1], [1, 0, 1, 0]) == pytest.approx(5 / 6)
    # the worst ranking of one positive among four: precision 1/4
    assert average_precision([0.9, 0.8, 0.7, 0.1], [0, 0, 0, 1]) == pytest.approx(0.25)


def test_average_precision_without_positives_is_undefined() -> None:
    assert math.isnan(average_precision([0.5, 0.2], [0, 0]))


def test_iou_at_half() -> None:
    scores = np.array([0.9, 0.6, 0.4, 0.1])
    labels = np.array([1, 0, 1, 0])
    # predicted {0, 1}, labelled {0, 2}: intersection 1, union 3
    assert contact_iou(scores, labels) == pytest.approx(1 / 3)
    assert contact_iou(scores, scores >= 0.5) == 1.0
    assert math.isnan(contact_iou(np.zeros(3), np.zeros(3)))


def test_part_accuracy_looks_only_at_the_top_point() -> None:
    assert part_accuracy([0.1, 0.9, 0.3], [0, 1, 0]) == 1.0
    assert part_accuracy([0.1, 0.9, 0.3], [1, 0, 1]) == 0.0


def test_success_at_k() -> None:
    successes = np.array([False, False, True, False, False, True])
    assert success_at_k(successes, 1) == 0.0
    assert success_at_k(successes, 3) == 1.0
    assert success_at_k(successes, 5) == 1.0
    assert success_at_k(np.zeros(0, bool), 5) == 0.0


def test_mean_skips_undefined_entries() -> None:
    rows = [contact_metrics([0.9, 0.1], [1, 0]), contact_metrics([0.9, 0.1], [0, 0])]
    means = mean_metrics(rows)
    assert means["contact_ap"] == 1.0  # the second row's AP is undefined
    assert means["part_accuracy"] == 0.5
    assert means["count"] == 2


def test_top_grasp_criteria_read_the_best_ranked_grasp_only() -> None:
    criteria = {"on_part": np.array([False, True]), "antipodal": np.array([True, False])}
    assert top_grasp_criteria(criteria) == {"top1_on_part": 0.0, "top1_antipodal": 1.0}
    none = top_grasp_criteria({"on_part": np.zeros(0, bool)})
    assert math.isnan(none["top1_on_part"])  # no grasp: undefined, skipped by the mean
