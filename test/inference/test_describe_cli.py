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
from grasp_semantics.inference.scene_questions import RESULT_SCHEMA


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
    good = {
        "task": "ocr",
        "prompt": "p",
        "answer": "a",
        "confidence": 0.5,
        "model": "m",
        "device": "cpu",
        "image": "x.png",
        "inputs": [{"source": "x.png", "kind": "image", "height": 4, "width": 5}],
        "timing_ms": {"load": 1, "preprocess": 0, "generate": 2, "total": 3},
    }
    check_schema(good, RESULT_SCHEMA)
    for bad in (
        {**good, "task": "translate"},
        {**good, "extra": 1},
        {k: v for k, v in good.items() if k != "answer"},
        {**good, "confidence": 1.5},
        {**good, "timing_ms": {**good["timing_ms"], "total": -1}},
        {**good, "inputs": []},
        {**good, "inputs": [{"source": "x", "kind": "audio", "height": 1, "width": 1}]},
        {**good, "pages": [{"page": 0, "answer": "a", "confidence": 0.5}]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            check_schema(bad, RESULT_SCHEMA)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--image", "{unreachable}", "--task", "caption"], "cannot reach the host"),
        (["--image", "ftp://example.com/a.png", "--task", "caption"], "only http:// and https://"),
        (["--image", "{png}", "--task", "caption", "--fps", "0"], "--fps must be positive"),
        (["--image", "{png}", "--task", "caption", "--page", "2"], "no --image is a PDF"),
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
    from test_describe_inputs import closed_port

    paths = {
        "{missing}": str(tmp_path / "nope.png"),
        "{garbage}": str(garbage),
        "{png}": str(png),
        "{unreachable}": f"http://127.0.0.1:{closed_port()}/a.png",
    }
    code = main(["describe", *[paths.get(a, a) for a in extra]])
    err = capsys.readouterr().err
    assert code == 2
    assert "error:" in err and message in err


# ------------------------------------------------------- URLs, PDFs, several images, video
@pytest.fixture(scope="module")
def server():
    from test_describe_inputs import Server

    served = Server()
    yield served
    served.close()


def run_json(args: list[str], out: Path, capsys) -> dict[str, Any]:
    """``describe ... --format json`` written to ``out``; the parsed result (schema-checked)."""
    code = main(["describe", *args, "--device", "cpu", "--format", "json", "--output", str(out)])
    assert code == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    check_schema(result, RESULT_SCHEMA)
    return result


def test_a_url_is_answered_as_the_same_image_on_disk(scene_png, server, tmp_path, capsys):
    server.routes["/scene.png"] = (200, "image/png", scene_png.read_bytes(), True)
    url = server.url("/scene.png")
    fetched = run_json(["--image", url, "--task", "caption"], tmp_path / "url.json", capsys)
    local = run_json(["--image", str(scene_png), "--task", "caption"], tmp_path / "f.json", capsys)
    assert fetched["image"] == url and fetched["inputs"][0]["kind"] == "image"
    assert fetched["answer"] == local["answer"] and fetched["answer"]
    assert fetched["confidence"] == local["confidence"]


@pytest.mark.slow
def test_a_pdf_is_read_page_by_page(scene_png, tmp_path, capsys):
    """OCR on a two-page PDF answers each page as it answers that page's rendering alone."""
    from grasp_semantics.inference.visual_inputs import load_visuals

    scene = Image.open(scene_png)
    pdf = tmp_path / "scan.pdf"
    scene.save(
        pdf, save_all=True, append_images=[Image.new("RGB", scene.size, "white")], resolution=144.0
    )
    result = run_json(["--image", str(pdf), "--task", "ocr"], tmp_path / "pdf.json", capsys)
    assert [p["page"] for p in result["pages"]] == [1, 2]
    assert [i["kind"] for i in result["inputs"]] == ["pdf_page", "pdf_page"]
    assert result["answer"] == "\n\n".join(p["answer"] for p in result["pages"])
    assert result["confidence"] == min(p["confidence"] for p in result["pages"])
    page_png = tmp_path / "page1.png"
    Image.fromarray(load_visuals(str(pdf), page=1)[0].frames[0]).save(page_png)
    alone = run_json(["--image", str(page_png), "--task", "ocr"], tmp_path / "p1.json", capsys)
    assert result["pages"][0]["answer"] == alone["answer"]
    second = run_json(
        ["--image", str(pdf), "--page", "2", "--task", "ocr"], tmp_path / "p2.json", capsys
    )
    assert second["pages"] == [result["pages"][1]]


def test_the_tiny_default_takes_two_images_as_views_and_refuses_video(scene_png, tmp_path, capsys):
    from test_describe_inputs import write_clip

    blank = tmp_path / "blank.png"
    Image.new("RGB", (320, 240), "white").save(blank)
    both = ["--image", str(scene_png), "--image", str(blank)]
    result = run_json(
        [*both, "--task", "vqa", "--prompt", "How many objects are on the table?"],
        tmp_path / "two.json",
        capsys,
    )
    assert [i["source"] for i in result["inputs"]] == [str(scene_png), str(blank)]
    assert result["answer"]
    code = main(["describe", *both, "--task", "ocr", "--device", "cpu"])
    assert code == 2 and "one image at a time" in capsys.readouterr().err
    clip = tmp_path / "clip.mp4"
    write_clip(clip)
    code = main(["describe", "--image", str(clip), "--task", "caption", "--device", "cpu"])
    assert code == 2 and "does not take video" in capsys.readouterr().err


@pytest.mark.slow
def test_each_new_input_answers_through_the_qwen3_vl_architecture(
    scene_png, server, tmp_path, capsys
):
    """A URL, a PDF, two images, a clip and a folder of frames through a small random-weight
    Qwen3-VL (the real architecture and processor path, full vocabulary) on CPU."""
    from test_describe_inputs import write_clip, write_pdf

    server.routes["/scene.png"] = (200, "image/png", scene_png.read_bytes(), True)
    pdf, clip, frames = tmp_path / "doc.pdf", tmp_path / "clip.mp4", tmp_path / "frames"
    write_pdf(pdf, [(255, 0, 0), (0, 0, 255)])
    write_clip(clip)
    frames.mkdir()
    for i in range(6):
        Image.new("RGB", (80, 64), (40 * i, 0, 0)).save(frames / f"{i}.png")
    model = ["--model", "debug_qwen3_vl", "--max-new-tokens", "4"]
    cases = {
        "url": ["--image", server.url("/scene.png"), "--task", "caption"],
        "pdf": ["--image", str(pdf), "--task", "ocr"],
        "two": ["--image", str(scene_png), "--image", str(pdf.with_suffix(".png")), "--task",
                "vqa", "--prompt", "What differs?"],
        "video": ["--image", str(clip), "--task", "caption", "--fps", "2"],
        "frames": ["--image", str(frames), "--task", "caption"],
    }  # fmt: skip
    Image.new("RGB", (64, 48), "blue").save(pdf.with_suffix(".png"))
    kinds = {}
    for name, args in cases.items():
        result = run_json([*model, *args], tmp_path / f"{name}.json", capsys)
        assert isinstance(result["answer"], str) and 0 < result["confidence"] <= 1
        assert result["timing_ms"]["generate"] > 0
        kinds[name] = [(i["kind"], i.get("frames")) for i in result["inputs"]]
    assert kinds["pdf"] == [("pdf_page", None), ("pdf_page", None)]
    assert kinds["two"] == [("image", None), ("image", None)]
    assert kinds["video"] == [("video", 6)] and kinds["frames"] == [("video", 6)]
