"""``grasp-semantics describe``: answers from the shipped default, JSON schema, bad requests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from PIL import Image

from grasp_semantics.cli import main
from grasp_semantics.describe import RESULT_SCHEMA


def check_schema(value: Any, schema: dict[str, Any]) -> None:
    """Validate ``value`` against the JSON schema (draft 2020-12) ``schema``."""
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(value, schema, cls=jsonschema.Draft202012Validator)


@pytest.fixture(scope="module")
def scene_png(tmp_path_factory) -> Path:
    """A held-out synthetic scene with a printed label, as a PNG file."""
    from grasp_semantics.data.questions import describe_sample
    from grasp_semantics.data.scene import generate_scene

    rgb = describe_sample(generate_scene(20_000_001, "val"))[0].image
    path = tmp_path_factory.mktemp("describe") / "scene.png"
    Image.fromarray(rgb).save(path)
    return path


def test_json_output_follows_the_schema(scene_png, tmp_path, capsys):
    out = tmp_path / "result.json"
    args = ["describe", "--image", str(scene_png), "--task", "vqa", "--device", "cpu"]
    code = main([*args, "--prompt", "How many objects are on the table?", "--format", "json",
                 "--output", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    check_schema(result, RESULT_SCHEMA)
    assert result["task"] == "vqa" and result["prompt"] == "How many objects are on the table?"
    assert result["model"] == "default" and result["device"] == "cpu"
    assert result["answer"].strip() and 0.0 < result["confidence"] <= 1.0
    timing = result["timing_ms"]
    assert timing["total"] >= timing["load"] + timing["generate"] > 0


def test_a_question_about_the_label_is_read_as_ocr(scene_png, tmp_path, capsys):
    """The shipped head reads the label for "what does it say" through its reading view."""
    image = ["describe", "--image", str(scene_png), "--device", "cpu", "--format", "json"]
    question = "What does the label on the bottle say?"
    results = {}
    for task, extra in (("vqa", ["--prompt", question]), ("ocr", [])):
        out = tmp_path / f"{task}.json"
        code = main([*image, "--task", task, *extra, "--output", str(out)])
        assert code == 0, capsys.readouterr().err
        results[task] = json.loads(out.read_text())
    assert results["vqa"]["prompt"] == "Read the text in the image."  # what was sent
    assert results["vqa"]["answer"] == results["ocr"]["answer"]


def test_text_output_of_a_caption(scene_png, capsys):
    code = main(["describe", "--image", str(scene_png), "--task", "caption", "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.strip()  # the caption, nothing else
    assert "{" not in captured.out


def test_the_schema_checker_rejects_what_it_should():
    good = {"task": "ocr", "prompt": "p", "answer": "a", "confidence": 0.5, "model": "m",
            "device": "cpu",
            "image": "x.png", "timing_ms": {"load": 1, "preprocess": 0, "generate": 2,
                                            "total": 3}}  # fmt: skip
    check_schema(good, RESULT_SCHEMA)
    for bad in ({**good, "task": "translate"}, {**good, "extra": 1},
                {k: v for k, v in good.items() if k != "answer"}, {**good, "confidence": 1.5},
                {**good, "timing_ms": {**good["timing_ms"], "total": -1}}):  # fmt: skip
        with pytest.raises(jsonschema.ValidationError):
            check_schema(bad, RESULT_SCHEMA)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--image", "https://example.com/photo.jpg", "--task", "caption"], "URLs are not"),
        (["--image", "{missing}", "--task", "caption"], "does not exist"),
        (["--image", "{garbage}", "--task", "ocr"], "cannot read image"),
        (["--image", "{png}", "--task", "vqa"], "'vqa' needs a prompt"),
        (["--image", "{png}", "--task", "translate"], "unknown task 'translate'"),
        (["--image", "{png}", "--task", "caption", "--max-new-tokens", "0"], "max_new_tokens"),
    ],
)
def test_bad_requests_fail_with_a_clear_message(extra, message, tmp_path, capsys):
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image at all")
    png = tmp_path / "ok.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(png)
    paths = {"{missing}": str(tmp_path / "nope.png"), "{garbage}": str(garbage), "{png}": str(png)}
    code = main(["describe", *[paths.get(a, a) for a in extra]])
    err = capsys.readouterr().err
    assert code == 2
    assert "error:" in err and message in err
