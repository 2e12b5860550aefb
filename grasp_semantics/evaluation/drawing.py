"""A picture of a prediction: the image, the points the model saw coloured by contact
probability, and the best grasps drawn as gripper outlines, with the instruction as a caption.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from grasp_semantics.data.render import project
from grasp_semantics.grasping.gripper import gripper_segments
from grasp_semantics.models.config import GripperConfig


def contact_colour(probability: float) -> tuple[int, int, int]:
    """Blue (0) to red (1)."""
    p = float(np.clip(probability, 0.0, 1.0))
    return int(255 * p), int(60 * (1 - abs(2 * p - 1))), int(255 * (1 - p))


def draw_prediction(
    rgb: np.ndarray,
    intrinsics: np.ndarray,
    points: np.ndarray,
    contact: np.ndarray,
    poses: np.ndarray,
    widths: np.ndarray,
    caption: str,
    gripper: GripperConfig | None = None,
    max_grasps: int = 5,
) -> Image.Image:
    """The picture described in the module docstring (points in the camera frame of ``rgb``)."""
    gripper = gripper or GripperConfig()
    image = Image.fromarray(rgb.copy())
    draw = ImageDraw.Draw(image)
    visible = points[:, 2] > 0.01
    uv = project(points[visible].astype(np.float64), intrinsics.astype(np.float64))
    order = np.argsort(contact[visible])  # likely contacts drawn last, on top
    for (u, v), p in zip(uv[order], contact[visible][order], strict=True):
        radius = 1 + 2 * float(p)
        draw.ellipse([u - radius, v - radius, u + radius, v + radius], fill=contact_colour(p))
    for rank in reversed(range(min(max_grasps, len(poses)))):
        segments = gripper_segments(float(widths[rank]), gripper)  # [S, 2, 3] gripper frame
        ends = segments.reshape(-1, 3) @ poses[rank, :3, :3].T + poses[rank, :3, 3]
        if np.any(ends[:, 2] <= 0.01):
            continue
        pixels = project(ends, intrinsics.astype(np.float64)).reshape(-1, 2, 2)
        colour = (0, 255, 0) if rank == 0 else (255, 210, 0)
        for a, b in pixels:
            draw.line([tuple(a), tuple(b)], fill=colour, width=3 if rank == 0 else 1)
    banner = Image.new("RGB", (image.width, 22), (20, 20, 20))
    ImageDraw.Draw(banner).text((6, 5), caption, fill=(240, 240, 240))
    out = Image.new("RGB", (image.width, image.height + banner.height))
    out.paste(banner, (0, 0))
    out.paste(image, (0, banner.height))
    return out


def save_prediction_png(path: str | Path, **kwargs) -> Path:
    """:func:`draw_prediction` saved as PNG at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    draw_prediction(**kwargs).save(path)
    return path
