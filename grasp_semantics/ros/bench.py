"""The ROS side of ``grasp-semantics bench``: message conversion in and message building out.

:class:`MessageStages` holds one set of input messages (Image, PointCloud2, CameraInfo) made
from numpy arrays once, then times what the node does per prediction: converting them to
numpy (:mod:`grasp_semantics.ros.conversions`) and building its outputs
(:mod:`grasp_semantics.ros.messages`). Imported lazily by :mod:`grasp_semantics.bench`, so the
core benchmark runs without ROS.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from grasp_semantics.gripper import GripperConfig
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
        self.header = Header(frame_id="camera_color_optical_frame")
        self.image = rgb_to_image(rgb, self.header)
        self.cloud = xyz_to_cloud(points, self.header)
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
