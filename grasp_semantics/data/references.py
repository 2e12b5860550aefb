"""Referring expressions: how an instruction names its target among the objects on the table
(category or synonym, colour, image side, depth, size, relation to another object)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

NOUNS: dict[str, tuple[str, ...]] = {
    "mug": ("mug", "coffee mug"),
    "cup": ("cup", "paper cup"),
    "knife": ("knife", "kitchen knife"),
    "hammer": ("hammer",),
    "spatula": ("spatula", "turner"),
    "screwdriver": ("screwdriver",),
    "bottle": ("bottle",),
    "pan": ("pan", "frying pan", "skillet"),
    "scissors": ("scissors", "pair of scissors"),
    "brush": ("brush", "paintbrush"),
    "kettle": ("kettle",),
    "teapot": ("teapot",),
    "jug": ("jug", "pitcher"),
    "saucepan": ("saucepan", "pot", "cooking pot"),
    "goblet": ("wine glass", "goblet"),
    "flashlight": ("flashlight", "torch"),
    "wrench": ("wrench", "spanner"),
    "pliers": ("pliers", "pair of pliers"),
    "tongs": ("tongs", "pair of tongs", "kitchen tongs"),
    "toothbrush": ("toothbrush",),
    "sprayer": ("spray bottle", "sprayer", "plant mister"),
    "hairdryer": ("hair dryer", "hairdryer", "blow dryer"),
    "ladle": ("ladle", "soup ladle"),
    "jar": ("jar", "jam jar"),
}

POSITION_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("the {n} on the left", "the leftmost {n}", "the {n} to the left"),
    "right": ("the {n} on the right", "the rightmost {n}", "the {n} to the right"),
    "near": ("the nearest {n}", "the {n} closest to you", "the {n} in front"),
    "far": ("the farthest {n}", "the {n} at the back", "the {n} furthest away"),
}


# Sizes and relations are said only when the difference is clear: the target is at least
# SIZE_RATIO times larger (smaller) than every rival, or RELATION_RATIO times nearer the anchor.
SIZE_RATIO = 1.2
RELATION_RATIO = 1.5
NEXT_TO = 0.2  # m between centres, the most "next to" / "beside" may span
# Categories that stand upright, so that "tall" / "short" say their height.
UPRIGHT = frozenset(
    {"mug", "cup", "bottle", "kettle", "teapot", "jug", "goblet", "jar", "sprayer"}
)
SIZE_PHRASES: dict[str, tuple[str, ...]] = {
    "big": ("the big {n}", "the large {n}", "the bigger {n}", "the larger {n}", "the largest {n}"),
    "small": ("the small {n}", "the little {n}", "the smaller {n}", "the smallest {n}"),
    "tall": ("the tall {n}", "the taller {n}", "the tallest {n}"),
    "short": ("the short {n}", "the shorter {n}", "the shortest {n}"),
}
RELATION_PHRASES: dict[str, tuple[str, ...]] = {
    "next": ("the {n} next to {a}", "the {n} beside {a}"),
    "closest": ("the {n} closest to {a}", "the {n} nearest to {a}"),
}


def _unique_position(values: np.ndarray, target: int, gap: float) -> str | None:
    """'low' / 'high' if ``values[target]`` is the extreme by at least ``gap``."""
    others = np.delete(values, target)
    if len(others) == 0:
        return None
    if values[target] < others.min() - gap:
        return "low"
    if values[target] > others.max() + gap:
        return "high"
    return None


def _unique_ratio(values: np.ndarray, target: int, ratio: float) -> str | None:
    """'low' / 'high' if ``values[target]`` is ``ratio`` times below / above every other."""
    others = np.delete(values, target)
    if len(others) == 0:
        return None
    if values[target] * ratio <= others.min():
        return "low"
    if values[target] >= others.max() * ratio:
        return "high"
    return None


def _size_words(phrases: tuple[str, ...], count: int) -> list[str]:
    """Comparatives ("the larger") for two of a kind, superlatives ("the largest") for more."""
    drop = "est " if count == 2 else "er "
    return [p for p in phrases if drop not in p]


def _anchor_name(
    categories, colours, anchor: int, rng: np.random.Generator, nouns: Mapping = NOUNS
) -> str | None:
    """A name that singles out object ``anchor`` by its category alone or with its colour."""
    cat = categories[anchor]
    noun = nouns[cat][rng.integers(len(nouns[cat]))]
    same = [i for i, c in enumerate(categories) if c == cat]
    if len(same) == 1:
        return f"the {noun}"
    if sum(colours[i] == colours[anchor] for i in same) == 1:
        return f"the {colours[anchor]} {noun}"
    return None


def refer(
    categories: Sequence[str],
    colours: Sequence[str],
    u: np.ndarray,
    distance: np.ndarray,
    target: int,
    rng: np.random.Generator,
    *,
    sizes: np.ndarray,
    heights: np.ndarray,
    centres: np.ndarray,
    nouns: Mapping[str, Sequence[str]] = NOUNS,
) -> str | None:
    """A referring expression that singles out ``target`` among the objects: by colour ("the
    red mug"), image side or depth ("the knife on the left", image column ``u`` [K], camera
    distance ``distance`` [K]), size ("the larger jar", largest dimension ``sizes`` [K], height
    ``heights`` [K]) or relation to another uniquely named object ("the cup next to the
    kettle", object centres ``centres`` [K, 3] in metres), a category called by one of its
    ``nouns``. None when none of these forms is unambiguous."""
    cat = categories[target]
    noun = nouns[cat][rng.integers(len(nouns[cat]))]
    colour = colours[target]
    same = [i for i, c in enumerate(categories) if c == cat]
    if len(same) == 1:
        return f"the {colour} {noun}" if rng.random() < 0.3 else f"the {noun}"
    options: list[str] = []
    if sum(colours[i] == colour for i in same) == 1:
        options += [f"the {colour} {noun}"] * 2

    def positional(group: list[int], name: str) -> None:
        k = group.index(target)
        side = _unique_position(u[group], k, gap=30.0)
        if side is not None:
            key = "left" if side == "low" else "right"
            options.extend(p.format(n=name) for p in POSITION_PHRASES[key])
        depth = _unique_position(distance[group], k, gap=0.05)
        if depth is not None:
            key = "near" if depth == "low" else "far"
            options.extend(p.format(n=name) for p in POSITION_PHRASES[key])

    positional(same, noun)
    same_colour = [i for i in same if colours[i] == colour]
    if len(same_colour) > 1:
        positional(same_colour, f"{colour} {noun}")

    k = same.index(target)
    size = _unique_ratio(np.asarray(sizes, float)[same], k, SIZE_RATIO)
    if size is not None:
        phrases = SIZE_PHRASES["small" if size == "low" else "big"]
        options.extend(p.format(n=noun) for p in _size_words(phrases, len(same)))
    height = _unique_ratio(np.asarray(heights, float)[same], k, SIZE_RATIO)
    if cat in UPRIGHT and height is not None:
        phrases = SIZE_PHRASES["short" if height == "low" else "tall"]
        options.extend(p.format(n=noun) for p in _size_words(phrases, len(same)))

    centres = np.asarray(centres, float)
    rivals = [i for i in same if i != target]
    for anchor in range(len(categories)):
        if categories[anchor] == cat:
            continue
        gap = np.linalg.norm(centres[same] - centres[anchor], axis=1)
        if gap[k] * RELATION_RATIO > np.delete(gap, k).min() or not rivals:
            continue
        name = _anchor_name(categories, colours, anchor, rng, nouns)
        if name is None:
            continue
        keys = ("next", "closest") if gap[k] <= NEXT_TO else ("closest",)
        options.extend(p.format(n=noun, a=name) for key in keys for p in RELATION_PHRASES[key])
    if not options:
        return None
    return options[rng.integers(len(options))]
