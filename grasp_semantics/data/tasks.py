"""Tasks, the part each task grasps, instruction templates and referring expressions.

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

Every template has a stable paraphrase id ``"<task>/<index>"`` used by the held-out-paraphrase
split; never reorder, only append. A template without the task's ``TASK_KEYWORDS`` is indirect:
the task must be inferred from the situation ("it's too dark in here, get {obj}").
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
        "I have a job for {obj}",
        "put {obj} to work",
        "get to work with {obj}",
        "pick up {obj}, there is work to do",
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
        "trim the string with {obj}",
        "the tape needs snipping, grab {obj}",
        "chop this in half with {obj}",
        "cut the cord with {obj}",
    ),
    "hammer": (
        "hammer a nail with {obj}",
        "use {obj} to hammer",
        "pick up {obj} to drive in a nail",
        "grab {obj} and start hammering",
        "hold {obj} for hammering",
        "get ready to hammer with {obj}",
        "pound the nail flat with {obj}",
        "knock this nail in with {obj}",
        "bang the peg into the ground with {obj}",
        "hammer in the tack with {obj}",
        "hammer the board down with {obj}",
        "start hammering, pick up {obj}",
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
        "the tea is ready, {obj} please",
        "tilt {obj} over the glass",
        "pour a glass from {obj}",
        "pour it out of {obj} slowly",
    ),
    "stir": (
        "stir the soup with {obj}",
        "use {obj} to stir",
        "grab {obj} for stirring",
        "stir with {obj}",
        "mix the batter with {obj}",
        "pick up {obj} and stir the pot",
        "stir the sauce with {obj}",
        "give the soup a good mix with {obj}",
        "swirl the stew around with {obj}",
        "keep the risotto from sticking, take {obj}",
        "stir the porridge using {obj}",
        "stir it well with {obj}",
    ),
    "scrape": (
        "scrape with {obj}",
        "use {obj} to scrape the pan clean",
        "grab {obj} to scrape off the paint",
        "scrape the surface using {obj}",
        "pick up {obj} for scraping",
        "hold {obj} to scrape",
        "get the burnt bits off the tray with {obj}",
        "lift the old sticker off with {obj}",
        "the paint is flaking, get it off with {obj}",
        "scrape the ice off the window using {obj}",
        "scrape the crumbs together with {obj}",
        "scrape the mud off with {obj}",
    ),
    "drink": (
        "drink from {obj}",
        "I want to drink from {obj}",
        "pick up {obj} to take a sip",
        "grab {obj}, I'm thirsty",
        "lift {obj} to drink",
        "hold {obj} so I can drink",
        "I'm thirsty, bring {obj} over",
        "I'm parched, lift {obj} to my mouth",
        "drink out of {obj}",
        "have a drink from {obj}",
        "take a sip from {obj}",
        "drink it straight from {obj}",
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
        "I need {obj} over here",
        "can I have {obj}?",
        "let me have {obj}",
        "hand {obj} to the person next to you",
    ),
    "open": (
        "open {obj}",
        "unscrew the cap of {obj}",
        "take the lid off {obj}",
        "twist open {obj}",
        "remove the cap from {obj}",
        "can you open {obj}?",
        "open up {obj}",
        "get {obj} open",
        "I'd like to look inside {obj}, undo it",
        "undo the top of {obj}",
        "open {obj} for me",
        "loosen the top of {obj}",
    ),
    "screw": (
        "tighten the screw with {obj}",
        "use {obj} to drive a screw",
        "screw something in with {obj}",
        "pick up {obj} to loosen a screw",
        "grab {obj} and turn the screw",
        "hold {obj} to screw",
        "drive this in with {obj}",
        "put the shelf together with {obj}",
        "fix the wobbly hinge with {obj}",
        "screw the plate onto the wall with {obj}",
        "drive the screw home with {obj}",
        "screw it in with {obj}",
    ),
    "paint": (
        "paint with {obj}",
        "use {obj} to paint the wall",
        "pick up {obj} for painting",
        "grab {obj} and paint",
        "hold {obj} to brush on some paint",
        "dust the shelf with {obj}",
        "the fence needs a new coat, grab {obj}",
        "put some colour on the wall with {obj}",
        "do the window frame in blue with {obj}",
        "paint the door with {obj}",
        "paint the picture using {obj}",
        "varnish the table with {obj}",
    ),
    "flip": (
        "flip the pancake with {obj}",
        "use {obj} to flip the egg",
        "pick up {obj} to turn the food over",
        "grab {obj} for flipping",
        "flip with {obj}",
        "toss the omelette with {obj}",
        "turn the burger over with {obj}",
        "the pancake is brown underneath, grab {obj}",
        "flip the fish with {obj}",
        "flip the steak using {obj}",
        "get {obj} and flip the toast",
        "the egg needs turning, take {obj}",
    ),
    "cook": (
        "cook with {obj}",
        "fry an egg in {obj}",
        "pick up {obj} to cook",
        "grab {obj} and put it on the stove",
        "use {obj} to fry",
        "move {obj} onto the hob",
        "cook dinner with {obj}",
        "cook the rice in {obj}",
        "make some soup in {obj}",
        "put {obj} over the fire",
        "cook something in {obj}",
        "heat the oil in {obj}",
    ),
    "fill": (
        "fill {obj}",
        "fill {obj} with water",
        "fill up {obj}",
        "pick up {obj} and fill it",
        "hold {obj} so I can fill it",
        "fill {obj} to the top",
        "refill {obj}",
        "grab {obj} to fill it at the tap",
        "top up {obj}",
        "hold {obj} under the tap until it is full",
        "put some water into {obj}",
        "{obj} has run out, get more in it",
    ),
    "close": (
        "close {obj}",
        "close the lid of {obj}",
        "shut {obj}",
        "can you close {obj}?",
        "close {obj} again",
        "close up {obj}",
        "shut {obj} properly",
        "put the lid back on {obj}",
        "put the top back on {obj}",
        "cover {obj} up again",
        "seal {obj} so nothing spills",
        "close {obj} to keep it fresh",
    ),
    "spray": (
        "spray with {obj}",
        "spray the plants with {obj}",
        "use {obj} to spray the window",
        "squeeze {obj} to spray",
        "spray some water with {obj}",
        "pick up {obj} and spray",
        "spray the table with {obj}",
        "aim {obj} and spray",
        "mist the leaves with {obj}",
        "squirt some water on the window with {obj}",
        "pull the trigger of {obj}",
        "give the ferns a fine mist with {obj}",
    ),
    "water": (
        "water the plants with {obj}",
        "use {obj} to water the flowers",
        "water the garden with {obj}",
        "pick up {obj} and water the plants",
        "water the herbs using {obj}",
        "water the seedlings with {obj}",
        "give the flowers some water from {obj}",
        "grab {obj} and water the roses",
        "the plants look dry, take {obj}",
        "the flowers are wilting, get {obj}",
        "the soil is parched, take {obj} to the plants",
        "the ferns need a drop, grab {obj}",
    ),
    "serve": (
        "serve with {obj}",
        "serve the soup with {obj}",
        "use {obj} to serve",
        "serve dinner with {obj}",
        "serve the guests with {obj}",
        "pick up {obj} and serve",
        "grab {obj} to serve",
        "serve everyone using {obj}",
        "dish up with {obj}",
        "dinner is ready, take {obj} to the table",
        "the guests are waiting, get {obj}",
        "help everyone to some with {obj}",
    ),
    "grip": (
        "grip with {obj}",
        "grip the nut with {obj}",
        "use {obj} to grip it",
        "get a grip on it with {obj}",
        "grip the small part with {obj}",
        "pick up {obj} and grip",
        "grab {obj} to grip something",
        "grip the piece using {obj}",
        "clamp the wire with {obj}",
        "pinch the tiny piece with {obj}",
        "pick up the hot coal with {obj}",
        "hold the small bit firmly with {obj}",
    ),
    "tighten": (
        "tighten {obj}",
        "tighten it with {obj}",
        "use {obj} to tighten",
        "tighten it up with {obj}",
        "pick up {obj} and tighten",
        "grab {obj} and tighten it",
        "tighten everything up with {obj}",
        "make it tight with {obj}",
        "something has come loose, grab {obj}",
        "turn {obj} until everything is snug",
        "give {obj} a few firm turns so nothing rattles",
        "it wobbles, give {obj} a firm twist",
    ),
    "light": (
        "light the way with {obj}",
        "use {obj} to light the room",
        "give me some light with {obj}",
        "pick up {obj} for light",
        "light up the cupboard with {obj}",
        "grab {obj} and light the path",
        "light the stairs with {obj}",
        "it's too dark in here, get {obj}",
        "I can't see under the bed, take {obj}",
        "the power is out, grab {obj}",
        "shine {obj} into the corner",
        "point {obj} at the dark corner",
    ),
    "brush teeth": (
        "brush my teeth with {obj}",
        "brush your teeth with {obj}",
        "use {obj} to brush teeth",
        "pick up {obj} to brush teeth",
        "grab {obj}, time to brush",
        "hold {obj} to brush the teeth",
        "brush the back teeth with {obj}",
        "brush before bed with {obj}",
        "I just had garlic, freshen my breath with {obj}",
        "my breath smells, get {obj}",
        "time for dental care, take {obj}",
        "polish my molars with {obj}",
    ),
    "dry hair": (
        "dry my hair with {obj}",
        "dry your hair with {obj}",
        "use {obj} to dry hair",
        "pick up {obj} to dry my hair",
        "grab {obj} and dry the hair",
        "hold {obj} to dry the wet hair",
        "blow-dry my hair with {obj}",
        "dry the hair quickly using {obj}",
        "my hair is still wet, {obj} please",
        "I just got out of the shower, get {obj}",
        "style my hair with {obj}",
        "blow out my curls with {obj}",
    ),
    "clean": (
        "clean {obj}",
        "wash {obj}",
        "clean {obj} in the sink",
        "wash up {obj}",
        "pick up {obj} and clean it",
        "clean {obj} thoroughly",
        "grab {obj} to wash it",
        "clean {obj} with a cloth",
        "{obj} is dirty, scrub it",
        "wipe {obj} down",
        "get the grime off {obj}",
        "give {obj} a good scrub",
    ),
    "hang up": (
        "hang up {obj}",
        "hang {obj} on the hook",
        "hang {obj} on the wall",
        "pick up {obj} and hang it",
        "hang {obj} up on the rack",
        "hang {obj} back up",
        "can you hang up {obj}?",
        "grab {obj} to hang it",
        "put {obj} back on its hook",
        "{obj} goes on the rack on the wall",
        "return {obj} to the pegboard",
        "put {obj} on the wall hook",
    ),
    "put away": (
        "put away {obj}",
        "put {obj} away",
        "put {obj} away in the cupboard",
        "pick up {obj} and put it away",
        "can you put {obj} away?",
        "put {obj} away in the drawer",
        "tidy {obj} away",
        "clear {obj} away",
        "store {obj} in the cupboard",
        "{obj} goes back in the drawer",
        "tidy up {obj}",
        "we're done with {obj}, return it to the shelf",
    ),
}
PARAPHRASE_IDS: tuple[str, ...] = tuple(
    f"{t}/{i:02d}" for t, ts in TEMPLATES.items() for i in range(len(ts))
)

# The words that name each task outright (matched as substrings, so "refill" has "fill"); a
# template with none of them is INDIRECT: the task must be inferred ("the plants look dry").
TASK_KEYWORDS: dict[str, tuple[str, ...]] = {
    "use": ("use", "using"),
    "cut": ("cut",),
    "hammer": ("hammer",),
    "pour": ("pour",),
    "stir": ("stir",),
    "scrape": ("scrap",),
    "drink": ("drink", "drank"),
    "hand over": ("hand", "give", "pass"),
    "open": ("open",),
    "screw": ("screw",),
    "paint": ("paint",),
    "flip": ("flip",),
    "cook": ("cook",),
    "fill": ("fill",),
    "close": ("close", "shut"),
    "spray": ("spray",),
    "water": ("water",),
    "serve": ("serv",),
    "grip": ("grip",),
    "tighten": ("tight",),
    "light": ("light",),
    "brush teeth": ("brush", "teeth", "tooth"),
    "dry hair": ("dry", "dried"),
    "clean": ("clean", "wash"),
    "hang up": ("hang", "hung"),
    "put away": ("away",),
}


def names_task(task: str, text: str) -> bool:
    """Whether ``text`` says ``task`` outright (holds one of its ``TASK_KEYWORDS``)."""
    low = text.lower()
    return any(k in low for k in TASK_KEYWORDS[task])


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


def task_part(task: str, category: str) -> int:
    """Part index (in ``CATEGORY_PARTS[category]``) that ``task`` grasps on ``category``."""
    return CATEGORY_PARTS[category].index(TASK_PARTS[task][category])


def template(paraphrase_id: str) -> str:
    task, i = paraphrase_id.rsplit("/", 1)
    return TEMPLATES[task][int(i)]


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


def instruction(paraphrase_id: str, reference: str) -> str:
    text = template(paraphrase_id).format(obj=reference)
    return text[0].upper() + text[1:]
