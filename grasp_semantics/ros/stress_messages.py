"""The stress test's messages: what each recipe (``stress_recipes``) sends, built when sent
from a reduced held-out scene: clouds, images, camera_info, instruction text, stamped pairs and
service requests."""

from collections.abc import Callable
from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField

from grasp_semantics.ros.harness import (
    SceneInputs,
    header_at,
)
from grasp_semantics.ros.stress_recipes import KINDS
from grasp_semantics.srv import DescribeScene, PredictGrasps


def raw_cloud(
    ns: int,
    data: bytes,
    width: int,
    height: int = 1,
    point_step: int = 12,
    row_step: int | None = None,
    fields: list[PointField] | None = None,
    bigendian: bool = False,
) -> PointCloud2:
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
        return raw_cloud(ns, data, p["width"], p["height"], p["point_step"], p["row_step"])
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
            "same": (h, w),
            "0x0": (0, 0),
            "half": (h // 2, w // 2),
            "huge": (2**31, 2**31),
        }[p["size"]]
        info.d = p["d"]
        info.distortion_model = p["model"]
    else:
        raise ValueError(f"not a camera_info kind: {name}")
    return info


def build_instruction(name: str, p: dict, scene: SceneInputs) -> str:
    """The text of an ``instruction`` kind."""
    base = scene.instruction
    if name in ("instruction_text", "instruction_blank"):
        return p["text"]
    if name == "instruction_control":
        at = int(len(base) * p["at"])
        return base[:at] + p["char"] + base[at:]
    if name == "instruction_huge":
        return (base + " ") * (p["length"] // (len(base) + 1)) + base[
            : p["length"] % (len(base) + 1)
        ]
    if name == "instruction_unicode":
        return f"{base} {p['suffix']}"
    raise ValueError(f"not an instruction kind: {name}")


def service_instruction(choice: str, scene: SceneInputs) -> str:
    return {
        "": "",
        "scene": scene.instruction,
        "nul": scene.instruction + "\x00 and the fork",
        "huge": scene.instruction * 2000,
        "odd": scene.instruction + " 🔪",
    }[choice]


def build_request(name: str, p: dict, scene: SceneInputs, ns: int) -> Any:
    """The request of a ``predict`` or ``describe`` kind."""
    if name == "describe_request":
        request = DescribeScene.Request(task=p["task"])
        request.prompt = {
            "none": "",
            "short": "what is on the table?",
            "nul": "what\x00 is it",
            "huge": "what " * 20000,
            "odd": "¿qué es? 🔪",
        }[p["prompt"]]
        if p["image"] == "valid":
            request.image = scene.image(ns)
        elif p["image"] == "empty_declared":
            request.image = scene.image(ns)
            request.image.data = b""
        elif p["image"] == "random":
            request.image = build_image(
                "image_random_bytes",
                {
                    "height": 64,
                    "width": 80,
                    "bytes": 64 * 80 * 3,
                    "seed": ns % 2**32,
                },
                scene,
                ns,
            )
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


def stamp_pair(name: str, p: dict, scene: SceneInputs, ns: int) -> tuple[dict[str, Any], int]:
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
