"""Describe scoring on answers whose figures are known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from grasp_semantics.data.questions import NO_TEXT, QA
from grasp_semantics.evaluation.evaluate_describe import (
    confidence_auroc,
    exact_match,
    score,
    token_f1,
    with_other_images,
)
from grasp_semantics.models.scene_describer import SceneDescriber, ScoredAnswer


class _Answers:
    """Answers prompts from a fixed table (answer, or (answer, confidence)), as
    ``SceneDescriber.generate_scored`` would, for requests made as a describer with a reading
    view makes them."""

    reads = True
    request = SceneDescriber.request

    def __init__(self, answers: dict[str, str | tuple[str, float]]) -> None:
        self.answers = {p: a if isinstance(a, tuple) else (a, 0.5) for p, a in answers.items()}
        self.read: dict[str, set[bool]] = {}  # prompt -> the read flags it was asked with

    def generate_scored(self, images, prompts, read=False):
        assert len(images) == len(prompts)
        for p in prompts:
            self.read.setdefault(p, set()).add(read)
        return [ScoredAnswer(*self.answers[p]) for p in prompts]


def test_exact_match_and_token_f1_normalise_case_and_punctuation() -> None:
    assert exact_match("ACME 5.", "acme 5") == 1.0
    assert token_f1("a red mug", "a red mug and a knife") == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert token_f1("", "") == 1.0 and token_f1("mug", "") == 0.0


def test_ocr_is_scored_apart_on_labelled_and_unlabelled_images() -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    ocr = "Read the text in the image."
    items = [
        (image, QA("ocr", "", "ACME 5")),
        (image, QA("ocr", "", NO_TEXT)),
        (image, QA("ocr", "", NO_TEXT)),
        (image, QA("caption", "", "a red mug")),
        (image, QA("vqa", "What does the label on the mug say?", "ACME 5")),
        (image, QA("vqa", "Is there a mug on the table?", "yes")),
    ]
    table = {
        ocr: NO_TEXT,
        "Describe this image.": "a red mug",
        "Is there a mug on the table?": "yes",
    }
    answers = _Answers(table)
    figures = score(answers, items)
    # OCR and the question about the label ask for the reading view, as OCR; the others never
    assert answers.read == {
        ocr: {True},
        "Describe this image.": {False},
        "Is there a mug on the table?": {False},
    }
    assert figures["vqa_kinds"]["label"]["exact_match"] == 0.0  # read as OCR: "no text"
    third = pytest.approx(2 / 3)
    confidence = {"right": 0.5, "wrong": 0.5, "auroc": 0.5}  # all 0.5: no help
    assert figures["ocr"] == {
        "exact_match": third,
        "token_f1": third,
        "items": 3,
        "confidence": confidence,
    }
    assert figures["ocr_label"]["exact_match"] == 0.0 and figures["ocr_label"]["items"] == 1
    assert figures["ocr_no_text"]["exact_match"] == 1.0 and figures["ocr_no_text"]["items"] == 2
    assert figures["caption"]["exact_match"] == 1.0
    assert figures["vqa"]["items"] == 2 and figures["vqa"]["exact_match"] == 0.5


def test_the_other_image_baseline_asks_each_question_of_the_next_scenes_image() -> None:
    a, b, c = (np.full((4, 4, 3), v, np.uint8) for v in (1, 2, 3))
    questions = [QA("vqa", f"q{i}", "yes") for i in range(5)]
    items = [
        (a, questions[0]),
        (a, questions[1]),
        (b, questions[2]),
        (c, questions[3]),
        (c, questions[4]),
    ]
    swapped = with_other_images(items)
    assert [q for _, q in swapped] == questions
    assert [int(rgb[0, 0, 0]) for rgb, _ in swapped] == [2, 2, 3, 1, 1]
    copies = [(rgb.copy(), q) for rgb, q in items]  # a scene told by its pixels, not its array
    assert [int(rgb[0, 0, 0]) for rgb, _ in with_other_images(copies)] == [2, 2, 3, 1, 1]


def test_confidence_is_summed_up_per_group_on_right_and_wrong_answers() -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    items = [(image, QA("vqa", f"q{i}", "red")) for i in range(4)]
    answers = {"q0": ("red", 0.9), "q1": ("red", 0.4), "q2": ("blue", 0.6), "q3": ("blue", 0.2)}
    figures = score(_Answers(answers), items)["vqa"]
    # right 0.9, 0.4 against wrong 0.6, 0.2: 3 of the 4 pairs ordered right
    assert figures["confidence"] == {
        "right": pytest.approx(0.65),
        "wrong": pytest.approx(0.4),
        "auroc": pytest.approx(0.75),
    }
    all_right = score(_Answers({f"q{i}": ("red", 0.3) for i in range(4)}), items)["vqa"]
    assert all_right["confidence"] == {"right": pytest.approx(0.3), "wrong": None, "auroc": None}


def test_confidence_auroc_counts_ties_half() -> None:
    confidence = np.array([0.5, 0.5, 0.5, 0.1])
    right = np.array([True, False, True, False])
    assert confidence_auroc(confidence, right) == pytest.approx((0.5 + 1 + 0.5 + 1) / 4)
    assert confidence_auroc(confidence, np.ones(4, bool)) is None


def test_a_task_without_items_has_no_figure() -> None:
    items = [(np.zeros((8, 8, 3), np.uint8), QA("caption", "", "a red mug"))]
    figures = score(_Answers({"Describe this image.": "a red mug"}), items)
    assert "vqa" not in figures and "ocr" not in figures and figures["caption"]["items"] == 1
