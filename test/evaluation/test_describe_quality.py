"""The shipped describe head (``weights/default/describe``): size, grasp path untouched, and
held-out caption / OCR / VQA figures measured on scenes it never saw.

The README's table comes from ``grasp-semantics evaluate-describe`` on 100 held-out scenes;
this test scores 12 other held-out scenes (another seed range), so its thresholds sit below
the README figures by the spread such a small sample shows.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grasp_semantics.evaluation.evaluate_describe import held_out_items, score, with_other_images
from grasp_semantics.inference.predictor import DEFAULT_WEIGHTS, GraspPredictor
from grasp_semantics.inference.scene_questions import attach_describer, load_describer

torch.set_num_threads(1)
# What 12 held-out scenes (seeds 20,100,000...) must reach; measured there with the head the
# recipe trained on the 24-category model: caption token F1 0.47 (exact match 0), vqa 0.41 /
# 0.49, ocr 0.83 / 0.83 (exact match / token F1), and on the 3 of them with a label 0.33 / 0.33
# (1 read whole), the same on the 3 questions what their label says.
THRESHOLDS = {
    "caption": {"token_f1": 0.4},
    "vqa": {"exact_match": 0.33, "token_f1": 0.42},
    "ocr": {"exact_match": 0.7, "token_f1": 0.7},
    "ocr_label": {"exact_match": 0.3, "token_f1": 0.3},
}
READING_QUESTIONS = {"exact_match": 0.3, "token_f1": 0.3}  # "What does the label ... say?"
LABELLED = 3  # scenes of the 12 with a label
# How much better the answers are from a scene's own image than from the next scene's (the
# same questions): measured 0.15 caption token F1, 0.09 VQA token F1 and 0.33 on the labels'
# OCR on those scenes. A head answering from the data's priors scores the same on both (the
# recipe's first, third-length head: +0.00 on captions, +0.05 on VQA).
IMAGE_GAIN = {"caption": 0.1, "vqa": 0.05, "ocr_label": 0.25}


def test_shipped_default_stays_small_and_carries_a_describe_head() -> None:
    files = [f for f in DEFAULT_WEIGHTS.rglob("*") if f.is_file()]
    assert sum(f.stat().st_size for f in files) <= 25 * 2**20
    describe = DEFAULT_WEIGHTS / "describe"
    assert (describe / "config.yaml").is_file() and (describe / "adapter.safetensors").is_file()


def test_grasp_predictions_are_identical_with_the_describe_head_loaded() -> None:
    from grasp_semantics.data.scene import generate_scene

    scene = generate_scene(20_200_000, "val")
    predictor = GraspPredictor.from_pretrained("default", device="cpu")
    before = predictor.predict(scene.rgb, scene.points, scene.instruction, scene.intrinsics)
    predictor.model.encoder.clear_cache()
    describer = attach_describer(predictor.model, "default")
    assert describer.generate(torch.from_numpy(scene.rgb)[None], ["Describe this image."])[0]
    after = predictor.predict(scene.rgb, scene.points, scene.instruction, scene.intrinsics)
    np.testing.assert_array_equal(before.contact, after.contact)
    np.testing.assert_array_equal(before.poses, after.poses)


@pytest.fixture(scope="module")
def figures() -> dict:
    """Scores on the held-out scenes' own images, and (``other_image``) on the next scene's."""
    describer = load_describer("default", device="cpu")
    items = held_out_items("val", 12, 20_100_000)
    return {**score(describer, items), "other_image": score(describer, with_other_images(items))}


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(THRESHOLDS))
def test_held_out_figures(figures: dict, task: str) -> None:
    assert figures[task]["items"] >= (LABELLED if task == "ocr_label" else 8)
    for metric, least in THRESHOLDS[task].items():
        assert figures[task][metric] >= least, figures[task]


@pytest.mark.slow
def test_questions_about_the_label_are_read(figures: dict) -> None:
    label = figures["vqa_kinds"]["label"]
    assert label["items"] >= LABELLED
    for metric, least in READING_QUESTIONS.items():
        assert label[metric] >= least, label


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(IMAGE_GAIN))
def test_answers_come_from_the_image(figures: dict, task: str) -> None:
    gain = figures[task]["token_f1"] - figures["other_image"][task]["token_f1"]
    assert gain >= IMAGE_GAIN[task], (figures[task], figures["other_image"][task])


# Confidence AUROC (right against wrong answers, exact match) the same 12 scenes must reach:
# measured 0.81 on their 51 VQA items and 0.80 on their 12 OCR items. 0.5 would mean the
# confidence says nothing.
CONFIDENCE_AUROC = {"vqa": 0.7, "ocr": 0.7}


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(CONFIDENCE_AUROC))
def test_confidence_separates_right_from_wrong_answers(figures: dict, task: str) -> None:
    confidence = figures[task]["confidence"]
    assert confidence["auroc"] >= CONFIDENCE_AUROC[task], confidence
    assert confidence["right"] > confidence["wrong"], confidence
