"""The ROS side of ``grasp-semantics bench``: message conversion, message building, the node.

:class:`MessageStages` holds one set of input messages (Image, PointCloud2, CameraInfo) made
from numpy arrays once, then times what the node does per prediction: converting them to
numpy (:mod:`grasp_semantics.ros.conversions`) and building its outputs
(:mod:`grasp_semantics.ros.messages`). :func:`bench_node` times the real node on the demo bag
beside the predictor called directly on the same scenes. Imported lazily by
:mod:`grasp_semantics.benchmarks.bench`, so the core benchmark runs without ROS.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from grasp_semantics.models.config import GripperConfig
from grasp_semantics.ros.conversions import (
    camera_info_to_intrinsics,
    cloud_to_xyz,
    image_to_rgb,
    rgb_to_image,
    xyz_to_cloud,
)
from grasp_semantics.ros.messages import markers_msg, pose_array_msg, prediction_msg


class MessageStages:
    """Input messages of one sample, and the node's per-prediction conversions around them."""

    def __init__(self, rgb: np.ndarray, points: np.ndarray, intrinsics: np.ndarray) -> None:
        """``points`` [N, 3], or [H, W, 3] for an organised cloud (NaN where no return)."""
        self.header = Header(frame_id="camera_color_optical_frame")
        self.image = rgb_to_image(rgb, self.header)
        self.cloud = xyz_to_cloud(points.reshape(-1, 3), self.header)
        if points.ndim == 3:  # a depth camera's organised cloud: rows of pixels
            self.cloud.height, self.cloud.width = points.shape[:2]
            self.cloud.row_step = self.cloud.point_step * self.cloud.width
            self.cloud.is_dense = False
        self.info = CameraInfo(header=self.header, height=rgb.shape[0], width=rgb.shape[1])
        self.info.k = [float(v) for v in np.asarray(intrinsics, dtype=np.float64).ravel()]
        self.gripper = GripperConfig()

    def convert(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Messages → rgb uint8 [H, W, 3], finite points [N, 3], K [3, 3] (as the node does)."""
        return (
            image_to_rgb(self.image),
            cloud_to_xyz(self.cloud).points,
            camera_info_to_intrinsics(self.info),
        )

    def build(self, prediction: Any, model: str = "bench") -> tuple[Any, Any, Any]:
        """The node's three outputs of a prediction: GraspPrediction, PoseArray, MarkerArray."""
        message = prediction_msg(prediction, self.header, prediction.instruction, model, 0.0)
        return message, pose_array_msg(message), markers_msg(message, self.gripper)


def bench_node(model: str, device: str, scenes: int = 6, repeats: int = 2) -> dict[str, Any]:
    """Prediction latencies (ms) of the real node on the demo bag (lock-step replay, as the node
    measures them and shows on /diagnostics) beside the predictor's called directly on the same
    scenes, in one run. Each side runs in a fresh process, as a user's script and a user's node
    would: a process whose main thread has already run the model (this bench's) runs it slower
    on any other thread (:class:`grasp_semantics.ros.sync.ModelThread`). The first prediction
    after each model load is left out of both (one-time initialisation)."""
    from grasp_semantics.ros.demo import make_sample_bag

    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        bag = make_sample_bag(Path(tmp) / "bag", scenes)
        with spawn.Pool(1) as pool:
            direct_ms, points = pool.apply(_direct_latencies, (bag, model, device, repeats))
        with spawn.Pool(1) as pool:
            node_ms = pool.apply(_node_latencies, (bag, Path(tmp), model, device, repeats))
    return {
        "scenes": scenes,
        "cloud_points": points,
        "repeats": repeats,
        "direct_ms": direct_ms,
        "node_ms": node_ms,
    }


def _direct_latencies(bag: Path, model: str, device: str, repeats: int) -> tuple[list, int]:
    """``GraspPredictor.predict`` on each scene of ``bag``, ``repeats`` times, from the main
    thread; the ms of each call after the first, and the clouds' size."""
    from grasp_semantics.data.bag import read_bag
    from grasp_semantics.inference.predictor import GraspPredictor

    truths = list(read_bag(bag))
    predictor = GraspPredictor.from_pretrained(model, device=device)
    direct_ms = []
    for truth in [truths[0], *truths * repeats]:
        predictor.clear_caches()
        started = time.perf_counter()
        predictor.predict(
            truth["rgb"], truth["points"], truth["instruction"], intrinsics=truth["intrinsics"]
        )
        direct_ms.append(1e3 * (time.perf_counter() - started))
    return direct_ms[1:], len(truths[0]["points"])


def _node_latencies(bag: Path, tmp: Path, model: str, device: str, repeats: int) -> list:
    """The node's own predict times replaying ``bag``, ``repeats`` times (a fresh node each)."""
    from grasp_semantics.ros.replay import replay

    node_ms = []
    for run in range(repeats):
        summary = replay(
            bag, tmp / f"out{run}", model, parameters={"device": device}, progress=False
        )
        node_ms += summary.latencies_ms[1:]
    return node_ms
