"""Training the reading view (OCR): locator targets, glyph labels, reading-view batches, and a
train-describe run with a reading view end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from grasp_semantics.data.questions import (
    LABEL_DIGITS,
    LABEL_WORDS,
    NO_TEXT,
    Sticker,
    sticker_crop,
)
from grasp_semantics.models.grasp_net import GraspNet
from grasp_semantics.models.scene_describer import DescribeConfig, SceneDescriber
from grasp_semantics.training.train_reading import (
    DescribeReadConfig,
    glyph_labels,
    locator_loss,
    locator_targets,
    reading_batch,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def describer() -> SceneDescriber:
    model = GraspNet("tiny").eval()
    describer = SceneDescriber(model.encoder, DescribeConfig(reading_crop=(64, 96)))
    yield describer
    describer.close()


def test_locator_targets_name_the_token_under_the_label_centre_and_the_offset():
    # 240 x 320 image, 4 x 5 tokens of 60 x 64 pixels
    boxes = np.array([[70, 140, 90, 180], [-1, -1, -1, -1], [0, 0, 10, 10]])
    token, offset = locator_targets(boxes, (240, 320), (4, 5))
    # centre (80, 160): token (1, 2), whose centre is (90, 160)
    assert token.tolist() == [1 * 5 + 2, -1, 0]
    assert offset[0].tolist() == pytest.approx([-10 / 60, 0.0])
    assert offset[2].tolist() == pytest.approx([5 / 60 - 0.5, 5 / 64 - 0.5])


def test_locator_loss_counts_only_labelled_images_and_is_lowest_at_the_truth():
    token = torch.tensor([3, -1])
    offset = torch.tensor([[0.1, -0.2], [0.0, 0.0]])
    right = torch.zeros(2, 6, 3)
    right[0, 3] = torch.tensor([20.0, 0.1, -0.2])
    assert float(locator_loss(right, token, offset)) == pytest.approx(0.0, abs=1e-6)
    wrong = right.clone()
    wrong[0, 3, 0], wrong[0, 1, 0] = 0.0, 20.0
    assert float(locator_loss(wrong, token, offset)) > 10
    unlabelled = torch.randn(1, 6, 3, requires_grad=True)
    loss = locator_loss(unlabelled, torch.tensor([-1]), torch.zeros(1, 2))
    assert float(loss.detach()) == 0.0 and loss.requires_grad


def test_glyph_labels_mark_the_tokens_holding_a_quarter_of_each_glyph():
    # 64 x 96 crop, 2 x 3 tokens of 32 x 32: the word spans tokens (0, 0) and (0, 1) evenly,
    # the digit lies in token (1, 2)
    sticker = Sticker(box=(0, 0, 64, 96), glyphs=((4, 8, 28, 56), (40, 70, 60, 80)))
    labels = glyph_labels(sticker, "ORCA 5", (64, 96), (2, 3))
    orca, five = 1 + LABEL_WORDS.index("ORCA"), 1 + LABEL_DIGITS.index("5")
    assert labels.tolist() == [[orca, orca, 0, 0, 0, 0], [0, 0, 0, 0, 0, five]]


def test_sticker_crops_print_the_text_inside_the_window():
    image = np.full((120, 200, 3), 80, np.uint8)
    rng = np.random.default_rng(0)
    for _ in range(10):
        made = sticker_crop(image, "ZEST 3", (64, 96), (11, 16), rng)
        assert made is not None
        crop, sticker = made
        top, left, bottom, right = sticker.box
        changed = np.any(crop != 80, axis=2)
        assert top >= 0 and left >= 0 and bottom <= 64 and right <= 96
        assert not changed[:top].any() and not changed[bottom:].any()
        assert not changed[:, :left].any() and not changed[:, right:].any()
        assert changed[top + 1 : bottom - 1, left + 1 : right - 1].all()  # paper or ink
    assert sticker_crop(image, "ZEST 3", (20, 40), (30, 30), rng) is None  # too big to fit


def test_reading_windows_are_the_crops_reading_views_takes(describer):
    rng = np.random.default_rng(1)
    images = torch.from_numpy(rng.integers(0, 256, (5, 120, 200, 3), dtype=np.uint8))
    centres = torch.tensor([[60.0, 100.0], [0.0, 0.0], [119.0, 199.0], [30.4, 150.6], [70, 10]])
    views = describer.reading_views(images, centres)
    windows = describer.reading_windows(centres, (120, 200))
    # a 64 x 96 window centred where it fits, moved inside the image at its edges
    assert windows[:3].tolist() == [[28, 52, 92, 148], [0, 0, 64, 96], [56, 104, 120, 200]]
    for i, (top, left, bottom, right) in enumerate(windows):
        assert torch.equal(views[i], images[i, top:bottom, left:right])


def test_reading_batch_takes_labels_stickers_and_empty_windows(describer):
    rng = np.random.default_rng(2)
    images = np.full((3, 200, 300, 3), 60, np.uint8)
    images[0, 100:120, 140:190] = 250  # scene 0's "label"
    boxes = np.array([[100, 140, 120, 190], [-1] * 4, [-1] * 4])
    cfg = DescribeReadConfig(font_sizes=(11, 14), jitter=0.3)
    crops, answers = reading_batch(
        describer, images, boxes, ["KIWI 2", "", ""], ("NOVA 1",), 6, cfg, rng
    )
    assert crops.shape == (6, 64, 96, 3)
    assert answers == ["KIWI 2", "NOVA 1", NO_TEXT, "NOVA 1", "KIWI 2", "NOVA 1"]
    for k in (0, 4):  # the whole label in view, whatever the jitter
        assert int((crops[k] == 250).all(dim=2).sum()) == 20 * 50
    assert bool((crops[2] == 60).all())  # nothing printed
    only_unlabelled = reading_batch(
        describer, images[1:], boxes[1:], ["", ""], ("NOVA 1",), 4, cfg, rng
    )[1]
    assert only_unlabelled == ["NOVA 1", NO_TEXT, "NOVA 1", "NOVA 1"]


@pytest.mark.slow
def test_train_describe_with_a_reading_view_end_to_end(tmp_path):
    """A few steps of every phase on a handful of scenes: the head saves its reading view,
    loads, and reads through it; the figures carry the reading view's."""
    from grasp_semantics.inference.predictor import GraspPredictor
    from grasp_semantics.training.train_describe import (
        DescribeAlignConfig,
        DescribeDataConfig,
        DescribeOptimConfig,
        DescribeTrainConfig,
        train_describe,
    )

    cfg = DescribeTrainConfig(
        out_dir=str(tmp_path / "head"),
        describe={
            "lora_targets": ["*visual.blocks.*", "*language_model.layers.*.mlp.*_proj"],
            "reading_crop": [96, 160],
            "reading_lora_r": 4,
        },
        data=DescribeDataConfig(
            cache_dir=str(tmp_path / "data"), train_scenes=6, eval_scenes=3, workers=1
        ),
        align=DescribeAlignConfig(steps=2, images_per_step=2),
        read=DescribeReadConfig(
            glyph_steps=2, crops_per_step=2, ocr_views_per_step=3, locator_steps=2
        ),
        optim=DescribeOptimConfig(steps=2, warmup_steps=1, images_per_step=2, items_per_image=2),
        log_every=1,
    )
    figures = train_describe(cfg, progress=False)
    assert set(figures["reading"]["glyphs"]) == {"word", "digit"}
    assert 0.0 <= figures["reading"]["located"] <= 1.0
    assert figures["ocr"]["items"] == 3
    log = [json.loads(line) for line in (tmp_path / "head" / "train_log.jsonl").open()]
    assert [row["step"] for row in log if row.get("phase") == "glyphs" and "step" in row] == [1, 2]
    model = GraspPredictor.from_pretrained("default", device="cpu").model
    loaded = SceneDescriber.load(tmp_path / "head", model.encoder)
    assert loaded.reads and loaded.reading_size == (192, 320)
    image = torch.zeros(1, 480, 640, 3, dtype=torch.uint8)
    [answer] = loaded.generate_scored(image, ["Read the text in the image."], 3, read=True)
    assert isinstance(answer.text, str) and 0.0 < answer.confidence <= 1.0
    loaded.close()
