"""Pinhole RGB-D rendering by ray casting (open3d ``RaycastingScene``) in the camera frame.

The camera frame is the OPTICAL frame an RGB-D driver publishes its cloud in: x right, y down,
z forward. Pixel (u, v) = (column, row) looks along ``((u - cx) / fx, (v - cy) / fy, 1)``, so
a point ``p`` projects to ``u = fx * x / z + cx``, ``v = fy * y / z + cy``. Depth is z (m).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d


@dataclass(frozen=True)
class CameraConfig:
    """Image size and intrinsics; focal lengths are jittered per scene by ``focal_jitter``."""

    width: int = 640
    height: int = 480
    focal: float = 600.0  # fx = fy before jitter, pixels
    focal_jitter: float = 0.03  # relative
    principal_jitter: float = 4.0  # pixels


@dataclass(frozen=True)
class SensorNoise:
    """Depth-sensor model: axial Gaussian noise growing with depth, random and edge dropout."""

    sigma_base: float = 0.0012  # m, sigma(z) = base + quad * (z - 0.4)^2
    sigma_quad: float = 0.0019
    dropout: float = 0.02  # probability a valid pixel is lost at random
    edge_dropout: float = 0.6  # probability a pixel at a depth discontinuity is lost
    edge_threshold: float = 0.015  # relative depth jump (of z) that marks an edge
    grazing_cos: float = 0.1  # pixels seeing a surface this obliquely (|n.v|) are lost
    max_depth: float = 2.5  # m
    rgb_noise: float = 2.0  # grey levels


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float32)


def sample_intrinsics(rng: np.random.Generator, cam: CameraConfig) -> np.ndarray:
    """Intrinsics ``[3,3]`` float32 with jittered focal lengths and principal point."""
    f = cam.focal * (1 + rng.uniform(-cam.focal_jitter, cam.focal_jitter, 2))
    c = np.array([cam.width, cam.height]) / 2 - 0.5 + rng.uniform(-1, 1, 2) * cam.principal_jitter
    return intrinsics_matrix(f[0], f[1], c[0], c[1])


def look_at(eye: np.ndarray, target: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """World->camera(optical) transform ``[4,4]`` for a camera at ``eye`` looking at ``target``
    (world z up)."""
    z = target - eye
    z = z / np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    c, s = np.cos(roll), np.sin(roll)
    x, y = c * x + s * y, -s * x + c * y
    r_wc = np.stack([x, y, z], axis=1)  # camera axes in world
    t = np.eye(4)
    t[:3, :3] = r_wc.T
    t[:3, 3] = -r_wc.T @ eye
    return t


def make_raycaster(vertices: np.ndarray, triangles: np.ndarray) -> o3d.t.geometry.RaycastingScene:
    scene = o3d.t.geometry.RaycastingScene(nthreads=0)
    scene.add_triangles(
        o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float32)),
        o3d.core.Tensor(np.ascontiguousarray(triangles, dtype=np.uint32)),
    )
    return scene


def cast(scene: o3d.t.geometry.RaycastingScene, origins: np.ndarray, dirs: np.ndarray):
    """Cast rays (origins ``[N,3]`` or [3], directions ``[N,3]``); returns (t_hit [N] float64 in
    units of |dir|, inf on a miss; triangle [N] int64, -1 on a miss; normal [N,3] float32)."""
    rays = np.empty((len(dirs), 6), np.float32)
    rays[:, :3] = origins
    rays[:, 3:] = dirs
    out = scene.cast_rays(o3d.core.Tensor(rays))
    t = out["t_hit"].numpy().astype(np.float64)
    tri = out["primitive_ids"].numpy().astype(np.int64)
    tri[~np.isfinite(t)] = -1
    return t, tri, out["primitive_normals"].numpy()


def pixel_rays(k: np.ndarray, width: int, height: int) -> np.ndarray:
    """Ray directions ``[H*W,3]`` float32 (z = 1) through every pixel centre, row-major."""
    d = np.ones((height, width, 3), np.float32)
    d[..., 0] = (np.arange(width, dtype=np.float32) - k[0, 2]) / k[0, 0]
    d[..., 1] = ((np.arange(height, dtype=np.float32) - k[1, 2]) / k[1, 1])[:, None]
    return d.reshape(-1, 3)


@dataclass
class ImageCast:
    """What each pixel sees."""

    depth: np.ndarray  # [H,W] float64 clean depth z (m), inf where nothing is hit
    triangle: np.ndarray  # [H,W] int64 hit triangle, -1 where nothing is hit
    normal: np.ndarray  # [H,W,3] float32 unit normals facing the camera (camera frame)


def cast_image(scene: o3d.t.geometry.RaycastingScene, k: np.ndarray, width: int, height: int):
    """Ray-cast every pixel of a ``width`` x ``height`` camera with intrinsics ``k``."""
    dirs = pixel_rays(k, width, height)
    t, tri, n = cast(scene, np.zeros(3, np.float32), dirs)
    flip = np.einsum("ij,ij->i", n, dirs) > 0
    n[flip] *= -1  # face the camera
    return ImageCast(
        t.reshape(height, width), tri.reshape(height, width), n.reshape(height, width, 3)
    )


def shade(
    scene: o3d.t.geometry.RaycastingScene,
    img: ImageCast,
    k: np.ndarray,
    albedo: np.ndarray,
    shine: np.ndarray,
    light_dir: np.ndarray,
    rng: np.random.Generator,
    noise: SensorNoise,
    texture=None,
    shadow_stride: int = 2,
) -> np.ndarray:
    """RGB ``[H,W,3]`` uint8: Lambert + Blinn shading, cast shadows (traced on every
    ``shadow_stride``-th pixel and spread to its neighbours) and sensor noise.

    ``albedo`` [T,3] and ``shine`` [T] are per triangle; ``light_dir`` [3] points towards the
    light (camera frame); ``texture(points [P,3], triangles [P]) -> [P] gain`` (all pixels,
    triangle -1 where nothing is hit) modulates the albedo.
    """
    h, w = img.triangle.shape
    dirs = pixel_rays(k, w, h)  # [P,3]
    tri = img.triangle.ravel()
    hit = tri >= 0
    light = np.asarray(light_dir, np.float32)
    n = np.where(hit[:, None], img.normal.reshape(-1, 3), 0).astype(np.float32)
    z = np.where(hit, img.depth.ravel(), 0).astype(np.float32)
    pts = dirs * z[:, None]
    # shadows, traced on a coarse grid and spread to the neighbouring pixels
    sub = np.zeros((h, w), bool)
    sub[::shadow_stride, ::shadow_stride] = True
    sub = sub.ravel() & hit
    st, _, _ = cast(scene, pts[sub] + n[sub] * 2e-3, np.broadcast_to(light, (int(sub.sum()), 3)))
    lit_grid = np.ones(h * w, np.float32)
    lit_grid[sub] = np.isinf(st)
    rows = (np.arange(h) // shadow_stride) * shadow_stride
    cols = (np.arange(w) // shadow_stride) * shadow_stride
    lit = lit_grid.reshape(h, w)[rows][:, cols].ravel()
    # Lambert + Blinn-Phong (exponent 32)
    lam = np.clip(n @ light, 0, None) * lit
    view = dirs / np.sqrt(np.einsum("ij,ij->i", dirs, dirs))[:, None]
    half = light[None] - view
    cos_h = np.einsum("ij,ij->i", n, half) / np.sqrt(np.einsum("ij,ij->i", half, half))
    spec = np.clip(cos_h, 0, None)
    for _ in range(5):
        spec = spec * spec
    idx = np.where(hit, tri, len(albedo))
    base = np.concatenate([albedo, [[0.55, 0.6, 0.65]]]).astype(np.float32)[idx]
    spec *= np.append(shine, 0).astype(np.float32)[idx] * lit
    if texture is not None:
        base *= texture(pts, tri)[:, None].astype(np.float32)
    out = base * np.where(hit, 0.35 + 0.75 * lam, 1.0)[:, None] + 0.5 * spec[:, None]
    out = out * 255 + rng.standard_normal(out.shape, dtype=np.float32) * noise.rgb_noise
    return np.clip(out, 0, 255).astype(np.uint8).reshape(h, w, 3)


def sensor_depth(
    depth: np.ndarray,
    normal: np.ndarray,
    k: np.ndarray,
    rng: np.random.Generator,
    noise: SensorNoise,
) -> np.ndarray:
    """Noisy depth image ``[H,W]`` float32 with 0 where the sensor returns nothing, quantised
    to ``DEPTH_UNIT``."""
    h, w = depth.shape
    valid = np.isfinite(depth) & (depth < noise.max_depth)
    z = np.where(valid, depth, 0.0)
    sigma = noise.sigma_base + noise.sigma_quad * (z - 0.4) ** 2
    noisy = z + rng.normal(0, 1, z.shape) * sigma
    # depth discontinuities: a neighbour (4-connected) differs by more than the threshold
    zz = np.where(valid, depth, 1e3)
    jump = np.zeros((h, w), bool)
    thr = noise.edge_threshold * np.minimum(zz, noise.max_depth)
    for dz in (zz[1:] - zz[:-1], zz[:, 1:] - zz[:, :-1]):
        big = np.abs(dz) > (thr[1:] if dz.shape[0] == h - 1 else thr[:, 1:])
        if dz.shape[0] == h - 1:
            jump[1:] |= big
            jump[:-1] |= big
        else:
            jump[:, 1:] |= big
            jump[:, :-1] |= big
    view = pixel_rays(k, w, h).reshape(h, w, 3)
    view /= np.linalg.norm(view, axis=2, keepdims=True)
    grazing = np.abs(np.einsum("hwk,hwk->hw", normal, view)) < noise.grazing_cos
    r = rng.random((h, w))
    drop = (r < noise.dropout) | (jump & (rng.random((h, w)) < noise.edge_dropout)) | grazing
    keep = valid & ~drop & (noisy > 0)
    return depth_from_u16(depth_to_u16(np.where(keep, noisy, 0.0)))


DEPTH_UNIT = 1e-4  # m; depth is quantised to 0.1 mm (and so fits uint16 up to 6.5 m)


def depth_to_u16(depth: np.ndarray) -> np.ndarray:
    """Depth (m, 0 = invalid) as uint16 in ``DEPTH_UNIT`` steps."""
    return np.round(np.asarray(depth, np.float64) / DEPTH_UNIT).astype(np.uint16)


def depth_from_u16(q: np.ndarray) -> np.ndarray:
    """Inverse of ``depth_to_u16``: float32 metres (exact for quantised depth)."""
    return (q.astype(np.float64) * DEPTH_UNIT).astype(np.float32)


def pixels_to_points(depth: np.ndarray, pixels: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Camera-frame points ``[N,3]`` float32 of ``pixels`` ``[N,2]`` (u, v) of a depth image."""
    u, v = pixels[:, 0].astype(np.float64), pixels[:, 1].astype(np.float64)
    z = depth[pixels[:, 1], pixels[:, 0]].astype(np.float64)
    kk = np.asarray(k, np.float64)
    x = (u - kk[0, 2]) / kk[0, 0] * z
    y = (v - kk[1, 2]) / kk[1, 1] * z
    return np.stack([x, y, z], 1).astype(np.float32)


def backproject(depth: np.ndarray, k: np.ndarray, mask: np.ndarray | None = None):
    """Points ``[N,3]`` float32 (camera frame) and their pixels ``[N,2]`` int32 (u, v) for the
    pixels with depth > 0 (and ``mask``), in row-major pixel order."""
    ok = depth > 0
    if mask is not None:
        ok &= mask
    v, u = np.nonzero(ok)
    pixels = np.stack([u, v], 1).astype(np.int32)
    return pixels_to_points(depth, pixels, k), pixels


def project(points: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Pixel coordinates ``[N,2]`` (u, v) of camera-frame points ``[N,3]``."""
    z = points[:, 2]
    return np.stack(
        [k[0, 0] * points[:, 0] / z + k[0, 2], k[1, 1] * points[:, 1] / z + k[1, 2]], 1
    )
