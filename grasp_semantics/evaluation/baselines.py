"""Baselines that are given the right object and choose only its part, for ``evaluate``.

They measure how much of the model's part choice a rule needs no network for:

- *category default*: the part the training split's task table grasps most often on the
  object's category (ties: the lower part index), whatever the instruction says;
- *keyword rule*: a bag-of-words task classifier (multinomial naive Bayes, add-one smoothing)
  fitted on the training split's instruction templates only, whose task probabilities are
  summed per part over the tasks the training table allows on the object's category.

Each gives a part of the target object; :func:`part_contact` turns it into a contact field on
the points the model sees, which the model's own part planner turns into grasps (``evaluate``),
so their success@k compares with the model's.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from grasp_semantics.data.objects import CATEGORY_PARTS
from grasp_semantics.data.splits import SplitPools, category_default_parts, split_pools
from grasp_semantics.data.tasks import TASK_PARTS
from grasp_semantics.data.wordings import template

# contact at the part's farthest point from its centre (1 at the nearest): the whole part stays
# above the planner's region fraction (0.5) and the part is grown from its middle
PART_EDGE_CONTACT = 0.75


def words(text: str) -> list[str]:
    """Lower-case word tokens of ``text`` (letters and apostrophes)."""
    return re.findall(r"[a-z']+", text.lower())


class NaiveBayes:
    """Multinomial naive Bayes over word counts with add-``alpha`` smoothing; words never seen
    in training are ignored."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha
        self.classes: list[str] = []
        self.vocabulary: dict[str, int] = {}
        self.log_prior = np.zeros(0)
        self.log_likelihood = np.zeros((0, 0))  # [classes, vocabulary]

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> NaiveBayes:
        """Fit on ``texts`` with their class ``labels``; returns self."""
        if not texts or len(texts) != len(labels):
            raise ValueError("texts and labels must be non-empty and equally long")
        self.classes = sorted(set(labels))
        tokens = [words(t) for t in texts]
        self.vocabulary = {w: i for i, w in enumerate(sorted({w for ws in tokens for w in ws}))}
        counts = np.zeros((len(self.classes), len(self.vocabulary)))
        for ws, label in zip(tokens, labels, strict=True):
            row = self.classes.index(label)
            for w in ws:
                counts[row, self.vocabulary[w]] += 1
        prior = np.array([labels.count(c) for c in self.classes], dtype=np.float64)
        self.log_prior = np.log(prior / prior.sum())
        smoothed = counts + self.alpha
        self.log_likelihood = np.log(smoothed / smoothed.sum(axis=1, keepdims=True))
        return self

    def probabilities(self, text: str) -> dict[str, float]:
        """P(class | words of ``text``) for every class."""
        known = [self.vocabulary[w] for w in words(text) if w in self.vocabulary]
        log_post = self.log_prior + self.log_likelihood[:, known].sum(axis=1)
        post = np.exp(log_post - log_post.max())
        return dict(zip(self.classes, (post / post.sum()).tolist(), strict=True))


def training_table(pools: SplitPools | None = None) -> dict[str, dict[str, str]]:
    """category -> task -> part name, from the (task, category) pairs of ``pools`` (default:
    the training split's)."""
    pools = pools or split_pools("train")
    table: dict[str, dict[str, str]] = {}
    for task, category in pools.pairs:
        table.setdefault(category, {})[task] = TASK_PARTS[task][category]
    return table


def category_defaults(pools: SplitPools | None = None) -> dict[str, int]:
    """category -> the part index its training tasks grasp most often (ties: lower index)."""
    pools = pools or split_pools("train")
    return {
        category: CATEGORY_PARTS[category].index(part)
        for category, part in category_default_parts(pools.pairs).items()
    }


class KeywordRule:
    """The part a bag-of-words reading of the instruction picks on a given category."""

    def __init__(self, pools: SplitPools | None = None) -> None:
        pools = pools or split_pools("train")
        texts, labels = [], []
        for task, ids in pools.paraphrases.items():
            for paraphrase_id in ids:
                texts.append(template(paraphrase_id).replace("{obj}", " "))
                labels.append(task)
        self.classifier = NaiveBayes().fit(texts, labels)
        self.table = training_table(pools)
        self.defaults = category_defaults(pools)

    def part(self, instruction: str, category: str, reference: str = "") -> int:
        """Part index on ``category`` for ``instruction``, the object's ``reference`` ("the red
        mug") taken out first: the part whose training tasks on the category are the most
        probable in total (the category default when the table has none)."""
        if reference:
            instruction = re.sub(re.escape(reference), " ", instruction, flags=re.IGNORECASE)
        tasks = self.table.get(category, {})
        if not tasks:
            return self.defaults.get(category, 0)
        probability = self.classifier.probabilities(instruction)
        total: Counter[int] = Counter()
        for task, part in tasks.items():
            total[CATEGORY_PARTS[category].index(part)] += probability.get(task, 0.0)
        return min(total, key=lambda part: (-total[part], part))


def part_contact(
    point_object: np.ndarray, point_part: np.ndarray, points: np.ndarray, target: int, part: int
) -> np.ndarray:
    """Contact [M] float32 on ``points`` [M, 3] (``point_object`` / ``point_part`` [M] their
    labels): 0 off part ``part`` of object ``target``, on it from 1 at the point nearest the
    part's centre down to ``PART_EDGE_CONTACT`` at the farthest. All 0 when no point is on it."""
    contact = np.zeros(len(points), dtype=np.float32)
    on = (point_object == target) & (point_part == part)
    if not on.any():
        return contact
    distance = np.linalg.norm(points[on] - points[on].mean(axis=0), axis=1)
    scale = max(float(distance.max() - distance.min()), 1e-9)
    contact[on] = 1.0 - (1.0 - PART_EDGE_CONTACT) * (distance - distance.min()) / scale
    return contact
