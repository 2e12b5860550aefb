"""Printed labels and the questions about a scene (data/questions.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from grasp_semantics.data.questions import (
    LABEL_DIGITS,
    LABEL_PARTS,
    LABEL_WORDS,
    label_texts,
    print_label,
    scene_rng,
)
from grasp_semantics.data.scene import Scene, generate_scene

SEEDS = range(20_000_000, 20_000_030)  # held-out (val) scenes, as the describe evaluation's


@pytest.fixture(scope="module")
def labelled() -> list[tuple[Scene, np.ndarray, str, str]]:
    out = []
    for seed in SEEDS:
        scene = generate_scene(seed, "val")
        rgb, text, category = print_label(scene, scene_rng(scene))
        if text:
            out.append((scene, rgb, text, category))
    return out


def test_train_and_held_out_label_texts_split_every_pair() -> None:
    train, held_out = set(label_texts("train")), set(label_texts("val"))
    assert not train & held_out
    assert train | held_out == {f"{w} {d}" for w in LABEL_WORDS for d in LABEL_DIGITS}
    assert label_texts("test_instance") == label_texts("val")


def test_a_label_is_printed_whole_on_the_visible_part(labelled) -> None:
    assert len(labelled) >= 5, "too few labelled scenes to check"
    for scene, rgb, text, category in labelled:
        assert text in label_texts("val") and category in LABEL_PARTS
        changed = np.any(rgb != scene.rgb, axis=2)
        index = next(
            i for i, o in enumerate(scene.objects)
            if o.category == category
            and np.any(changed & (scene.mask_object == i))
        )  # fmt: skip
        part = scene.objects[index].part_names.index(LABEL_PARTS[category])
        mask = (scene.mask_object == index) & (scene.mask_part == part)
        assert not np.any(changed & ~mask), "ink or paper outside the part's visible pixels"
        # the sticker (paper and ink) is a rectangle the mask cut by a tenth at most
        rows, cols = np.nonzero(changed)
        box = changed[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        # (0.85 rather than the printer's 0.9: paper may match a few of the part's pixels)
        assert box.mean() >= 0.85, (scene.seed, text, box.mean())


def test_no_label_on_a_part_seen_only_as_a_thin_slanted_band(labelled) -> None:
    scene, *_ = labelled[0]
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
        rgb, text, _ = print_label(thin, np.random.default_rng(k))
        assert text == "" and np.array_equal(rgb, scene.rgb)
