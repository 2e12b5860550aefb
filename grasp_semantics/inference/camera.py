"""Pinhole camera intrinsics: the one check every way into the model uses.

A camera_info whose K is finite but absurd (a focal length of 1e30 or 1e-30 pixels, a skew of
1e20) projects every point to the same pixel or to none; the network would then read colours
and visual tokens from nowhere without a word. Such a K is refused with the reason.
"""

from __future__ import annotations

import numpy as np

MIN_FOCAL_PX = 1.0  # a focal length below one pixel images the whole world into one pixel
MAX_FOCAL_PX = 1e6  # ~0.002 degrees a pixel: beyond any camera a robot carries


def check_intrinsics(k: object, image_hw: tuple[int, int] | None = None) -> np.ndarray:
    """``k`` as a float32 3x3 pinhole matrix, or a ValueError saying what is wrong with it.

    Checked: shape, finite entries, last row (0, 0, 1), focal lengths within
    [MIN_FOCAL_PX, MAX_FOCAL_PX], a skew no larger than the focal length and, given the image
    size ``image_hw`` (H, W), a principal point within one image size of the image.
    """
    k = np.asarray(k, dtype=np.float64)
    if k.shape != (3, 3):
        raise ValueError(f"intrinsics must be a 3x3 matrix, got shape {k.shape}")
    if not np.isfinite(k).all():
        raise ValueError(f"intrinsics have non-finite entries: {k.ravel().tolist()}")
    if not np.allclose(k[2], (0.0, 0.0, 1.0)):
        raise ValueError(f"intrinsics' last row must be (0, 0, 1), got {k[2].tolist()}")
    fx, fy, skew = k[0, 0], k[1, 1], k[0, 1]
    for name, focal in (("fx", fx), ("fy", fy)):
        if not MIN_FOCAL_PX <= focal <= MAX_FOCAL_PX:
            raise ValueError(
                f"intrinsics' {name} = {focal:.3g} px is outside "
                f"[{MIN_FOCAL_PX:g}, {MAX_FOCAL_PX:g}]: not a camera"
            )
    if abs(skew) > max(fx, fy) or k[1, 0] != 0.0:
        raise ValueError(f"intrinsics' skew {skew:.3g} is larger than the focal length")
    if image_hw is not None:
        height, width = image_hw
        cx, cy = k[0, 2], k[1, 2]
        if not (-width <= cx <= 2 * width and -height <= cy <= 2 * height):
            raise ValueError(
                f"intrinsics' principal point ({cx:.3g}, {cy:.3g}) lies more than an image "
                f"size outside the {width}x{height} image"
            )
    return k.astype(np.float32)
