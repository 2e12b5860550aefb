"""Tasks and the part each task grasps on each category (the task-category table).

Rules of thumb behind ``TASK_PARTS``:

- a task that USES the object (use, cut, hammer, pour, stir, scrape, drink, screw, paint,
  flip, cook, fill, water, serve, grip, light, brush teeth, dry hair, tighten with a tool)
  grasps the part a person holds to use it: the handle(s), the tongs' arms, a goblet's stem,
  a cup's sleeve, the body of a bottle or jar, a flashlight's barrel, a wrench's shaft;
  *spray* (and *water* with a sprayer) grasps the trigger the finger works;
- *open*, *close* and *tighten* on a container grasp what turns: the cap or lid (a
  flashlight's tail, a sprayer's nozzle);
- *hand over* grasps the other end, so that the handle stays free for the receiver;
- *clean* holds a part that leaves the dirty one free to wash (a toothbrush's neck, a
  goblet's base, the pliers' joint), often not the handle;
- *hang up* grasps the end away from the handle or loop, so that the handle can go onto the
  hook (a pan's body, a ladle's bowl, a hammer's head);
- *put away* grasps a sturdy middle to carry it (body, barrel, ring, joint, neck), or a knife
  or screwdriver by its blade or shaft so that the handle goes first into the drawer.

The wordings of each task are in ``wordings.py``, the phrases naming the target in
``references.py``.
"""

from __future__ import annotations

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


def task_part(task: str, category: str) -> int:
    """Part index (in ``CATEGORY_PARTS[category]``) that ``task`` grasps on ``category``."""
    return CATEGORY_PARTS[category].index(TASK_PARTS[task][category])
