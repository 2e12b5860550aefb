"""Evaluation metrics for functional contact and grasp predictions (numpy, no torch).

Contact metrics compare per-point contact probabilities with the per-point label "on the part
this instruction needs, of the object it names":
- average precision (area under the precision-recall curve, step-wise, as in VOC/sklearn),
- IoU of the thresholded prediction (probability >= 0.5) with the labelled region,
- part accuracy: the single most probable point carries the label.
Grasp metrics take a per-grasp success vector, best-ranked first (the success test itself,
antipodality, collisions and the part the fingers close on, lives in
``grasp_semantics.data.grasps``):
- success@k: at least one of the k best grasps succeeds (0 when there is no grasp);
- per criterion, whether the best-ranked grasp meets it (``top1_<criterion>``): where the
  grasps that fail go wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision of ``scores`` ``[N]`` ranking the positives of ``labels`` ``[N]``.

    NaN when there is no positive (the metric is undefined, and averaging skips it).
    """
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(bool)
    positives = int(labels.sum())
    if positives == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    hits = labels[order]
    precision_at_hit = np.cumsum(hits)[hits] / (np.flatnonzero(hits) + 1)
    return float(precision_at_hit.sum() / positives)


def contact_iou(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> float:
    """IoU of ``scores >= threshold`` with the labelled points; NaN when both are empty."""
    predicted, labels = np.asarray(scores) >= threshold, np.asarray(labels).astype(bool)
    union = np.logical_or(predicted, labels).sum()
    if union == 0:
        return float("nan")
    return float(np.logical_and(predicted, labels).sum() / union)


def part_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """1.0 when the highest-scoring point is labelled, else 0.0."""
    return float(bool(np.asarray(labels)[int(np.argmax(scores))]))


def success_at_k(successes: np.ndarray, k: int) -> float:
    """1.0 when any of the first ``k`` grasps (best first) succeeds, else 0.0."""
    return float(np.asarray(successes[:k], dtype=bool).any())


def contact_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The three contact metrics of one prediction."""
    return {
        "contact_ap": average_precision(scores, labels),
        "contact_iou": contact_iou(scores, labels),
        "part_accuracy": part_accuracy(scores, labels),
    }


def grasp_metrics(successes: np.ndarray) -> dict[str, float]:
    """success@1 and success@5 of one prediction's ranked grasps."""
    return {"success_at_1": success_at_k(successes, 1), "success_at_5": success_at_k(successes, 5)}


def top_grasp_criteria(criteria: Mapping[str, np.ndarray]) -> dict[str, float]:
    """``top1_<name>``: 1.0 when the best-ranked grasp meets criterion ``name`` (per-grasp bool
    vectors, best first), 0.0 when not, NaN when there is no grasp (averaging skips it)."""
    return {
        f"top1_{name}": float(bool(met[0])) if len(met) else float("nan")
        for name, met in criteria.items()
    }


def mean_metrics(rows: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Per-key mean over predictions, skipping NaN (undefined) entries; adds the count."""
    rows = list(rows)
    keys = sorted({key for row in rows for key in row})
    means = {key: float(np.nanmean([row.get(key, np.nan) for row in rows])) for key in keys}
    return {**means, "count": float(len(rows))}


def bootstrap_interval(
    values: np.ndarray, level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-scene ``values`` [S] (scenes resampled
    with replacement, a fixed seed so a rerun reports the same interval)."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (resamples, len(values)))].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def bootstrap_intervals(rows: Iterable[Mapping[str, float]]) -> dict[str, list[float]]:
    """Per key of per-scene ``rows``, :func:`bootstrap_interval` of its mean over the scenes
    where it is defined (NaN entries skipped, as :func:`mean_metrics` does)."""
    rows = list(rows)
    keys = sorted({key for row in rows for key in row})
    out = {}
    for key in keys:
        values = np.array([row.get(key, np.nan) for row in rows], dtype=np.float64)
        out[key] = list(bootstrap_interval(values[~np.isnan(values)]))
    return out
