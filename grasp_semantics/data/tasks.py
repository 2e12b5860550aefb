"""Tasks, the part each task grasps, instruction templates and referring expressions.

Rule of thumb behind ``TASK_PARTS``: a task that USES the tool grasps its handle (the part a
person holds to use it); *hand over* grasps the other part so that the handle stays free for
the receiver; *open* grasps the cap. Every template has a stable paraphrase id
``"<task>/<index>"`` used by the held-out-paraphrase split; never reorder, only append.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from grasp_semantics.data.objects import CATEGORY_PARTS

# task -> category -> name of the part to grasp (the task-category validity table)
TASK_PARTS: dict[str, dict[str, str]] = {
    "use": {
        "knife": "handle",
        "hammer": "handle",
        "spatula": "handle",
        "screwdriver": "handle",
        "scissors": "handles",
        "brush": "handle",
        "pan": "handle",
        "pliers": "handles",
        "tongs": "arms",
        "hairdryer": "handle",
        "flashlight": "barrel",
        "wrench": "shaft",
    },
    "cut": {"knife": "handle", "scissors": "handles", "pliers": "handles"},
    "hammer": {"hammer": "handle", "wrench": "shaft"},
    "pour": {
        "mug": "handle",
        "cup": "sleeve",
        "bottle": "body",
        "pan": "handle",
        "kettle": "handle",
        "teapot": "handle",
        "jug": "handle",
        "saucepan": "handle",
        "goblet": "stem",
        "ladle": "handle",
    },
    "stir": {"spatula": "handle", "ladle": "handle"},
    "scrape": {"spatula": "handle", "knife": "handle", "screwdriver": "handle"},
    "drink": {"mug": "handle", "cup": "sleeve", "bottle": "body", "goblet": "stem"},
    "hand over": {
        "mug": "body",
        "cup": "body",
        "knife": "blade",
        "hammer": "head",
        "spatula": "blade",
        "screwdriver": "shaft",
        "bottle": "body",
        "pan": "body",
        "scissors": "blades",
        "brush": "bristles",
        "kettle": "body",
        "teapot": "body",
        "jug": "body",
        "saucepan": "body",
        "goblet": "bowl",
        "flashlight": "head",
        "wrench": "jaw",
        "pliers": "jaws",
        "tongs": "tips",
        "toothbrush": "head",
        "sprayer": "body",
        "hairdryer": "nozzle",
        "ladle": "bowl",
        "jar": "body",
    },
    "open": {
        "bottle": "cap",
        "kettle": "lid",
        "teapot": "lid",
        "saucepan": "lid",
        "jar": "lid",
        "flashlight": "tail",
        "sprayer": "nozzle",
    },
    "screw": {"screwdriver": "handle"},
    "paint": {"brush": "handle"},
    "flip": {"spatula": "handle", "pan": "handle", "tongs": "arms"},
    "cook": {"pan": "handle", "saucepan": "handle"},
    "fill": {
        "kettle": "handle",
        "jug": "handle",
        "saucepan": "handle",
        "mug": "handle",
        "bottle": "body",
        "jar": "body",
        "sprayer": "body",
        "goblet": "stem",
    },
    "close": {"bottle": "cap", "kettle": "lid", "teapot": "lid", "saucepan": "lid", "jar": "lid"},
    "spray": {"sprayer": "trigger"},
    "water": {"sprayer": "trigger", "jug": "handle", "kettle": "handle", "bottle": "body"},
    "serve": {
        "ladle": "handle",
        "teapot": "handle",
        "tongs": "arms",
        "spatula": "handle",
        "saucepan": "handle",
        "jug": "handle",
    },
    "grip": {"pliers": "handles", "tongs": "arms"},
    "tighten": {
        "wrench": "shaft",
        "pliers": "handles",
        "screwdriver": "handle",
        "jar": "lid",
        "bottle": "cap",
        "flashlight": "tail",
    },
    "light": {"flashlight": "barrel"},
    "brush teeth": {"toothbrush": "handle"},
    "dry hair": {"hairdryer": "handle"},
    "clean": {
        "knife": "handle",
        "brush": "handle",
        "toothbrush": "neck",
        "goblet": "base",
        "kettle": "body",
        "teapot": "body",
        "hairdryer": "body",
        "wrench": "ring",
        "spatula": "handle",
        "ladle": "handle",
        "pliers": "joint",
        "tongs": "hinge",
        "sprayer": "nozzle",
        "mug": "body",
        "jug": "body",
    },
    "hang up": {
        "mug": "body",
        "pan": "body",
        "saucepan": "body",
        "ladle": "bowl",
        "spatula": "blade",
        "wrench": "jaw",
        "tongs": "tips",
        "hammer": "head",
        "scissors": "blades",
        "brush": "bristles",
        "hairdryer": "nozzle",
        "goblet": "base",
        "toothbrush": "head",
    },
    "put away": {
        "kettle": "body",
        "teapot": "body",
        "jug": "body",
        "goblet": "bowl",
        "sprayer": "body",
        "flashlight": "barrel",
        "jar": "body",
        "cup": "body",
        "bottle": "body",
        "knife": "blade",
        "screwdriver": "shaft",
        "wrench": "ring",
        "pliers": "joint",
        "toothbrush": "neck",
        "hairdryer": "body",
    },
}
TASKS: tuple[str, ...] = tuple(TASK_PARTS)
PAIRS: tuple[tuple[str, str], ...] = tuple((t, c) for t, cs in TASK_PARTS.items() for c in cs)

# {obj} is a referring expression with its article ("the red mug on the left").
TEMPLATES: dict[str, tuple[str, ...]] = {
    "use": (
        "use {obj}",
        "I want to use {obj}",
        "pick up {obj} to use it",
        "grab {obj} so I can use it",
        "get {obj} ready for use",
        "take {obj} and use it",
        "hold {obj} the way you would to use it",
        "can you use {obj}?",
    ),
    "cut": (
        "cut with {obj}",
        "use {obj} to cut something",
        "grab {obj} for cutting",
        "I need to cut this, pick up {obj}",
        "slice the bread with {obj}",
        "hold {obj} so you can cut",
        "pick up {obj} and cut the paper",
        "get {obj}, we are cutting",
    ),
    "hammer": (
        "hammer a nail with {obj}",
        "use {obj} to hammer",
        "pick up {obj} to drive in a nail",
        "grab {obj} and start hammering",
        "hold {obj} for hammering",
        "get ready to hammer with {obj}",
    ),
    "pour": (
        "pour from {obj}",
        "I need to pour from {obj}",
        "pick up {obj} to pour",
        "grab {obj} and pour it out",
        "empty {obj} into the sink",
        "tip {obj} over the bowl",
        "use {obj} to pour some water",
        "pour the contents of {obj}",
    ),
    "stir": (
        "stir the soup with {obj}",
        "use {obj} to stir",
        "grab {obj} for stirring",
        "stir with {obj}",
        "mix the batter with {obj}",
        "pick up {obj} and stir the pot",
    ),
    "scrape": (
        "scrape with {obj}",
        "use {obj} to scrape the pan clean",
        "grab {obj} to scrape off the paint",
        "scrape the surface using {obj}",
        "pick up {obj} for scraping",
        "hold {obj} to scrape",
    ),
    "drink": (
        "drink from {obj}",
        "I want to drink from {obj}",
        "pick up {obj} to take a sip",
        "grab {obj}, I'm thirsty",
        "lift {obj} to drink",
        "hold {obj} so I can drink",
    ),
    "hand over": (
        "hand me {obj}",
        "give me {obj}",
        "pass me {obj}",
        "hand {obj} over to me",
        "could you pass {obj}?",
        "bring me {obj}",
        "please give {obj} to me",
        "hand over {obj}",
    ),
    "open": (
        "open {obj}",
        "unscrew the cap of {obj}",
        "take the lid off {obj}",
        "twist open {obj}",
        "remove the cap from {obj}",
        "can you open {obj}?",
    ),
    "screw": (
        "tighten the screw with {obj}",
        "use {obj} to drive a screw",
        "screw something in with {obj}",
        "pick up {obj} to loosen a screw",
        "grab {obj} and turn the screw",
        "hold {obj} to screw",
    ),
    "paint": (
        "paint with {obj}",
        "use {obj} to paint the wall",
        "pick up {obj} for painting",
        "grab {obj} and paint",
        "hold {obj} to brush on some paint",
        "dust the shelf with {obj}",
    ),
    "flip": (
        "flip the pancake with {obj}",
        "use {obj} to flip the egg",
        "pick up {obj} to turn the food over",
        "grab {obj} for flipping",
        "flip with {obj}",
        "toss the omelette with {obj}",
    ),
    "cook": (
        "cook with {obj}",
        "fry an egg in {obj}",
        "pick up {obj} to cook",
        "grab {obj} and put it on the stove",
        "use {obj} to fry",
        "move {obj} onto the hob",
    ),
}
PARAPHRASE_IDS: tuple[str, ...] = tuple(
    f"{t}/{i:02d}" for t, ts in TEMPLATES.items() for i in range(len(ts))
)

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
}

POSITION_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("the {n} on the left", "the leftmost {n}", "the {n} to the left"),
    "right": ("the {n} on the right", "the rightmost {n}", "the {n} to the right"),
    "near": ("the nearest {n}", "the {n} closest to you", "the {n} in front"),
    "far": ("the farthest {n}", "the {n} at the back", "the {n} furthest away"),
}


def task_part(task: str, category: str) -> int:
    """Part index (in ``CATEGORY_PARTS[category]``) that ``task`` grasps on ``category``."""
    return CATEGORY_PARTS[category].index(TASK_PARTS[task][category])


def template(paraphrase_id: str) -> str:
    task, i = paraphrase_id.rsplit("/", 1)
    return TEMPLATES[task][int(i)]


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


def refer(
    categories: Sequence[str],
    colours: Sequence[str],
    u: np.ndarray,
    distance: np.ndarray,
    target: int,
    rng: np.random.Generator,
    nouns: Mapping[str, Sequence[str]] = NOUNS,
) -> str | None:
    """A referring expression ("the red mug", "the knife on the left") that singles out
    ``target`` among the objects (image column ``u`` [K], camera distance ``distance`` [K],
    a category called by one of its ``nouns``), or None when none of these forms is
    unambiguous."""
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
    if not options:
        return None
    return options[rng.integers(len(options))]


def instruction(paraphrase_id: str, reference: str) -> str:
    text = template(paraphrase_id).format(obj=reference)
    return text[0].upper() + text[1:]
