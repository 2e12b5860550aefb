"""Parallel-jaw gripper geometry and the grasp-pose convention shared by data, model and metrics.

Gripper frame, with its origin at the tool centre point (TCP) midway between the fingertips:
+z is the approach direction (from the palm towards the object), +x the closing direction
(from one finger to the other), and y = z x x. ``width`` is the finger opening in metres.
A grasp predicted at a surface point ``c`` (the contact of the first finger) with closing
direction ``b`` (pointing from that finger into the object) and opening ``w`` has its TCP at
``c + (w / 2) * b``.

Planning, collision checks and scoring use that frame. A robot whose tool centre point lies
elsewhere on the approach axis (between the finger pads, at the palm) declares it as
``GripperConfig.tcp_depth``: :func:`to_robot_tcp` moves the poses handed to the robot there.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from grasp_semantics.models.config import OPENING_CLEARANCE, GripperConfig

COLLISION_CHUNK = 16  # grasps checked together by cloud_collisions


def to_robot_tcp(poses: np.ndarray, gripper: GripperConfig) -> np.ndarray:
    """Planning-frame poses ``[..., 4, 4]`` (origin between the fingertips) with their origin
    moved to the robot's TCP, ``gripper.tcp_depth`` back along the approach (+z) axis."""
    if not gripper.tcp_depth:
        return poses
    moved = np.array(poses, dtype=np.float64, copy=True)
    moved[..., :3, 3] -= gripper.tcp_depth * moved[..., :3, 2]
    return moved


def from_robot_tcp(poses: np.ndarray, gripper: GripperConfig) -> np.ndarray:
    """The inverse of :func:`to_robot_tcp`: robot-TCP poses back in the planning frame."""
    return to_robot_tcp(poses, dataclasses.replace(gripper, tcp_depth=-gripper.tcp_depth))


def orthonormal_frame(approach: np.ndarray, closing: np.ndarray) -> np.ndarray:
    """Rotation matrices ``[..., 3, 3]`` whose columns are (x=closing, y=z x x, z=approach).

    ``closing`` is re-orthogonalised against ``approach`` (Gram-Schmidt), so the result is a
    proper rotation (orthonormal, det +1) for any pair of non-parallel vectors.
    """
    z = approach / np.linalg.norm(approach, axis=-1, keepdims=True)
    x = closing - np.sum(closing * z, axis=-1, keepdims=True) * z
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)


def grasp_poses(
    contacts: np.ndarray, approach: np.ndarray, closing: np.ndarray, widths: np.ndarray
) -> np.ndarray:
    """4x4 gripper poses ``[..., 4, 4]`` from first-finger contacts ``[..., 3]``.

    ``approach`` and ``closing`` are ``[..., 3]`` directions, ``widths`` ``[...]`` openings (m).
    """
    rotation = orthonormal_frame(approach, closing)
    tcp = contacts + 0.5 * widths[..., None] * rotation[..., :, 0]
    pose = np.zeros((*contacts.shape[:-1], 4, 4), dtype=np.float64)
    pose[..., :3, :3] = rotation
    pose[..., :3, 3] = tcp
    pose[..., 3, 3] = 1.0
    return pose


def opening(widths: np.ndarray, gripper: GripperConfig = GripperConfig()) -> np.ndarray:
    """Finger opening ``[G]`` the gripper approaches with for grasps of ``widths`` [G]."""
    return np.minimum(
        np.asarray(widths, dtype=np.float64) + 2 * OPENING_CLEARANCE, gripper.max_width
    )


