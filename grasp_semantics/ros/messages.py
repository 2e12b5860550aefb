"""Build the node's output messages from a core prediction.

Every output carries the input cloud's header; the contacts cloud holds exactly the points the
network saw, in the order of the prediction's per-point arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, Pose, PoseArray, Quaternion
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from grasp_semantics.grasping.gripper import gripper_segments
from grasp_semantics.models.config import GripperConfig
from grasp_semantics.msg import Grasp, GraspPrediction
from grasp_semantics.ros.conversions import xyz_to_cloud


def rotation_to_quaternion(rotation: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) of a 3x3 rotation matrix (Shepperd's method)."""
    m = np.asarray(rotation, dtype=np.float64)
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
        q = [0.0, 0.0, 0.0, (m[k, j] - m[j, k]) / s]
        q[i] = s / 4
        q[j] = (m[j, i] + m[i, j]) / s
        q[k] = (m[k, i] + m[i, k]) / s
    q = np.asarray(q)
    return q / np.linalg.norm(q)


def quaternion_to_rotation(q: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix of a unit quaternion (x, y, z, w)."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def pose_matrix(pose: Pose) -> np.ndarray:
    """4x4 homogeneous transform of a geometry_msgs/Pose."""
    o, p = pose.orientation, pose.position
    matrix = np.eye(4)
    matrix[:3, :3] = quaternion_to_rotation(np.array([o.x, o.y, o.z, o.w]))
    matrix[:3, 3] = (p.x, p.y, p.z)
    return matrix


def pose_msg(pose: np.ndarray) -> Pose:
    """geometry_msgs/Pose of a 4x4 homogeneous transform."""
    x, y, z, w = rotation_to_quaternion(pose[:3, :3])
    tx, ty, tz = (float(v) for v in pose[:3, 3])
    return Pose(
        position=Point(x=tx, y=ty, z=tz),
        orientation=Quaternion(x=float(x), y=float(y), z=float(z), w=float(w)),
    )


def prediction_msg(
    prediction: Any, header: Header, instruction: str, model: str, inference_ms: float
) -> GraspPrediction:
    """A GraspPrediction from a core ``Prediction`` (grasps already ranked best first)."""
    grasps = [
        Grasp(
            pose=pose_msg(prediction.poses[i]),
            width=float(prediction.widths[i]),
            score=float(prediction.scores[i]),
            contact_score=float(prediction.contact_scores[i]),
            contact_point=Point(
                x=float(prediction.contact_points[i, 0]),
                y=float(prediction.contact_points[i, 1]),
                z=float(prediction.contact_points[i, 2]),
            ),
        )
        for i in range(len(prediction.scores))
    ]
    contacts = xyz_to_cloud(prediction.points, header, extra={"contact": prediction.contact})
    return GraspPrediction(
        header=header,
        instruction=instruction,
        contacts=contacts,
        grasps=grasps,
        model=model,
        inference_ms=float(inference_ms),
    )


def pose_array_msg(message: GraspPrediction) -> PoseArray:
    """The grasp poses of a prediction, best first."""
    return PoseArray(header=message.header, poses=[g.pose for g in message.grasps])


def _score_colour(score: float) -> ColorRGBA:
    """Red (0) through yellow to green (1)."""
    score = float(np.clip(score, 0.0, 1.0))
    return ColorRGBA(r=float(min(1.0, 2 - 2 * score)), g=float(min(1.0, 2 * score)), b=0.1, a=0.9)


def markers_msg(
    message: GraspPrediction, gripper: GripperConfig, namespace: str = "grasp_semantics"
) -> MarkerArray:
    """rviz markers: one gripper outline per grasp coloured by score, and the instruction."""
    lifetime = Duration(sec=0, nanosec=0)
    markers = [Marker(header=message.header, ns=namespace, action=Marker.DELETEALL)]
    for index, grasp in enumerate(message.grasps):
        marker = Marker(
            header=message.header,
            ns=namespace,
            id=index,
            type=Marker.LINE_LIST,
            action=Marker.ADD,
            pose=grasp.pose,
            lifetime=lifetime,
        )
        marker.scale.x = 0.002 if index else 0.004
        marker.color = _score_colour(grasp.score)
        marker.points = [
            Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))
            for p in gripper_segments(grasp.width, gripper).reshape(-1, 3)
        ]
        markers.append(marker)
    text = Marker(
        header=message.header,
        ns=namespace,
        id=len(message.grasps),
        type=Marker.TEXT_VIEW_FACING,
        action=Marker.ADD,
        text=message.instruction,
        lifetime=lifetime,
    )
    if message.grasps:
        text.pose.position = message.grasps[0].pose.position
        text.pose.position.y -= 0.08  # above the best grasp (camera y points down)
    text.pose.orientation.w = 1.0
    text.scale.z = 0.03
    text.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
    markers.append(text)
    return MarkerArray(markers=markers)
