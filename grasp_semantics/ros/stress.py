"""``grasp-semantics stress``: generated malformed (and valid) input against a node subprocess.

    grasp-semantics stress [--messages 1000] [--seed 0] [--valid-every 50] [--json PATH]

Hypothesis draws each message's recipe over the fields of the node's inputs: the ``points``,
``image``, ``camera_info`` and ``instruction`` topics, header stamps, and the ``~/predict`` and
``~/describe`` services (random bytes read as float32 clouds, 1e20 or float32-max coordinates,
``is_bigendian`` flags, wrong point_step / row_step / field offsets / datatypes / counts,
truncated data, 0x0 images, wrong encodings and steps, absurd camera_info K, instructions with
NUL, control characters, huge or unusual text, far-future and backwards stamps, service requests
that declare sizes with empty data). A bad image or cloud travels with a good partner of the
same stamp, so the pair reaches the predictor; a bad camera_info or instruction is followed by a
good pair. Recipes are drawn first (seeded, reproducible), messages are built when sent, from a
held-out scene of the demo's sample bag reduced to every 4th pixel and 5,000 of its points (tens
of kB, which this machine's transport delivers to the node's best-effort subscriptions; a
full-size pair, ~1.4 MB, mostly does not arrive there: see ``SceneInputs.reduced``).

Each message's outcome is named from what the node does, seen from outside:

- ``predicted`` / ``predicted_with_warning``: a prediction with the message's stamp came (the
  node logged a warning meanwhile); for a service, ``success`` true;
- ``accepted`` / ``accepted_altered``: an instruction the next prediction carries as sent / in
  another form (e.g. cut at a NUL);
- ``rejected``: the node logged an error or counted a rejected input on ``/diagnostics`` (the
  text is kept), or the service answered ``success`` false with a message;
- ``warned``: no prediction, but a warning logged; ``ignored``: no reaction within
  ``--timeout``; ``no_response``: a service call unanswered within ``--service-timeout``;
- ``process_died``: the node exited (exit code and last exception of its log kept);
- ``worker_dead`` / ``locked_out``: after the message a good pair (a probe, sent after every
  ignored message and every stamp message) was ignored / refused: the node lives but no longer
  predicts.

A valid pair of a held-out scene at full size (640x480, its whole cloud) follows every
``--valid-every`` messages; each must be answered. After a death or a failed valid pair or
probe the node is restarted, so one fault does not hide the rest. The run is bounded by
``--messages``, ``--max-minutes`` and ``--max-restarts`` and always stops the node. The JSON
report has counts per outcome and per kind, deaths, restarts, valid pairs answered, the
messages whose outcome differs from what their kind calls for (``unexpected``), and every
message's outcome.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rcl_interfaces.msg import Log
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import String

from grasp_semantics.ros.harness import (
    NodeProcess,
    Peer,
    SceneInputs,
    add_node_arguments,
    default_domain_id,
    header_at,
    held_out_scenes,
    isolate_ros,
    last_exception,
    now_ns,
    parse_parameters,
    prediction_for,
    publish_pair,
)
from grasp_semantics.srv import DescribeScene, PredictGrasps

FLOAT32_MAX = float(np.finfo(np.float32).max)
EXTREME = (1e20, -1e20, FLOAT32_MAX, -FLOAT32_MAX, 1e30, 3e38, 1e10, 1e6, 1e-45, -0.0)
ABSURD_K = (1e30, 1e-30, 0.0, -1.0, math.nan, math.inf, 1e20, -1e20)
CONTROL = ("\x00", "\x01", "\x07", "\x1b", "\x7f", "\n", "\t", "\u2028", "\x85")
ODD_TEXT = ("🔪🥄", "سكين", "cafe\u0301", "刀", "\u200b", "\ufeff", "𝔨𝔫𝔦𝔣𝔢", "\U0010ffff")
ENCODINGS_REFUSED = ("", "16UC1", "32FC1", "mono16", "nonsense", "RGB8", "rgb")
ENCODINGS_OTHER = ("bgr8", "rgba8", "mono8", "bayer_rggb8", "yuv422", "8UC3", "rgb16")
# stamp gap between messages: more than the node's default slop_s (0.05 s), so a message's
# leftover image or cloud never pairs with the next one's
SPACING_NS = 100_000_000
OUTCOMES = (
    "predicted", "predicted_with_warning", "accepted", "accepted_with_warning",
    "accepted_altered", "answered", "rejected", "warned", "ignored", "no_response",
    "unsendable", "process_died", "worker_dead", "locked_out",
)  # fmt: skip
# outcomes that are never right, whatever the input
FAILURES = ("process_died", "worker_dead", "locked_out", "no_response")
SILENT = ("predicted", "accepted", "accepted_altered", "answered", "ignored", "unsendable")
PREDICTED = (
    "predicted", "predicted_with_warning", "accepted", "accepted_with_warning", "answered"
)  # fmt: skip


# ------------------------------------------------------------------------------ recipes
@dataclass(frozen=True)
class Kind:
    """A family of messages: the topic or service it goes to, how its parameters are drawn,
    and what a correct node does with it (``expect(params)``: 'predicted' = must be served,
    'not_silent' = must be rejected or warned about, 'any' = either is defensible)."""

    name: str
    target: str
    draw: Callable[[Any], dict[str, Any]]
    expect: Callable[[dict[str, Any]], str]
    probe: bool = False  # send a good pair after it (damage may show only on later input)


KINDS: dict[str, Kind] = {}


def kind(target: str, expect: Callable[[dict], str] | str = "any", probe: bool = False):
    """Register a draw function (``draw(data) -> params``) as a message kind."""

    def register(draw: Callable[[Any], dict[str, Any]]) -> Callable:
        name = draw.__name__
        rule = expect if callable(expect) else (lambda _p, e=expect: e)
        KINDS[name] = Kind(name, target, draw, rule, probe)
        return draw

    return register


def _st() -> Any:
    from hypothesis import strategies as st

    return st


def _seed(data: Any) -> int:
    return data.draw(_st().integers(0, 2**32 - 1), label="seed")


# points: drawn parameters; the message is built in build_cloud
@kind("points", "not_silent")
def cloud_random_bytes(data: Any) -> dict:
    st = _st()
    return {"points": data.draw(st.integers(0, 20000)), "extra_bytes": data.draw(
        st.integers(0, 11)), "seed": _seed(data)}  # fmt: skip


def _extreme_expect(p: dict) -> str:
    value = p["value"]
    return "not_silent" if math.isfinite(value) and abs(value) >= 1e10 else "any"


@kind("points", _extreme_expect)
def cloud_extreme_coords(data: Any) -> dict:
    st = _st()
    value = data.draw(st.one_of(st.sampled_from(EXTREME), st.floats(width=32)))
    return {"value": value, "count": data.draw(st.integers(1, 5000)),
            "axis": data.draw(st.sampled_from((0, 1, 2, -1))), "seed": _seed(data)}  # fmt: skip


@kind("points", lambda p: "not_silent" if p["fraction"] >= 1.0 else "any")
def cloud_nonfinite(data: Any) -> dict:
    st = _st()
    fraction = data.draw(st.one_of(st.just(1.0), st.floats(0.0, 1.0)))
    return {"fraction": fraction, "value": data.draw(st.sampled_from(("nan", "inf", "-inf"))),
            "seed": _seed(data)}  # fmt: skip


@kind("points")
def cloud_bigendian(data: Any) -> dict:
    return {}


def _layout_valid(p: dict) -> bool:
    """PointCloud2's own rules (not the node's): fields fit the point, rows fit row_step,
    the data holds every row, at least one point."""
    width, height, point_step, row_step, size = (
        p["width"], p["height"], p["point_step"], p["row_step"], p["data_bytes"],
    )  # fmt: skip
    return (
        width * height > 0
        and point_step >= 12
        and row_step >= width * point_step
        and size >= row_step * (height - 1) + width * point_step
    )


@kind("points", lambda p: "any" if _layout_valid(p) else "not_silent")
def cloud_bad_layout(data: Any) -> dict:
    st = _st()
    n = 4000
    point_step = data.draw(st.sampled_from((0, 1, 4, 8, 11, 12, 13, 16, 4096, 2**32 - 1)))
    width = data.draw(st.sampled_from((n, 0, n + 1, n // 2, 2**31, 2**32 - 1)))
    height = data.draw(st.sampled_from((1, 0, 2, 1000, 2**32 - 1)))
    row_step = data.draw(st.sampled_from(("packed", 0, "short", "long", 2**32 - 1)))
    packed = (width * point_step) % 2**32
    row_step = {"packed": packed, "short": max(packed - 1, 0), "long": packed + 7}.get(
        row_step, row_step
    )
    return {"width": width, "height": height, "point_step": point_step,
            "row_step": min(row_step, 2**32 - 1), "data_bytes": n * 12}  # fmt: skip


def _fields_expect(p: dict) -> str:
    change, value = p["change"], p["value"]
    if change in ("rename", "drop", "none") or (change == "count" and value == 0):
        return "not_silent"
    if change == "datatype" and not 1 <= value <= 8:
        return "not_silent"
    if change == "offset" and value + 4 > 12:
        return "not_silent"
    return "any"


@kind("points", _fields_expect)
def cloud_bad_fields(data: Any) -> dict:
    st = _st()
    change = data.draw(
        st.sampled_from(("offset", "datatype", "count", "rename", "drop", "duplicate", "none"))
    )
    value = {
        "offset": st.sampled_from((1, 2, 8, 9, 11, 12, 100, 2**32 - 1)),
        "datatype": st.integers(0, 255),
        "count": st.sampled_from((0, 2, 3, 2**32 - 1)),
    }.get(change, st.just(0))
    return {"change": change, "field": data.draw(st.sampled_from("xyz")),
            "value": data.draw(value)}  # fmt: skip


@kind("points", "not_silent")
def cloud_truncated(data: Any) -> dict:
    st = _st()
    return {"keep": data.draw(st.floats(0.0, 0.999)), "organised": data.draw(st.booleans())}


@kind("points", "not_silent")
def cloud_empty(data: Any) -> dict:
    st = _st()
    return {"width": data.draw(st.sampled_from((0, 100))),
            "height": data.draw(st.sampled_from((0, 1))),
            "with_data": data.draw(st.booleans())}  # fmt: skip


@kind("points")
def cloud_degenerate(data: Any) -> dict:
    st = _st()
    return {"points": data.draw(st.sampled_from((1, 2, 3, 4, 8, 32, 200, 3000))),
            "shape": data.draw(st.sampled_from(("same", "line", "tiny", "plane", "far"))),
            "seed": _seed(data)}  # fmt: skip


@kind("points", "predicted")
def cloud_organised(data: Any) -> dict:
    st = _st()
    return {"width": data.draw(st.sampled_from((64, 160, 640))),
            "holes": data.draw(st.floats(0.0, 0.5)), "seed": _seed(data)}  # fmt: skip


# image
@kind("image", "not_silent")
def image_empty(data: Any) -> dict:
    st = _st()
    dims = data.draw(st.sampled_from(("0x0", "Wx0", "0xH")))
    return {"dims": dims, "with_data": data.draw(st.booleans())}


@kind("image", lambda p: "not_silent" if p["encoding"] in ENCODINGS_REFUSED else "any")
def image_encoding(data: Any) -> dict:
    st = _st()
    encoding = data.draw(
        st.one_of(st.sampled_from(ENCODINGS_REFUSED + ENCODINGS_OTHER), st.text(max_size=12))
    )
    return {"encoding": encoding}


@kind("image", "not_silent")
def image_bad_step(data: Any) -> dict:
    return {"step": data.draw(_st().sampled_from((0, 1, "row-1", "row+1", 2**32 - 1)))}


@kind("image", "not_silent")
def image_truncated(data: Any) -> dict:
    return {"keep": data.draw(_st().floats(0.0, 0.999))}


@kind("image", lambda p: "any" if p["bytes"] >= p["height"] * p["width"] * 3 else "not_silent")
def image_random_bytes(data: Any) -> dict:
    st = _st()
    height, width = data.draw(st.integers(1, 1024)), data.draw(st.integers(1, 1024))
    size = data.draw(st.one_of(st.just(height * width * 3), st.integers(0, 3 * 1024 * 1024)))
    return {"height": height, "width": width, "bytes": size, "seed": _seed(data)}


@kind("image")
def image_size_mismatch(data: Any) -> dict:
    st = _st()
    return {"height": data.draw(st.integers(16, 200)), "width": data.draw(st.integers(16, 200))}


@kind("image", "predicted")
def image_bigendian(data: Any) -> dict:
    return {}


# camera_info
def _k_expect(p: dict) -> str:
    k = k_of(p)
    if not all(math.isfinite(v) for v in k) or k[8] != 1.0:
        return "not_silent"
    if not (1e-3 < k[0] < 1e7 and 1e-3 < k[4] < 1e7) or abs(k[1]) >= 1e7:
        return "not_silent"
    return "any" if max(abs(k[2]), abs(k[5])) < 1e7 else "not_silent"


@kind("camera_info", _k_expect)
def camera_info_absurd_k(data: Any) -> dict:
    st = _st()
    changes = data.draw(
        st.dictionaries(
            st.sampled_from((0, 1, 2, 4, 5, 8)), st.sampled_from(ABSURD_K), min_size=1, max_size=3
        )
    )
    return {"changes": {str(i): v for i, v in sorted(changes.items())}}


@kind("camera_info")
def camera_info_garbage(data: Any) -> dict:
    st = _st()
    return {"size": data.draw(st.sampled_from(("same", "0x0", "half", "huge"))),
            "d": data.draw(st.lists(st.floats(width=64), max_size=16)),
            "model": data.draw(st.text(max_size=20))}  # fmt: skip


# instruction
@kind("instruction")
def instruction_text(data: Any) -> dict:
    return {"text": data.draw(_st().text(max_size=300))}


@kind("instruction", "not_silent")
def instruction_control(data: Any) -> dict:
    st = _st()
    return {"char": data.draw(st.sampled_from(CONTROL)), "at": data.draw(st.floats(0.0, 1.0))}


@kind("instruction", "not_silent")
def instruction_huge(data: Any) -> dict:
    return {"length": data.draw(_st().sampled_from((513, 4096, 100_000, 1_000_000)))}


@kind("instruction", "not_silent")
def instruction_blank(data: Any) -> dict:
    return {"text": data.draw(_st().sampled_from(("", " ", "\t\n ", "\u3000")))}


@kind("instruction")
def instruction_unicode(data: Any) -> dict:
    return {"suffix": data.draw(_st().sampled_from(ODD_TEXT))}


# stamps of an otherwise good pair
@kind("stamp", probe=True)
def stamp_far_future(data: Any) -> dict:
    return {"sec": data.draw(_st().integers(2_000_000_000, 2**31 - 1))}


@kind("stamp", probe=True)
def stamp_backwards(data: Any) -> dict:
    return {"sec": data.draw(_st().integers(0, 1_600_000_000))}


@kind("stamp", probe=True)
def stamp_bad_nanosec(data: Any) -> dict:
    return {"nanosec": data.draw(_st().integers(1_000_000_000, 2**32 - 1))}


@kind("stamp")
def stamp_mismatch(data: Any) -> dict:
    return {"gap_ms": data.draw(_st().integers(100, 10_000))}


# services
@kind("predict", "not_silent")
def predict_empty_declared(data: Any) -> dict:
    st = _st()
    return {"which": data.draw(st.sampled_from(("image", "cloud", "both"))),
            "dims": data.draw(st.sampled_from(("80x64", "0x0")))}  # fmt: skip


def _inner_expect(p: dict) -> str:
    return KINDS[p["inner"]].expect(p["params"])


@kind("predict", _inner_expect)
def predict_bad_input(data: Any) -> dict:
    st = _st()
    inner = data.draw(st.sampled_from(
        [k.name for k in KINDS.values() if k.target in ("points", "image", "camera_info")]
    ))  # fmt: skip
    return {"inner": inner, "params": KINDS[inner].draw(data)}


@kind("predict", lambda p: "not_silent" if p["instruction"] in ("nul", "huge") else "any")
def predict_bad_fields(data: Any) -> dict:
    st = _st()
    return {
        "max_grasps": data.draw(st.sampled_from((0, 1, 200, 201, 2**32 - 1))),
        "instruction": data.draw(st.sampled_from(("", "scene", "nul", "huge", "odd"))),
    }


@kind("predict", "predicted")
def predict_valid(data: Any) -> dict:
    return {}


def _describe_expect(p: dict) -> str:
    if p["task"] in ("caption", "ocr", "vqa") and p["image"] in ("latest", "valid"):
        return "predicted" if p["prompt"] in ("none", "short") else "any"
    return "not_silent" if p["image"] == "empty_declared" else "any"


@kind("describe", _describe_expect)
def describe_request(data: Any) -> dict:
    st = _st()
    return {
        "task": data.draw(st.sampled_from(("caption", "ocr", "vqa", "", "CAPTION", "x"))),
        "prompt": data.draw(st.sampled_from(("none", "short", "nul", "huge", "odd"))),
        "image": data.draw(st.sampled_from(("latest", "valid", "empty_declared", "random"))),
    }


def case_strategy() -> Any:
    """A message recipe: ``(kind name, params)``, drawn by Hypothesis."""
    st = _st()

    @st.composite
    def recipe(draw: Any) -> tuple[str, dict[str, Any]]:
        name = draw(st.sampled_from(sorted(KINDS)))
        return name, KINDS[name].draw(_Draw(draw))

    return recipe()


class _Draw:
    """``data.draw(strategy, label=...)`` on top of a composite's ``draw``."""

    def __init__(self, draw: Any) -> None:
        self._draw = draw

    def draw(self, strategy: Any, label: str | None = None) -> Any:
        return self._draw(strategy)


