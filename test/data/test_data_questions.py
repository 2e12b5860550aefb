"""Printed labels and the questions about a scene (data/questions.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from grasp_semantics.data.questions import (
    LABEL_DIGITS,
    LABEL_PARTS,
    LABEL_WORDS,
    Label,
    label_texts,
    print_label,
    scene_rng,
)
from grasp_semantics.data.scene import Scene, generate_scene

SEEDS = range(20_000_000, 20_000_030)  # held-out (val) scenes, as the describe evaluation's


@pytest.fixture(scope="module")
def labelled() -> list[tuple[Scene, Label]]:
    out = []
    for seed in SEEDS:
        scene = generate_scene(seed, "val")
        label = print_label(scene, scene_rng(scene))
        if label.text:
            out.append((scene, label))
    return out


def test_train_and_held_out_label_texts_split_every_pair() -> None:
    train, held_out = set(label_texts("train")), set(label_texts("val"))
    assert not train & held_out
    assert train | held_out == {f"{w} {d}" for w in LABEL_WORDS for d in LABEL_DIGITS}
    assert label_texts("test_instance") == label_texts("val")


@pytest.mark.slow
def test_a_label_is_printed_whole_on_the_visible_part(labelled) -> None:
    assert len(labelled) >= 5, "too few labelled scenes to check"
    for scene, label in labelled:
        rgb, text, category = label.image, label.text, label.category
        assert text in label_texts("val") and category in LABEL_PARTS
        changed = np.any(rgb != scene.rgb, axis=2)
        index = next(
            i
            for i, o in enumerate(scene.objects)
            if o.category == category and np.any(changed & (scene.mask_object == i))
        )
        part = scene.objects[index].part_names.index(LABEL_PARTS[category])
        mask = (scene.mask_object == index) & (scene.mask_part == part)
        assert not np.any(changed & ~mask), "ink or paper outside the part's visible pixels"
        # the sticker (paper and ink) is a rectangle the mask cut by a tenth at most
        rows, cols = np.nonzero(changed)
        box = changed[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        # (0.85 rather than the printer's 0.9: paper may match a few of the part's pixels)
        assert box.mean() >= 0.85, (scene.seed, text, box.mean())


@pytest.mark.slow
def test_no_label_on_a_part_seen_only_as_a_thin_slanted_band(labelled) -> None:
    scene, _ = labelled[0]
    index = next(i for i, o in enumerate(scene.objects) if o.category in LABEL_PARTS)
    obj = scene.objects[index]
    part = obj.part_names.index(LABEL_PARTS[obj.category])
    # the only label-bearing pixels: a 9-pixel-wide diagonal band (1,800 pixels, a large
    # bounding box, no room for a sticker)
    rows, cols = np.indices(scene.mask_object.shape)
    band = (np.abs(rows - cols) < 5) & (rows > 100) & (rows < 300)
    thin = dataclasses.replace(
        scene,
        mask_object=np.where(band, index, -1).astype(np.int16),
        mask_part=np.where(band, part, -1).astype(np.int16),
    )
    for k in range(5):  # whatever text and draw the generator picks
        label = print_label(thin, np.random.default_rng(k))
        assert label.text == "" and label.sticker is None
        assert np.array_equal(label.image, scene.rgb)


@pytest.mark.slow
def test_the_recorded_sticker_box_is_where_the_label_was_printed(labelled) -> None:
    for scene, label in labelled:
        changed = np.any(label.image != scene.rgb, axis=2)
        top, left, bottom, right = label.sticker.box
        inside = np.zeros_like(changed)
        inside[top:bottom, left:right] = True
        assert not np.any(changed & ~inside), "printed pixels outside the recorded box"
        # the part's mask keeps 9/10 of the sticker; paper may match a few pixels, and the box
        # keeps a pixel's slack on each side
        assert changed[inside].mean() >= 0.8, (scene.seed, changed[inside].mean())
        word, digit = label.sticker.glyphs
        for glyph_top, glyph_left, glyph_bottom, glyph_right in (word, digit):
            assert top <= glyph_top < glyph_bottom <= bottom
            assert left <= glyph_left < glyph_right <= right
        # ink spans each glyph box from side to side, and none lies in the space between them
        ink = label.image.max(axis=2) < 160
        rows = slice(word[0], word[2])
        for glyph in (word, digit):
            columns = ink[rows, glyph[1] : glyph[3]].any(axis=0)
            assert columns[:4].any() and columns[-4:].any(), (scene.seed, glyph)
        # the word ends before the digit starts (up to the boxes' slack pixels)
        assert word[3] <= digit[1] + 2, (scene.seed, word, digit)
