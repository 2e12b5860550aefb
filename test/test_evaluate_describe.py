"""Describe scoring on answers whose figures are known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from grasp_semantics.data.questions import NO_TEXT, QA
from grasp_semantics.evaluate_describe import exact_match, score, token_f1, with_other_images


class _Answers:
    """Answers prompts from a fixed table, as ``SceneDescriber.generate`` would."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers

    def generate(self, images, prompts):
        assert len(images) == len(prompts)
        return [self.answers[p] for p in prompts]


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
    ]
    figures = score(_Answers({ocr: NO_TEXT, "Describe this image.": "a red mug"}), items)
    third = pytest.approx(2 / 3)
    assert figures["ocr"] == {"exact_match": third, "token_f1": third, "items": 3}
    assert figures["ocr_label"]["exact_match"] == 0.0 and figures["ocr_label"]["items"] == 1
    assert figures["ocr_no_text"]["exact_match"] == 1.0 and figures["ocr_no_text"]["items"] == 2
    assert figures["caption"]["exact_match"] == 1.0
    assert "vqa" not in figures  # no item, no figure


def test_the_other_image_baseline_asks_each_question_of_the_next_scenes_image() -> None:
    a, b, c = (np.full((4, 4, 3), v, np.uint8) for v in (1, 2, 3))
    questions = [QA("vqa", f"q{i}", "yes") for i in range(5)]
    items = [(a, questions[0]), (a, questions[1]), (b, questions[2]), (c, questions[3]),
             (c, questions[4])]  # fmt: skip
    swapped = with_other_images(items)
    assert [q for _, q in swapped] == questions
    assert [int(rgb[0, 0, 0]) for rgb, _ in swapped] == [2, 2, 3, 1, 1]
    copies = [(rgb.copy(), q) for rgb, q in items]  # a scene told by its pixels, not its array
    assert [int(rgb[0, 0, 0]) for rgb, _ in with_other_images(copies)] == [2, 2, 3, 1, 1]
