"""Captions, questions and answers, and printed labels for the synthetic scenes.

The scene-description head (``models/scene_describer.py``) is trained on what a scene's labels say
about it: object categories and colours, counts, positions in the image, and, for OCR, a short
label text. The renderer has no textures, so a label is *printed in image space*: a white
sticker with the text (drawn with PIL) is pasted onto the pixels where a bottle's body, a cup's
sleeve or a mug's body is visible, clipped to that part's visible mask (occlusion respected,
no perspective wrap or shading). The font is the largest whose sticker the mask keeps at least
nine tenths of (a part seen at a slant or partly hidden takes a smaller one, or none), so the
answer can be read off the image. Label texts are a brand word and a digit; the training split
uses three quarters of the (word, digit) pairs and every other split the rest, so held-out
scenes carry combinations never seen in training.

Everything is deterministic from ``(seed, split)``, like the scenes themselves.
"""

from __future__ import annotations

import dataclasses
import json
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from grasp_semantics.data.objects import CATEGORIES, COLOUR_NAMES
from grasp_semantics.data.scene import Scene, generate_scene
from grasp_semantics.data.shards import write_shards

LABEL_WORDS: tuple[str, ...] = ("ACME", "NOVA", "ZEST", "KIWI", "LUMA", "ORCA", "MOKA", "VOLT")
LABEL_DIGITS: tuple[str, ...] = tuple("123456789")
LABEL_PARTS: dict[str, str] = {
    "bottle": "body",
    "cup": "sleeve",
    "mug": "body",
    "jar": "body",
    "sprayer": "body",
    "jug": "body",
}
NO_TEXT = "no text"
NUMBERS: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five")
PLURALS: dict[str, str] = {
    "knife": "knives",
    "brush": "brushes",
    "toothbrush": "toothbrushes",
    "wrench": "wrenches",
    "scissors": "pairs of scissors",
    "pliers": "pairs of pliers",
    "tongs": "pairs of tongs",
}
PAIR_NOUNS = ("scissors", "pliers", "tongs")  # "a pair of ..."
MIN_VISIBLE_PIXELS = 150  # an object with fewer visible pixels is not counted
MIN_LABEL_PIXELS = 400  # visible pixels a part needs to carry a label
MIN_FONT_PX = 11  # smaller text is not printed (unreadable at the model's input size)
LABEL_PROB = 0.7  # a scene with a label-bearing part gets a label this often
MIN_STICKER_VISIBLE = 0.9  # fraction of the sticker's rectangle the part's mask must keep
POSITION_GAP_PX = 30.0  # leftmost / rightmost must win by this many pixels
NO_BOX = (-1, -1, -1, -1)  # a shard's label box where the image carries no label


@dataclass(frozen=True)
class QA:
    """One training or evaluation item: a task, its prompt (VQA question) and the answer."""

    task: str  # caption | ocr | vqa
    prompt: str  # the question for vqa; empty for caption and ocr (their default prompts)
    answer: str


def label_texts(split: str) -> tuple[str, ...]:
    """Label texts a split may print: train holds 3/4 of the (word, digit) pairs, others the
    remaining quarter."""
    held_out = split != "train"
    return tuple(
        f"{word} {digit}"
        for w, word in enumerate(LABEL_WORDS)
        for d, digit in enumerate(LABEL_DIGITS)
        if ((w + d) % 4 == 0) == held_out
    )


def every_label_text() -> tuple[str, ...]:
    """Every (word, digit) label text, whichever split prints it."""
    return tuple(f"{word} {digit}" for word in LABEL_WORDS for digit in LABEL_DIGITS)


def plural(category: str) -> str:
    return PLURALS.get(category, category + "s")


def noun_phrase(colour: str, category: str) -> str:
    """ "a red mug", "an orange cup", "a pair of blue scissors"."""
    if category in PAIR_NOUNS:
        return f"a pair of {colour} {category}"
    article = "an" if colour[0] in "aeiou" else "a"
    return f"{article} {colour} {category}"


