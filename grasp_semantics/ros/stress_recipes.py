"""The stress test's message recipes: every kind of malformed (or valid) input it sends to
the node, each with how its parameters are drawn (Hypothesis) and what a correct node does with
it. Recipes are drawn first (seeded, reproducible); ``stress_messages`` builds the messages."""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from grasp_semantics.inference.instructions import MAX_INSTRUCTION_CHARS

FLOAT32_MAX = float(np.finfo(np.float32).max)
EXTREME = (1e20, -1e20, FLOAT32_MAX, -FLOAT32_MAX, 1e30, 3e38, 1e10, 1e6, 1e-45, -0.0)
ABSURD_K = (1e30, 1e-30, 0.0, -1.0, math.nan, math.inf, 1e20, -1e20)
CONTROL = ("\x00", "\x01", "\x07", "\x1b", "\x7f", "\n", "\t", "\u2028", "\x85")
ODD_TEXT = ("🔪🥄", "سكين", "cafe\u0301", "刀", "\u200b", "\ufeff", "𝔨𝔫𝔦𝔣𝔢", "\U0010ffff")
ENCODINGS_REFUSED = ("", "16UC1", "32FC1", "mono16", "nonsense", "RGB8", "rgb")
ENCODINGS_OTHER = ("bgr8", "rgba8", "mono8", "bayer_rggb8", "yuv422", "8UC3", "rgb16")


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
    return {
        "points": data.draw(st.integers(0, 20000)),
        "extra_bytes": data.draw(st.integers(0, 11)),
        "seed": _seed(data),
    }


def _extreme_expect(p: dict) -> str:
    value = p["value"]
    return "not_silent" if math.isfinite(value) and abs(value) >= 1e10 else "any"


@kind("points", _extreme_expect)
def cloud_extreme_coords(data: Any) -> dict:
    st = _st()
    value = data.draw(st.one_of(st.sampled_from(EXTREME), st.floats(width=32)))
    return {
        "value": value,
        "count": data.draw(st.integers(1, 5000)),
        "axis": data.draw(st.sampled_from((0, 1, 2, -1))),
        "seed": _seed(data),
    }


@kind("points", lambda p: "not_silent" if p["fraction"] >= 1.0 else "any")
def cloud_nonfinite(data: Any) -> dict:
    st = _st()
    fraction = data.draw(st.one_of(st.just(1.0), st.floats(0.0, 1.0)))
    return {
        "fraction": fraction,
        "value": data.draw(st.sampled_from(("nan", "inf", "-inf"))),
        "seed": _seed(data),
    }


@kind("points")
def cloud_bigendian(data: Any) -> dict:
    return {}


def _layout_valid(p: dict) -> bool:
    """PointCloud2's own rules (not the node's): fields fit the point, rows fit row_step,
    the data holds every row, at least one point."""
    width, height, point_step, row_step, size = (
        p["width"],
        p["height"],
        p["point_step"],
        p["row_step"],
        p["data_bytes"],
    )
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
    return {
        "width": width,
        "height": height,
        "point_step": point_step,
        "row_step": min(row_step, 2**32 - 1),
        "data_bytes": n * 12,
    }


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
    return {
        "change": change,
        "field": data.draw(st.sampled_from("xyz")),
        "value": data.draw(value),
    }


@kind("points", "not_silent")
def cloud_truncated(data: Any) -> dict:
    st = _st()
    return {"keep": data.draw(st.floats(0.0, 0.999)), "organised": data.draw(st.booleans())}


@kind("points", "not_silent")
def cloud_empty(data: Any) -> dict:
    st = _st()
    return {
        "width": data.draw(st.sampled_from((0, 100))),
        "height": data.draw(st.sampled_from((0, 1))),
        "with_data": data.draw(st.booleans()),
    }


@kind("points")
def cloud_degenerate(data: Any) -> dict:
    st = _st()
    return {
        "points": data.draw(st.sampled_from((1, 2, 3, 4, 8, 32, 200, 3000))),
        "shape": data.draw(st.sampled_from(("same", "line", "tiny", "plane", "far"))),
        "seed": _seed(data),
    }


@kind("points", "predicted")
def cloud_organised(data: Any) -> dict:
    st = _st()
    return {
        "width": data.draw(st.sampled_from((64, 160, 640))),
        "holes": data.draw(st.floats(0.0, 0.5)),
        "seed": _seed(data),
    }


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
def k_of(p: dict) -> list[float]:
    """The K a ``camera_info_absurd_k`` recipe makes of a typical camera (for ``expect``)."""
    k = [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]
    for index, value in p["changes"].items():
        k[int(index)] = value
    return k


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
    return {
        "size": data.draw(st.sampled_from(("same", "0x0", "half", "huge"))),
        "d": data.draw(st.lists(st.floats(width=64), max_size=16)),
        "model": data.draw(st.text(max_size=20)),
    }


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
    lengths = (MAX_INSTRUCTION_CHARS + 1, 4096, 100_000, 1_000_000)  # just over the limit, ...
    return {"length": data.draw(_st().sampled_from(lengths))}


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
    return {
        "which": data.draw(st.sampled_from(("image", "cloud", "both"))),
        "dims": data.draw(st.sampled_from(("80x64", "0x0"))),
    }


def _inner_expect(p: dict) -> str:
    return KINDS[p["inner"]].expect(p["params"])


@kind("predict", _inner_expect)
def predict_bad_input(data: Any) -> dict:
    st = _st()
    inner = data.draw(
        st.sampled_from(
            [k.name for k in KINDS.values() if k.target in ("points", "image", "camera_info")]
        )
    )
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
        @settings(
            max_examples=wanted,
            database=None,
            phases=[Phase.generate],
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case_strategy())
        def collect(recipe: tuple[str, dict[str, Any]]) -> None:
            if len(recipes) < count:
                recipes.append(recipe)

        collect()
    return recipes