def gripper_boxes(
    open_widths: np.ndarray, gripper: GripperConfig = GripperConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned boxes (gripper frame) of the two fingers and the palm: lo, hi ``[G,3,3]``.

    The fingers occupy ``z in [-finger_depth, 0]`` (their tips at the TCP plane), the palm
    lies behind them.
    """
    g = gripper
    w = np.asarray(open_widths, dtype=np.float64)[:, None]
    n = len(w)
    hy = np.full((n, 1), g.finger_breadth / 2)
    tip, base = np.zeros((n, 1)), np.full((n, 1), -g.finger_depth)
    outer = g.max_width / 2 + g.finger_thickness
    lo = np.stack(
        [
            np.c_[-w / 2 - g.finger_thickness, -hy, base],
            np.c_[w / 2, -hy, base],
            np.tile([-outer, -g.finger_breadth / 2, -g.finger_depth - g.palm_depth], (n, 1)),
        ],
        axis=1,
    )
    hi = np.stack(
        [
            np.c_[-w / 2, hy, tip],
            np.c_[w / 2 + g.finger_thickness, hy, tip],
            np.tile([outer, g.finger_breadth / 2, -g.finger_depth], (n, 1)),
        ],
        axis=1,
    )
    return lo, hi


def _within(coordinates: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Whether ``lo[..., k] <= coordinates[k] <= hi[..., k]`` for k = x, y, z: coordinates
    [3, ...], bounds broadcasting against ``coordinates[k]`` with their last axis the three."""
    inside = (coordinates[0] >= lo[..., 0]) & (coordinates[0] <= hi[..., 0])
    for k in (1, 2):
        inside &= (coordinates[k] >= lo[..., k]) & (coordinates[k] <= hi[..., k])
    return inside


def cloud_collisions(
    poses: np.ndarray,
    widths: np.ndarray,
    cloud: np.ndarray,
    gripper: GripperConfig = GripperConfig(),
    tolerance: int = 3,
) -> np.ndarray:
    """Whether the opened gripper ``[G]`` at ``poses`` [G, 4, 4] would hit the observed cloud
    [P, 3]: more than ``tolerance`` cloud points (sensor noise) inside a finger or the palm.

    Only what the sensor saw can be checked (not the hidden back of objects), as on a robot.
    """
    lo, hi = gripper_boxes(opening(widths, gripper), gripper)  # [G, 3, 3] each
    rotation = poses[:, :3, :3].astype(np.float32)
    tcp = poses[:, :3, 3].astype(np.float32)
    cloud = cloud.astype(np.float32, copy=False)
    counts = np.zeros(len(poses), dtype=np.int64)
    if not len(poses):
        return counts > tolerance
    # Farthest a point inside any grasp's boxes can lie from its TCP (used as a per-axis cut).
    reach = float(np.sqrt(np.maximum(lo**2, hi**2).sum(axis=2)).max())
    # Grasps taken in chunks of neighbours (sorted by the reach-sized cell their TCP is in),
    # so each chunk's cut of the cloud is small: candidates spread over the scene would
    # otherwise put most of the cloud in every chunk's frame.
    cell = np.floor(tcp / reach).astype(np.int64)
    order = np.lexsort((cell[:, 2], cell[:, 1], cell[:, 0]))
    # Comparisons are written out per axis: numpy's all() over a length-3 last axis costs more
    # than the comparisons themselves.
    columns = np.ascontiguousarray(cloud.T)  # [3, P]
    for start in range(0, len(poses), COLLISION_CHUNK):
        chunk = order[start : start + COLLISION_CHUNK]
        r, t = rotation[chunk], tcp[chunk]
        # Only points within reach of some TCP can be inside its boxes: an axis-aligned cut.
        near = cloud[_within(columns, t.min(0) - reach, t.max(0) + reach)]
        # Each point in each grasp's frame, (p - t) R = p R - t R: one [P', 3] @ [3, 3g] matmul.
        local = (near @ r.transpose(1, 0, 2).reshape(3, -1)).reshape(len(near), len(chunk), 3)
        local -= np.einsum("gi,gij->gj", t, r)
        # Cheap cut first: inside the box around all three (a few hundred points per grasp),
        # then the exact test on those (point, grasp) pairs.
        point, grasp = np.nonzero(
            _within(local.transpose(2, 0, 1), lo[chunk].min(1), hi[chunk].max(1))
        )
        q, g = local[point, grasp].T, chunk[grasp]  # [3, pairs], [pairs]
        inside = np.zeros(len(g), dtype=bool)
        for box in range(3):  # fingers and palm
            inside |= _within(q, lo[g, box], hi[g, box])
        counts += np.bincount(g[inside], minlength=len(poses))
    return counts > tolerance


def gripper_segments(width: float, gripper: GripperConfig | None = None) -> np.ndarray:
    """Line segments ``[6, 2, 3]`` that draw the gripper at opening ``width`` in the frame of
    the poses the robot gets (:func:`to_robot_tcp`: its origin at the robot's TCP).

    Fingertips at z = ``tcp_depth`` (0: the TCP plane), finger roots ``finger_depth`` behind
    them, the palm across them and a stem along -z that shows the approach direction; short
    pads mark the fingertips.
    """
    gripper = gripper or GripperConfig()
    half = 0.5 * width
    depth, stem = gripper.finger_depth, gripper.finger_depth + gripper.palm_depth
    segments = np.array(
        [
            [[-half, 0, 0], [-half, 0, -depth]],  # finger 1
            [[half, 0, 0], [half, 0, -depth]],  # finger 2
            [[-half, 0, -depth], [half, 0, -depth]],  # palm
            [[0, 0, -depth], [0, 0, -stem]],  # stem
            [[-half, 0, 0], [-0.75 * half, 0, 0]],  # fingertip pads
            [[half, 0, 0], [0.75 * half, 0, 0]],
        ]
    )
    segments[..., 2] += gripper.tcp_depth
    return segments