def join_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass
class _Seen:
    """A visible object: index, category, colour, visible pixels, mean image column."""

    index: int
    category: str
    colour: str
    pixels: int
    u: float


def _visible(scene: Scene) -> tuple[list[_Seen], bool]:
    """Visible objects left to right, and whether every object is clearly in or out of view."""
    seen, clear = [], True
    for i, obj in enumerate(scene.objects):
        cols = np.nonzero(scene.mask_object == i)[1]
        if len(cols) >= MIN_VISIBLE_PIXELS:
            seen.append(_Seen(i, obj.category, obj.colour, len(cols), float(cols.mean())))
        elif len(cols):
            clear = False
    return sorted(seen, key=lambda s: s.u), clear


def sticker_box(
    corners: tuple[float, float, float, float], shape: tuple[int, ...]
) -> tuple[slice, slice] | None:
    """Row and column slices of the pixels the rectangle ``(left, top, right, bottom)`` covers
    (PIL's inclusive corners) in an image of ``shape``; None when the rectangle is not entirely
    inside the image."""
    left, top, right, bottom = (round(v) for v in corners)
    if left < 0 or top < 0 or bottom >= shape[0] or right >= shape[1]:
        return None
    return slice(top, bottom + 1), slice(left, right + 1)


@dataclass(frozen=True)
class Sticker:
    """Where a printed label lies in its image: the sticker's rectangle and its word's and
    digit's boxes, each as (top, left, bottom, right) pixels, bottom and right exclusive."""

    box: tuple[int, int, int, int]
    glyphs: tuple[tuple[int, int, int, int], ...]