def generate_recipes(count: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """``count`` recipes, the same for the same seed (and Hypothesis version)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as with_seed

    recipes: list[tuple[str, dict[str, Any]]] = []
    for attempt in range(20):  # Hypothesis may stop early (it skips repeats): draw again
        wanted = count - len(recipes)
        if wanted <= 0:
            break

        @with_seed(seed + attempt)
        @settings(max_examples=wanted, database=None, phases=[Phase.generate], deadline=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case_strategy())
        def collect(recipe: tuple[str, dict[str, Any]]) -> None:
            if len(recipes) < count:
                recipes.append(recipe)

        collect()
    return recipes


# ------------------------------------------------------------------------------ messages
def raw_cloud(
    ns: int, data: bytes, width: int, height: int = 1, point_step: int = 12,
    row_step: int | None = None, fields: list[PointField] | None = None,
    bigendian: bool = False,
) -> PointCloud2:  # fmt: skip
    """A PointCloud2 exactly as given, consistent or not."""
    msg = PointCloud2(header=header_at(ns), height=height, width=width)
    msg.fields = fields if fields is not None else xyz_fields()
    msg.is_bigendian = bigendian
    msg.point_step = point_step
    msg.row_step = width * point_step if row_step is None else row_step
    msg.data = data
    msg.is_dense = False
    return msg


def xyz_fields(offsets: tuple[int, int, int] = (0, 4, 8)) -> list[PointField]:
    return [
        PointField(name=n, offset=o, datatype=PointField.FLOAT32, count=1)
        for n, o in zip("xyz", offsets, strict=True)
    ]


def build_cloud(name: str, p: dict, scene: SceneInputs, ns: int) -> PointCloud2:
    """The cloud of a ``points`` kind."""
    points = scene.points
    n = len(points)
    rng = np.random.default_rng(p.get("seed", 0))
    if name == "cloud_random_bytes":
        return raw_cloud(ns, rng.bytes(p["points"] * 12 + p["extra_bytes"]), p["points"])
    if name == "cloud_extreme_coords":
        bad = points.copy()
        rows = rng.choice(n, size=min(p["count"], n), replace=False)
        bad[rows, slice(None) if p["axis"] < 0 else p["axis"]] = np.float32(p["value"])
        return scene.cloud(ns, bad)
    if name == "cloud_nonfinite":
        bad = points.copy()
        rows = rng.random(n) < p["fraction"] if p["fraction"] < 1.0 else slice(None)
        bad[rows] = np.float32(p["value"])
        return scene.cloud(ns, bad)
    if name == "cloud_bigendian":
        msg = scene.cloud(ns)
        msg.is_bigendian = True
        return msg
    if name == "cloud_bad_layout":
        data = points[: p["data_bytes"] // 12].tobytes()
        return raw_cloud(
            ns, data, p["width"], p["height"], p["point_step"], p["row_step"]
        )  # fmt: skip
    if name == "cloud_bad_fields":
        fields = xyz_fields()
        index = "xyz".index(p["field"])
        change, value = p["change"], p["value"]
        if change in ("offset", "datatype", "count"):
            setattr(fields[index], change, value)
        elif change == "rename":
            fields[index].name = p["field"].upper()
        elif change == "drop":
            del fields[index]
        elif change == "duplicate":
            fields.append(PointField(name=p["field"], offset=0, datatype=7, count=1))
        else:
            fields = []
        return raw_cloud(ns, points.tobytes(), n, fields=fields)
    if name == "cloud_truncated":
        width, height = (n, 1) if not p["organised"] else (n // 10, 10)
        data = points[: width * height].tobytes()
        return raw_cloud(ns, data[: int(len(data) * p["keep"])], width, height)
    if name == "cloud_empty":
        data = points[: p["width"] or 100].tobytes() if p["with_data"] else b""
        return raw_cloud(ns, data, p["width"], p["height"])
    if name == "cloud_degenerate":
        centre = points.mean(axis=0)
        k = p["points"]
        shape = p["shape"]
        if shape == "same":
            bad = np.repeat(centre[None], k, 0)
        elif shape == "line":
            bad = centre + np.linspace(-0.05, 0.05, k)[:, None] * np.array([1.0, 0.0, 0.0])
        elif shape == "tiny":
            bad = centre + rng.normal(scale=1e-9, size=(k, 3))
        elif shape == "plane":
            bad = centre + np.c_[rng.uniform(-0.1, 0.1, (k, 2)), np.zeros(k)]
        else:  # "far": a real scene's shape 1 km away
            bad = points[rng.choice(n, size=min(k, n), replace=False)] + [0.0, 0.0, 1000.0]
        return scene.cloud(ns, np.asarray(bad, np.float32))
    if name == "cloud_organised":
        width = p["width"]
        height = -(-n // width)
        grid = np.full((height * width, 3), np.nan, np.float32)
        grid[:n] = points
        grid[rng.random(len(grid)) < p["holes"]] = np.nan
        msg = scene.cloud(ns, grid)
        msg.height, msg.width, msg.row_step = height, width, width * 12
        return msg
    raise ValueError(f"not a cloud kind: {name}")


def build_image(name: str, p: dict, scene: SceneInputs, ns: int) -> Image:
    """The image of an ``image`` kind."""
    msg = scene.image(ns)
    height, width = scene.rgb.shape[:2]
    row = width * 3
    if name == "image_empty":
        msg.width = 0 if p["dims"] in ("0x0", "0xH") else width
        msg.height = 0 if p["dims"] in ("0x0", "Wx0") else height
        msg.step = msg.width * 3
        if not p["with_data"]:
            msg.data = b""
    elif name == "image_encoding":
        msg.encoding = p["encoding"]
    elif name == "image_bad_step":
        step = p["step"]
        msg.step = {"row-1": row - 1, "row+1": row + 1}.get(step, step)
    elif name == "image_truncated":
        msg.data = bytes(msg.data)[: int(height * row * p["keep"])]
    elif name == "image_random_bytes":
        rng = np.random.default_rng(p["seed"])
        msg.height, msg.width, msg.step = p["height"], p["width"], p["width"] * 3
        msg.data = rng.bytes(p["bytes"])
    elif name == "image_size_mismatch":
        msg = scene.image(ns, np.ascontiguousarray(scene.rgb[: p["height"], : p["width"]]))
    elif name == "image_bigendian":
        msg.is_bigendian = 1
    else:
        raise ValueError(f"not an image kind: {name}")
    return msg


def build_camera_info(name: str, p: dict, scene: SceneInputs, ns: int) -> CameraInfo:
    """The camera_info of a ``camera_info`` kind."""
    info = scene.camera_info(ns)
    if name == "camera_info_absurd_k":
        k = list(info.k)
        for index, value in p["changes"].items():
            k[int(index)] = value
        info.k = k
    elif name == "camera_info_garbage":
        h, w = scene.rgb.shape[:2]
        info.height, info.width = {
            "same": (h, w), "0x0": (0, 0), "half": (h // 2, w // 2), "huge": (2**31, 2**31),
        }[p["size"]]  # fmt: skip
        info.d = p["d"]
        info.distortion_model = p["model"]
    else:
        raise ValueError(f"not a camera_info kind: {name}")
    return info


def k_of(p: dict) -> list[float]:
    """The K a ``camera_info_absurd_k`` recipe makes of a typical camera (for ``expect``)."""
    k = [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]
    for index, value in p["changes"].items():
        k[int(index)] = value
    return k


def build_instruction(name: str, p: dict, scene: SceneInputs) -> str:
    """The text of an ``instruction`` kind."""
    base = scene.instruction
    if name in ("instruction_text", "instruction_blank"):
        return p["text"]
    if name == "instruction_control":
        at = int(len(base) * p["at"])
        return base[:at] + p["char"] + base[at:]
    if name == "instruction_huge":
        return (base + " ") * (p["length"] // (len(base) + 1)) + base[: p["length"] % (
            len(base) + 1)]  # fmt: skip
    if name == "instruction_unicode":
        return f"{base} {p['suffix']}"
    raise ValueError(f"not an instruction kind: {name}")


def service_instruction(choice: str, scene: SceneInputs) -> str:
    return {
        "": "", "scene": scene.instruction, "nul": scene.instruction + "\x00 and the fork",
        "huge": scene.instruction * 2000, "odd": scene.instruction + " 🔪",
    }[choice]  # fmt: skip


def build_request(name: str, p: dict, scene: SceneInputs, ns: int) -> Any:
    """The request of a ``predict`` or ``describe`` kind."""
    if name == "describe_request":
        request = DescribeScene.Request(task=p["task"])
        request.prompt = {
            "none": "", "short": "what is on the table?", "nul": "what\x00 is it",
            "huge": "what " * 20000, "odd": "¿qué es? 🔪",
        }[p["prompt"]]  # fmt: skip
        if p["image"] == "valid":
            request.image = scene.image(ns)
        elif p["image"] == "empty_declared":
            request.image = scene.image(ns)
            request.image.data = b""
        elif p["image"] == "random":
            request.image = build_image("image_random_bytes", {
                "height": 64, "width": 80, "bytes": 64 * 80 * 3, "seed": ns % 2**32,
            }, scene, ns)  # fmt: skip
        return request
    request = PredictGrasps.Request(
        image=scene.image(ns), cloud=scene.cloud(ns), camera_info=scene.camera_info(ns)
    )
    request.instruction = scene.instruction
    if name == "predict_empty_declared":
        height, width = (64, 80) if p["dims"] == "80x64" else (0, 0)
        if p["which"] in ("image", "both"):
            request.image = Image(header=header_at(ns), height=height, width=width)
            request.image.encoding, request.image.step = "rgb8", width * 3
        if p["which"] in ("cloud", "both"):
            request.cloud = raw_cloud(ns, b"", width * height)
    elif name == "predict_bad_input":
        inner, params = p["inner"], p["params"]
        target = KINDS[inner].target
        if target == "points":
            request.cloud = build_cloud(inner, params, scene, ns)
        elif target == "image":
            request.image = build_image(inner, params, scene, ns)
        else:
            request.camera_info = build_camera_info(inner, params, scene, ns)
    elif name == "predict_bad_fields":
        request.max_grasps = p["max_grasps"]
        request.instruction = service_instruction(p["instruction"], scene)
    elif name != "predict_valid":
        raise ValueError(f"not a service kind: {name}")
    return request


def stamp_pair(
    name: str, p: dict, scene: SceneInputs, ns: int
) -> tuple[dict[str, Any], int]:  # fmt: skip
    """A good image and cloud with the stamps of a ``stamp`` kind, and the cloud's stamp."""
    cloud_ns = image_ns = ns
    if name in ("stamp_far_future", "stamp_backwards"):
        cloud_ns = image_ns = p["sec"] * 1_000_000_000
    elif name == "stamp_mismatch":
        image_ns = ns - p["gap_ms"] * 1_000_000
    cloud, image = scene.cloud(cloud_ns), scene.image(image_ns)
    if name == "stamp_bad_nanosec":
        cloud.header.stamp.nanosec = image.header.stamp.nanosec = p["nanosec"]
        cloud_ns = cloud.header.stamp.sec * 1_000_000_000 + p["nanosec"]
    return {"cloud": cloud, "image": image}, cloud_ns


def build(name: str, p: dict, scene: SceneInputs, ns: int) -> Any:
    """What a recipe sends, by its target: a cloud, an image, a camera_info, an instruction's
    text, ``(image and cloud, cloud stamp)`` for a stamp kind, or a service request."""
    target = KINDS[name].target
    builders: dict[str, Callable[[], Any]] = {
        "points": lambda: build_cloud(name, p, scene, ns),
        "image": lambda: build_image(name, p, scene, ns),
        "camera_info": lambda: build_camera_info(name, p, scene, ns),
        "instruction": lambda: build_instruction(name, p, scene),
        "stamp": lambda: stamp_pair(name, p, scene, ns),
    }
    return builders.get(target, lambda: build_request(name, p, scene, ns))()


# ------------------------------------------------------------------------------- running
@dataclass
class Settings:
    messages: int = 1000
    seed: int = 0
    valid_every: int = 50
    timeout_s: float = 3.0
    valid_timeout_s: float = 30.0
    service_timeout_s: float = 30.0
    start_timeout_s: float = 180.0
    max_minutes: float = 60.0
    max_restarts: int = 100
    scenes: int = 3
    parameters: dict[str, Any] = field(default_factory=dict)
    domain_id: int | None = None
    log_path: Path | None = None


class Stress:
    """One run: the node subprocess, the peer, the recipes, the record."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.parameters = {"max_rate_hz": 0.0, **settings.parameters}
        self.domain_id = settings.domain_id or default_domain_id()
        env = isolate_ros(self.domain_id)
        log_path = settings.log_path or Path(tempfile.mkdtemp(prefix="stress_")) / "node.log"
        self.process = NodeProcess(self.parameters, log_path, env)
        self.peer: Peer | None = None
        self.full: list[SceneInputs] = []  # held-out scenes, as a camera sends them
        self.small: list[SceneInputs] = []  # the same reduced: what generated messages use
        self.scene_index = -1
        self.scene: SceneInputs | None = None
        self.last_ns = 0
        self.instruction_sent = ""
        self.records: list[dict[str, Any]] = []
        self.valid: list[dict[str, Any]] = []
        self.restarts: list[dict[str, Any]] = []
        self.worker_reports: list[str] = []
        self._pause = threading.Event()  # never set: bounded pacing waits

    # ------------------------------------------------------------------------ node control
    def start_node(self) -> None:
        self.process.start()
        assert self.peer is not None
        self.peer.wait_ready(self.process, self.settings.start_timeout_s)
        self.instruction_sent = ""

    def restart(self, reason: str, index: int) -> None:
        code = self.process.stop()
        self.restarts.append({"after_message": index, "reason": reason, "exit_code": code})
        self.start_node()
        if self.scene is not None:  # the instruction latched last may be a bad one
            self.send_instruction(self.scene.instruction)

    def next_stamp(self) -> int:
        """Now, at least SPACING_NS after the previous message's stamp (waiting for it)."""
        wait_ns = self.last_ns + SPACING_NS - now_ns()
        if wait_ns > 0:
            self._pause.wait(wait_ns / 1e9)
        self.last_ns = max(now_ns(), self.last_ns + SPACING_NS)
        return self.last_ns

    # ---------------------------------------------------------------------------- observe
    def mark(self) -> tuple[int, int, int]:
        peer = self.peer
        assert peer is not None
        with peer.cond:
            return (len(peer.seen.predictions), len(peer.seen.logs), len(peer.seen.diagnostics))

    def logs_since(self, mark: tuple[int, int, int], level: int) -> list[str]:
        assert self.peer is not None
        with self.peer.cond:
            return [log.msg[:300] for log in self.peer.seen.logs[mark[1] :] if log.level >= level]

    def _counted_rejection(self, mark: tuple[int, int, int]) -> str | None:
        """``last_error`` of the diagnostics when ``rejected_inputs`` rose since ``mark``."""
        assert self.peer is not None
        diagnostics = self.peer.seen.diagnostics
        if mark[2] and len(diagnostics) > mark[2]:
            before = diagnostics[mark[2] - 1].values.get("rejected_inputs", "")
            after = diagnostics[-1].values.get("rejected_inputs", "")
            if before.isdigit() and after.isdigit() and int(after) > int(before):
                return diagnostics[-1].values.get("last_error", "")[:300] or "rejected"
        return None

    def _logged_errors(self, mark: tuple[int, int, int]) -> list[str]:
        assert self.peer is not None
        return [log.msg for log in self.peer.seen.logs[mark[1] :] if log.level >= Log.ERROR]

    def rejected_since(self, mark: tuple[int, int, int]) -> str | None:
        """The node's error text if it counted a rejected input (the text its diagnostics
        carry with the count) or logged an error since ``mark`` (call under ``peer.cond``)."""
        counted = self._counted_rejection(mark)
        if counted:
            return counted
        errors = self._logged_errors(mark)
        return errors[-1][:300] if errors else None

    def settle(self, mark: tuple[int, int, int], timeout_s: float = 1.0) -> None:
        """After a rejection seen on one channel, wait (briefly) for it on the other (the node
        logs it and publishes diagnostics; either may arrive first), so that it is not taken
        for the next message's."""
        assert self.peer is not None
        with self.peer.cond:
            counted, logged = self._counted_rejection(mark), self._logged_errors(mark)
        if bool(counted) != bool(logged):
            self.peer.wait(
                lambda: bool(self._counted_rejection(mark)) and bool(self._logged_errors(mark)),
                timeout_s,
            )

    def watch_worker(self) -> None:
        """Keep what the node says on /diagnostics about its worker (a watchdog's report)."""
        assert self.peer is not None
        with self.peer.cond:
            for status in self.peer.seen.diagnostics[-20:]:
                text = f"{status.message} {status.values}"
                worker = status.level >= 2 and "worker" in text.lower()
                if worker and status.message[:300] not in self.worker_reports:
                    self.worker_reports.append(status.message[:300])

    # ------------------------------------------------------------------------------- send
    def send_instruction(self, text: str, timeout_s: float = 2.0) -> None:
        """Publish an instruction and give the node up to ``timeout_s`` to log taking or
        refusing it (it logs either), so the pair after it meets the new instruction."""
        peer = self.peer
        assert peer is not None
        mark = self.mark()
        peer.instruction.publish(String(data=text))
        self.instruction_sent = text
        peer.wait(lambda: len(peer.seen.logs) > mark[1], timeout_s, self.process)

    def send_valid(self, index: int, probe_for: str | None = None) -> dict[str, Any]:
        """A good pair that must be predicted: the next held-out scene at full size, or, as a
        probe after a message, the current scene reduced (the size the generated messages
        travel at, which this machine's transport delivers: see ``SceneInputs.reduced``)."""
        peer = self.peer
        assert peer is not None
        if probe_for is None:
            self.scene_index = (self.scene_index + 1) % len(self.full)
        self.scene = self.small[self.scene_index]
        pair = self.scene if probe_for else self.full[self.scene_index]
        if self.instruction_sent != pair.instruction:
            self.send_instruction(pair.instruction)
        ns = self.next_stamp()
        mark = self.mark()
        started = time.monotonic()
        publish_pair(peer, pair, ns)
        peer.wait(
            lambda: prediction_for(peer, ns) is not None or self.rejected_since(mark),
            self.settings.valid_timeout_s, self.process,
        )  # fmt: skip
        self.settle(mark)
        with peer.cond:
            refused = self.rejected_since(mark)
        if refused:  # perhaps a late reaction to the message before: wait a little longer
            peer.wait(lambda: prediction_for(peer, ns) is not None, self.settings.timeout_s,
                      self.process)  # fmt: skip
        with peer.cond:
            answered = prediction_for(peer, ns) is not None
        entry = {
            "after_message": index,
            "answered": answered,
            "seconds": round(time.monotonic() - started, 3),
        }
        if probe_for:
            entry["probe_for"] = probe_for
        if not answered:
            entry["reason"] = refused or "no reaction"
            if not self.process.alive():
                entry["reason"] = f"process died (exit code {self.process.returncode()})"
        self.valid.append(entry)
        return entry

    def warm_up(self, tries: int = 10) -> None:
        """Send reduced good pairs until one is predicted (the first prediction loads lazily
        held parts), so that a run starts from a node known to predict; not counted."""
        peer = self.peer
        assert peer is not None
        self.scene_index = 0
        self.scene = self.small[0]
        self.send_instruction(self.scene.instruction)
        for _ in range(tries):
            ns = self.next_stamp()
            publish_pair(peer, self.scene, ns)
            if peer.wait(lambda n=ns: prediction_for(peer, n) is not None,
                         self.settings.valid_timeout_s / tries, self.process):  # fmt: skip
                return
        raise RuntimeError(
            f"the node predicted none of {tries} good pairs at the start (log: "
            f"{self.process.log_path}): {last_exception(self.process.new_output())}"
        )

    def send_message(self, index: int, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send one recipe's message(s) and name the outcome."""
        target = KINDS[name].target
        if target in ("predict", "describe"):
            return self._send_service(name, params, target)
        mark = self.mark()
        try:
            return self._publish_and_classify(name, params, target, mark)
        except (TypeError, ValueError, AssertionError) as error:  # rclpy refused to publish it
            return {"outcome": "unsendable", "detail": f"{type(error).__name__}: {error}"[:300]}

    def _publish_and_classify(
        self, name: str, params: dict[str, Any], target: str, mark: tuple[int, int, int]
    ) -> dict[str, Any]:
        peer, scene = self.peer, self.scene
        assert peer is not None and scene is not None
        sent_text = None
        if target == "instruction":
            sent_text = build(name, params, scene, 0)
            self.send_instruction(sent_text)
        ns = self.next_stamp()
        overrides: dict[str, Any] = {}
        if target == "stamp":
            overrides, ns = build(name, params, scene, ns)
        elif target != "instruction":
            overrides[{"points": "cloud"}.get(target, target)] = build(name, params, scene, ns)
        publish_pair(peer, scene, ns, **overrides)
        peer.wait(
            lambda: prediction_for(peer, ns) is not None or self.rejected_since(mark),
            self.settings.timeout_s, self.process,
        )  # fmt: skip
        self.settle(mark)
        with peer.cond:
            prediction = prediction_for(peer, ns)
            refused = self.rejected_since(mark)
        warnings = self.logs_since(mark, Log.WARN)
        if sent_text is not None and refused:
            return {"outcome": "rejected", "detail": refused}
        if prediction is not None and sent_text is not None:
            if warnings:
                return {"outcome": "accepted_with_warning", "detail": warnings[-1]}
            if prediction.instruction == sent_text.strip():
                return {"outcome": "accepted", "detail": ""}
            return {"outcome": "accepted_altered",
                    "detail": f"used {prediction.instruction[:200]!r}"}  # fmt: skip
        if prediction is not None:
            if warnings:
                return {"outcome": "predicted_with_warning", "detail": warnings[-1]}
            return {"outcome": "predicted", "detail": ""}
        if refused:
            return {"outcome": "rejected", "detail": refused}
        if warnings:
            return {"outcome": "warned", "detail": warnings[-1]}
        with peer.cond:
            last = peer.seen.diagnostics[-1] if peer.seen.diagnostics else None
        detail = f"diagnostics level {last.level}: {last.message[:200]}" if last else ""
        return {"outcome": "ignored", "detail": detail}

    def _send_service(self, name: str, params: dict[str, Any], target: str) -> dict[str, Any]:
        peer, scene = self.peer, self.scene
        assert peer is not None and scene is not None
        request = build(name, params, scene, self.next_stamp())
        client = peer.predict if target == "predict" else peer.describe
        mark = self.mark()
        response = peer.call(client, request, self.settings.service_timeout_s, self.process)
        self.settle(mark)
        warnings = self.logs_since(mark, Log.WARN)
        if response is None:
            return {"outcome": "no_response", "detail": ""}
        if response.success:
            answered = "predicted" if target == "predict" else "answered"
            if warnings:
                return {"outcome": "predicted_with_warning", "detail": warnings[-1]}
            return {"outcome": answered, "detail": ""}
        return {"outcome": "rejected", "detail": response.message[:300]}

    # -------------------------------------------------------------------------------- run
    def run(self) -> dict[str, Any]:
        s = self.settings
        started = time.monotonic()
        recipes = generate_recipes(s.messages, s.seed)
        self.full = held_out_scenes(s.scenes)
        self.small = [scene.reduced() for scene in self.full]
        self.peer = Peer(self.domain_id)
        stopped_by = "done"
        try:
            self.start_node()
            self.warm_up()
            for index, (name, params) in enumerate(recipes):
                if time.monotonic() - started > 60 * s.max_minutes:
                    stopped_by = f"time limit ({s.max_minutes} min)"
                    break
                if len(self.restarts) > s.max_restarts:
                    stopped_by = f"restart limit ({s.max_restarts})"
                    break
                self.records.append(self._one(index, name, params))
                due = (index + 1) % s.valid_every == 0 or index == len(recipes) - 1
                if due and not self.send_valid(index)["answered"]:
                    self.restart("valid pair unanswered", index)
                self.watch_worker()
        finally:
            self.process.stop()
            self.peer.close()
        return self.report(time.monotonic() - started, stopped_by)

    def _one(self, index: int, name: str, params: dict[str, Any]) -> dict[str, Any]:
        kind_ = KINDS[name]
        result = self.send_message(index, name, params)
        output = self.process.new_output()
        if not self.process.alive():
            code = self.process.returncode()
            result = {
                "outcome": "process_died",
                "detail": f"exit code {code}: {last_exception(output)}",
                "reaction": result["outcome"],
            }
            self.restart("process died", index)
        elif result["outcome"] in ("ignored", "no_response") or kind_.probe:
            probe = self.send_valid(index, probe_for=name)
            if not probe["answered"]:
                reaction = result["outcome"]
                died = not self.process.alive()
                outcome = "process_died" if died else (
                    "locked_out" if probe["reason"] != "no reaction" else "worker_dead"
                )  # fmt: skip
                result = {"outcome": outcome, "detail": probe["reason"], "reaction": reaction}
                output += self.process.new_output()  # a traceback may come after the message
                self.restart(f"probe after {name}: {outcome}", index)
        if "Traceback" in output:
            result["traceback"] = last_exception(output)
        expect = kind_.expect(params)
        return {"index": index, "kind": name, "target": kind_.target, **result,
                "expect": expect, "params": jsonable(params)}  # fmt: skip

    def report(self, seconds: float, stopped_by: str) -> dict[str, Any]:
        by_kind: dict[str, Counter] = defaultdict(Counter)
        for record in self.records:
            by_kind[record["kind"]][record["outcome"]] += 1
        unexpected = [r for r in self.records if not outcome_fits(r["outcome"], r["expect"])]
        valid = [v for v in self.valid if "probe_for" not in v]
        probes = [v for v in self.valid if "probe_for" in v]
        outcomes = Counter(r["outcome"] for r in self.records)
        return {
            "command": "stress",
            "seed": self.settings.seed,
            "messages_requested": self.settings.messages,
            "messages_sent": len(self.records),
            "stopped_by": stopped_by,
            "seconds": round(seconds, 1),
            "valid_every": self.settings.valid_every,
            "timeout_s": self.settings.timeout_s,
            "node": {
                "parameters": self.parameters,
                "log": str(self.process.log_path),
                "domain_id": self.domain_id,
                "starts": self.process.starts,
            },
            "outcomes": dict(sorted(outcomes.items())),
            "by_kind": {k: dict(sorted(v.items())) for k, v in sorted(by_kind.items())},
            "kinds_covered": len(by_kind),
            "kinds_total": len(KINDS),
            "process_deaths": outcomes["process_died"],
            "worker_failures": outcomes["worker_dead"] + outcomes["locked_out"],
            "diagnostics_worker_reports": self.worker_reports,
            "valid_pairs": {
                "sent": len(valid),
                "answered": sum(v["answered"] for v in valid),
                "unanswered": [v for v in valid if not v["answered"]],
            },
            "probes": {"sent": len(probes), "answered": sum(p["answered"] for p in probes)},
            "restarts": self.restarts,
            "unexpected": [
                {k: r[k] for k in ("index", "kind", "expect", "outcome", "detail")}
                for r in unexpected
            ],
            "messages": self.records,
        }


def outcome_fits(outcome: str, expect: str) -> bool:
    """Whether an outcome is right for a message its kind expects ``expect`` of."""
    if outcome in FAILURES:
        return False
    if expect == "predicted":
        return outcome in PREDICTED
    if expect == "not_silent":
        return outcome not in SILENT
    return True


def jsonable(value: Any, limit: int = 200) -> Any:
    """``value`` for a strict JSON report: non-finite floats as strings, long text cut."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + f"... ({len(value)} chars)"
    if isinstance(value, dict):
        return {str(k): jsonable(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, limit) for v in value]
    return value


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--messages", type=int, default=1000, help="generated messages to send")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated recipes")
    parser.add_argument("--valid-every", type=int, default=50, help="a valid pair every N")
    parser.add_argument("--timeout", type=float, default=3.0, help="s to wait for a reaction")
    parser.add_argument(
        "--valid-timeout", type=float, default=30.0, help="s to wait for a valid pair's answer"
    )
    parser.add_argument(
        "--service-timeout", type=float, default=30.0, help="s to wait for a service answer"
    )
    parser.add_argument("--max-minutes", type=float, default=60.0, help="stop after this long")
    parser.add_argument(
        "--max-restarts", type=int, default=100, help="stop after restarting the node this often"
    )
    add_node_arguments(parser)


def run(args: argparse.Namespace, command: str) -> int:
    settings = Settings(
        messages=args.messages, seed=args.seed, valid_every=args.valid_every,
        timeout_s=args.timeout, valid_timeout_s=args.valid_timeout,
        service_timeout_s=args.service_timeout, max_minutes=args.max_minutes,
        max_restarts=args.max_restarts,
        parameters=parse_parameters(args.param), domain_id=args.domain_id, log_path=args.log,
    )  # fmt: skip
    report = Stress(settings).run()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, allow_nan=False))
    print(json.dumps({k: v for k, v in report.items() if k not in ("messages", "by_kind")},
                     indent=1))  # fmt: skip
    valid = report["valid_pairs"]
    healthy = report["process_deaths"] == 0 and report["worker_failures"] == 0
    return 0 if healthy and valid["answered"] == valid["sent"] else 1
