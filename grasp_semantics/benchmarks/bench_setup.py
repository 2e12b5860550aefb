"""What the benchmark runs on: the held-out scene and the inputs drawn from it, the sweeps'
sizes and the targets a result is held to. Shared by the timing, the sweeps and the report."""

from __future__ import annotations

import functools

import numpy as np

from grasp_semantics.data.scene import Scene, SceneConfig, generate_scene

BENCH_SCENE_SEED = 3  # the held-out (test_instance) scene the bench runs on
POINT_SWEEP = (5_000, 20_000, 80_000, 200_000)
IMAGE_SWEEP = ((240, 320), (480, 640), (720, 1280))
BATCH_SWEEP = (1, 4, 8)
INSTRUCTION = "hand me the knife by its handle"
TARGETS = {  # name: (goal, "max" | "min") on this 2-core CPU, tiny default, 640x480, 20k points
    "end_to_end_median_ms": (100.0, "max"),
    "ros_messages_median_ms": (10.0, "max"),
    "cached_speedup": (3.0, "min"),
    "fps_speedup": (10.0, "min"),
    "soak_rss_growth_pct": (2.0, "max"),
}


@functools.lru_cache(maxsize=2)
def bench_scene(full_density: bool = False) -> Scene:
    """The bench's held-out scene, generated once: as the data set has it (40,000 points) or
    with every point the camera sees (~225k)."""
    config = SceneConfig(max_points=None) if full_density else SceneConfig()
    return generate_scene(BENCH_SCENE_SEED, "test_instance", config)


def scene_inputs(
    n_points: int = 20_000, clouds: int = 1
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, str]:
    """The held-out scene's image, ``clouds`` clouds of ``n_points`` points each (uniform
    seeded draws from its full-density cloud, in the camera's order; the first is the same
    for every ``clouds``), its intrinsics and instruction."""
    scene = bench_scene(full_density=True)
    draws = []
    for i in range(clouds):
        rng = np.random.default_rng([n_points, i] if i else n_points)
        draws.append(scene.points[np.sort(rng.choice(len(scene.points), n_points, replace=False))])
    return scene.rgb, draws, scene.intrinsics, scene.instruction


def camera_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """What a depth camera sends for the held-out scene: its image, the organised cloud of
    every pixel ``[H, W, 3]`` back-projected from its depth (NaN where the sensor returned
    nothing), its intrinsics and instruction. The node keeps the finite points and thins
    them to ``max_cloud_points``."""
    scene = bench_scene(full_density=True)
    k = scene.intrinsics.astype(np.float64)
    rows, cols = np.mgrid[0 : scene.depth.shape[0], 0 : scene.depth.shape[1]]
    z = np.where(scene.depth > 0, scene.depth, np.nan)
    x, y = (cols - k[0, 2]) * z / k[0, 0], (rows - k[1, 2]) * z / k[1, 1]
    cloud = np.stack([x, y, z], axis=-1).astype(np.float32)  # [H, W, 3]
    return scene.rgb, cloud, scene.intrinsics, scene.instruction


def synthetic_inputs(height: int = 480, width: int = 640, n_points: int = 20_000, seed: int = 0):
    """A textured image, a wavy table-top-like cloud in front of the camera and its intrinsics,
    at any image size."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    xy = rng.uniform(-0.3, 0.3, (n_points, 2))
    z = 0.7 + 0.05 * np.sin(8 * xy[:, :1]) + rng.normal(0, 0.002, (n_points, 1))
    points = np.concatenate([xy, z], axis=1).astype(np.float32)
    f = 600.0 * width / 640.0
    k = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=np.float32)
    return rgb, points, k