def _pixel_box(corners: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """The pixels (top, left, bottom, right; exclusive ends) PIL's inclusive float corners
    (left, top, right, bottom) may touch: PIL rounds them, so the box keeps a pixel's slack."""
    left, top, right, bottom = corners
    return math.floor(top), math.floor(left), math.ceil(bottom) + 1, math.ceil(right) + 1


def sticker_corners(
    draw: ImageDraw.ImageDraw, centre: tuple[float, float], text: str, font: ImageFont.ImageFont
) -> tuple[float, float, float, float]:
    """PIL corners (left, top, right, bottom) of the sticker ``text`` in ``font`` centred at
    ``centre`` (x, y) would take: the text's box with a margin of a fifth of the font size."""
    left, top, right, bottom = draw.textbbox(centre, text, font=font, anchor="mm")
    pad = max(2, font.size // 5)
    return left - pad, top - pad, right + pad, bottom + pad


def paste_sticker(
    draw: ImageDraw.ImageDraw,
    centre: tuple[float, float],
    text: str,
    font: ImageFont.ImageFont,
    rng: np.random.Generator,
) -> Sticker:
    """Draw a white-ish sticker with dark ``text`` (a word and a digit) centred at ``centre``
    (x, y); returns where it and its glyphs lie."""
    corners = sticker_corners(draw, centre, text, font)
    paper = tuple(int(v) for v in rng.integers(225, 256, 3))
    draw.rectangle(corners, fill=paper)
    ink = tuple(int(v) for v in rng.integers(0, 60, 3))
    draw.text(centre, text, font=font, fill=ink, anchor="mm")
    # the baseline origin ("ls" anchor) that puts the text where the centred ("mm") one is
    centred = draw.textbbox((0, 0), text, font=font, anchor="mm")
    origin = draw.textbbox((0, 0), text, font=font, anchor="ls")
    x, y = centre[0] + centred[0] - origin[0], centre[1] + centred[1] - origin[1]
    glyphs, prefix = [], ""
    for word in text.split(" "):
        start = x + font.getlength(prefix)
        glyphs.append(_pixel_box(draw.textbbox((start, y), word, font=font, anchor="ls")))
        prefix += word + " "
    return Sticker(_pixel_box(corners), tuple(glyphs))


def sticker_crop(
    image: np.ndarray,
    text: str,
    crop: tuple[int, int],
    font_sizes: tuple[int, int],
    rng: np.random.Generator,
) -> tuple[np.ndarray, Sticker] | None:
    """A random ``crop`` (H, W) window of ``image`` with a sticker of ``text`` printed whole
    inside it at a font size drawn from ``font_sizes`` (inclusive), as the label printer
    draws one; the sticker's place in the crop. None when the drawn size does not fit. More
    readable text than the scenes carry, for teaching the reading view glyphs."""
    h, w = crop
    top, left = rng.integers(0, image.shape[0] - h + 1), rng.integers(0, image.shape[1] - w + 1)
    canvas = Image.fromarray(image[top : top + h, left : left + w])
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=int(rng.integers(font_sizes[0], font_sizes[1] + 1)))
    left_, top_, right_, bottom_ = sticker_corners(draw, (0.0, 0.0), text, font)
    if right_ - left_ + 2 >= w or bottom_ - top_ + 2 >= h:
        return None
    centre = (
        float(rng.uniform(1 - left_, w - 2 - right_)),
        float(rng.uniform(1 - top_, h - 2 - bottom_)),
    )
    sticker = paste_sticker(draw, centre, text, font, rng)
    return np.asarray(canvas), sticker


@dataclass(frozen=True)
class Label:
    """A scene image with its printed label (``text`` "" and ``sticker`` None when it has
    none) and the category of the object carrying it."""

    image: np.ndarray
    text: str
    category: str
    sticker: Sticker | None


def print_label(scene: Scene, rng: np.random.Generator) -> Label:
    """The scene image with a label printed on one label-bearing part (or unchanged)."""
    unlabelled = Label(scene.rgb, "", "", None)
    candidates = []
    for i, obj in enumerate(scene.objects):
        part = LABEL_PARTS.get(obj.category)
        if part is None:
            continue
        mask = (scene.mask_object == i) & (scene.mask_part == obj.part_names.index(part))
        if mask.sum() >= MIN_LABEL_PIXELS:
            candidates.append((int(mask.sum()), i, mask))
    if not candidates or rng.random() >= LABEL_PROB:
        return unlabelled
    _, index, mask = max(candidates, key=lambda c: c[0])
    texts = label_texts(scene.split)
    text = texts[rng.integers(len(texts))]
    rows, cols = np.nonzero(mask)
    # Font size: the text spans at most 90% of the part's visible width and 80% of its height.
    probe = ImageFont.load_default(size=20)
    left, top, right, bottom = probe.getbbox(text)
    width, height = cols.max() - cols.min() + 1, rows.max() - rows.min() + 1
    size = int(min(20 * 0.9 * width / (right - left), 20 * 0.8 * height / (bottom - top)))
    image = Image.fromarray(scene.rgb)
    draw = ImageDraw.Draw(image)
    centre = float(cols.mean()), float(rows.mean())
    # The largest font whose sticker the part's mask keeps (a slanted part's bounding box is
    # wider than the part itself).
    while size >= MIN_FONT_PX:
        font = ImageFont.load_default(size=size)
        box = sticker_box(sticker_corners(draw, centre, text, font), mask.shape)
        if box is not None and mask[box].mean() >= MIN_STICKER_VISIBLE:
            break
        size = int(size * 0.85)
    else:
        return unlabelled
    sticker = paste_sticker(draw, centre, text, font, rng)
    out = np.where(mask[..., None], np.asarray(image), scene.rgb).astype(np.uint8)
    return Label(out, text, scene.objects[index].category, sticker)


def scene_questions(
    scene: Scene, label: str, label_category: str, rng: np.random.Generator, vqa_per_scene: int
) -> list[QA]:
    """Caption, OCR and up to ``vqa_per_scene`` VQA items about ``scene`` (with its label)."""
    seen, clear = _visible(scene)
    items: list[QA] = [QA("ocr", "", label or NO_TEXT)]
    if label:
        items.append(QA("vqa", f"What does the label on the {label_category} say?", label))
    if not clear or not seen:
        return items
    listing = join_list([noun_phrase(s.colour, s.category) for s in seen])
    items.append(QA("caption", "", listing))
    width = scene.rgb.shape[1]
    cats = [s.category for s in seen]
    pool: list[QA] = [
        QA("vqa", "What is on the table?", listing),
        QA("vqa", "How many objects are on the table?", NUMBERS[min(len(seen), 5)]),
    ]
    asked = CATEGORIES[rng.integers(len(CATEGORIES))]
    if rng.random() < 0.5:
        asked = cats[rng.integers(len(cats))]  # half the time about an object that is there
    pool.append(QA("vqa", f"How many {plural(asked)} are there?", NUMBERS[cats.count(asked)]))
    pool.append(QA("vqa", f"Is there a {asked} on the table?", "yes" if asked in cats else "no"))
    for s in seen:
        if cats.count(s.category) == 1:
            pool.append(QA("vqa", f"What colour is the {s.category}?", s.colour))
        if sum(t.category == s.category and t.colour == s.colour for t in seen) == 1:
            side = ("left", "middle", "right")[min(2, int(3 * s.u / width))]
            pool.append(QA("vqa", f"Where is the {s.colour} {s.category}?", side))
    if len(seen) > 1 and seen[1].u - seen[0].u >= POSITION_GAP_PX:
        first = seen[0]
        pool.append(QA("vqa", "What is the leftmost object?", f"{first.colour} {first.category}"))
    if len(seen) > 1 and seen[-1].u - seen[-2].u >= POSITION_GAP_PX:
        last = seen[-1]
        pool.append(QA("vqa", "What is the rightmost object?", f"{last.colour} {last.category}"))
    picks = rng.permutation(len(pool))[:vqa_per_scene]
    return items + [pool[i] for i in sorted(picks)]


# What each VQA question asks about, by how scene_questions words it (first match wins).
VQA_KINDS: tuple[tuple[str, str], ...] = (
    ("What does the label", "label"),
    ("What colour is", "colour"),
    ("Where is", "position"),
    ("How many objects", "count_all"),
    ("How many", "count"),
    ("Is there", "presence"),
    ("What is on the table", "listing"),
    ("What is the leftmost", "extreme"),
    ("What is the rightmost", "extreme"),
)


def vqa_kind(question: str) -> str:
    """The kind of a generated VQA question (``VQA_KINDS``), "other" for any other wording."""
    return next((kind for prefix, kind in VQA_KINDS if question.startswith(prefix)), "other")


def scene_rng(scene: Scene) -> np.random.Generator:
    """The generator of ``scene``'s label and questions (fixed by its seed and split)."""
    return np.random.default_rng([scene.seed, zlib.crc32(scene.split.encode()), 7])


def describe_sample(scene: Scene, vqa_per_scene: int = 4) -> tuple[Label, list[QA]]:
    """The (labelled) image of ``scene`` with its label, and its caption / OCR / VQA items."""
    rng = scene_rng(scene)
    label = print_label(scene, rng)
    return label, scene_questions(scene, label.text, label.category, rng, vqa_per_scene)


def corpus() -> list[str]:
    """Every word the prompts and answers can use (a compact vocabulary is built from it)."""
    texts = [*every_label_text()]
    texts += [NO_TEXT, "yes", "no", "left", "middle", "right", *NUMBERS]
    for cat in CATEGORIES:
        texts += [noun_phrase(c, cat) for c in COLOUR_NAMES]
        texts += [f"{c} {cat}" for c in COLOUR_NAMES]
        texts += [
            f"What does the label on the {cat} say?",
            f"How many {plural(cat)} are there?",
            f"Is there a {cat} on the table?",
            f"What colour is the {cat}?",
            *[f"Where is the {c} {cat}?" for c in COLOUR_NAMES],
        ]
    # every noun phrase inside a list too (" an", " pair" differ from the first word's tokens)
    texts.append(join_list([noun_phrase(c, cat) for cat in CATEGORIES for c in COLOUR_NAMES]))
    texts += [
        "What is on the table?",
        "How many objects are on the table?",
        "What is the leftmost object?",
        "What is the rightmost object?",
    ]
    return texts


def _record(job: tuple[int, str, int]) -> dict:
    """One scene's labelled image and its items (a worker job)."""
    import torch

    torch.set_num_threads(1)
    seed, split, vqa_per_scene = job
    scene = generate_scene(seed, split)
    label, items = describe_sample(scene, vqa_per_scene)
    return {
        "seed": seed,
        "image": label.image,
        "items": json.dumps([dataclasses.asdict(q) for q in items]),
        # what is where, for aligning the vision tower (train-describe's first phase)
        "mask": scene.mask_object.astype(np.int8),
        "objects": json.dumps([[o.category, o.colour] for o in scene.objects]),
        # where the label is, for the reading view (train-describe's locator and crops)
        "label_box": np.asarray(label.sticker.box if label.sticker else NO_BOX, np.int16),
    }


def prepare_describe_data(
    out_dir: str | Path,
    split: str,
    count: int,
    seed: int,
    vqa_per_scene: int = 4,
    per_shard: int = 100,
    workers: int = 1,
    progress: bool = True,
) -> Path:
    """Shards (compressed ``.npz``) of ``count`` labelled scenes of ``split`` (scene seeds
    ``seed``, ``seed + 1``...); shards already written are kept, so this resumes."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return write_shards(
        out,
        _record,
        (split, vqa_per_scene),
        count,
        seed,
        per_shard,
        workers,
        f"describe {split}",
        progress,
        compressed=True,
    )


def _shards(directory: str | Path) -> list[Path]:
    files = sorted(
        f for f in Path(directory).glob("shard-*.npz") if not f.name.endswith(".tmp.npz")
    )
    if not files:
        raise FileNotFoundError(f"no describe shards in {directory}")
    return files


def load_describe_data(directory: str | Path) -> list[tuple[int, np.ndarray, list[QA]]]:
    """(seed, image, items) of every scene in the shards of ``directory``."""
    scenes = []
    for path in _shards(directory):
        with np.load(path) as data:
            for seed, image, items in zip(data["seed"], data["image"], data["items"], strict=True):
                qa = [QA(**q) for q in json.loads(str(items))]
                scenes.append((int(seed), image, qa))
    return scenes


def _shards_with(directory: str | Path, key: str, what: str) -> Iterator[Any]:
    """Each (open) shard of ``directory``, checked to carry ``key`` (``what`` it holds)."""
    for path in _shards(directory):
        with np.load(path) as data:
            if key not in data.files:
                raise ValueError(
                    f"{path} predates {what} in describe shards: delete {directory} "
                    "(or pick a new data.cache_dir) and the scenes are generated again"
                )
            yield data


def load_describe_layouts(directory: str | Path) -> list[tuple[np.ndarray, list[tuple[str, str]]]]:
    """(object index per pixel [H, W], -1 and below: no object; (category, colour) of each
    object) of every scene in the shards of ``directory``, in :func:`load_describe_data`'s
    order."""
    layouts = []
    for data in _shards_with(directory, "mask", "object masks"):
        for mask, objects in zip(data["mask"], data["objects"], strict=True):
            layouts.append((mask, [tuple(o) for o in json.loads(str(objects))]))
    return layouts


def load_label_boxes(directory: str | Path) -> np.ndarray:
    """Sticker box [N, 4] (top, left, bottom, right; ``NO_BOX`` where none) of every scene in
    the shards of ``directory``, in :func:`load_describe_data`'s order."""
    boxes = [data["label_box"] for data in _shards_with(directory, "label_box", "label boxes")]
    return np.concatenate(boxes).astype(np.int64)
