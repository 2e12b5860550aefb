"""Grasps planned across the predicted part: support plane, part axes, what lies between the
fingers, the planner against the ground truth, and decode_grasps' fallback to the grasp head."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from grasp_semantics.data.scene import generate_scene
from grasp_semantics.grasping.decoding import decode_grasps
from grasp_semantics.grasping.gripper import grasp_poses
from grasp_semantics.grasping.part_planning import (
    between_fingers,
    part_axes,
    part_neighbourhood,
    plan_part_grasps,
    plan_part_regions,
    predicted_part,
    support_plane,
)
from grasp_semantics.models.config import GripperConfig, HeadsConfig, PartGraspConfig

CFG = PartGraspConfig()


def tilted_table(rng: np.random.Generator, n: int = 6000) -> tuple[np.ndarray, np.ndarray]:
    """Noisy points of a plane through the origin with a tilted normal, and that normal."""
    up = np.array([0.2, -0.5, 0.84])
    up /= np.linalg.norm(up)
    u = np.cross(up, [1.0, 0.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(up, u)
    a, b = rng.uniform(-0.3, 0.3, (2, n))
    table = a[:, None] * u + b[:, None] * v + rng.normal(0, 0.001, (n, 1)) * up
    return table, up


def test_support_plane_is_found_oriented_towards_the_part_and_repeatable() -> None:
    rng = np.random.default_rng(0)
    table, up = tilted_table(rng)
    blob = 0.05 * up + rng.normal(0, 0.01, (800, 3))  # an object on the table
    cloud = np.concatenate([table, blob]).astype(np.float32)
    for seed, sign in ((0.05 * up, 1.0), (-0.05 * up, -1.0)):  # "up" points to the part's side
        found_up, d = support_plane(cloud, seed, CFG)
        assert found_up @ up == pytest.approx(sign, abs=1e-3)
        assert abs(d) < 1e-3  # the plane passes through the origin
    again = support_plane(cloud, 0.05 * up, CFG)
    np.testing.assert_array_equal(support_plane(cloud, 0.05 * up, CFG)[0], again[0])


def test_support_plane_is_none_without_a_plane_or_for_a_seed_on_it() -> None:
    rng = np.random.default_rng(1)
    table, _ = tilted_table(rng)
    assert support_plane(table, table[0], CFG) is None  # the seed lies on the plane
    blob = rng.normal(0, 0.05, (3000, 3))  # no plane holds a fifth of these
    assert support_plane(blob, np.zeros(3), CFG) is None


def test_part_axes_follow_the_part_on_the_plane() -> None:
    up = np.array([0.0, 0.0, 1.0])
    direction = np.array([np.cos(0.4), np.sin(0.4), 0.0])
    t = np.linspace(-0.05, 0.05, 50)
    handle = t[:, None] * direction + 0.01 * np.c_[np.zeros(50), np.zeros(50), np.sin(20 * t)]
    main, across = part_axes(handle, up)
    assert abs(main @ direction) == pytest.approx(1.0, abs=1e-6)
    assert abs(across @ direction) < 1e-6 and abs(across @ up) < 1e-12


def test_between_fingers_averages_the_contact_of_the_points_the_fingers_enclose() -> None:
    gripper = GripperConfig()
    # approach -z (from above), closing +x, opening 4 cm: TCP at the origin
    pose = grasp_poses(
        np.array([[-0.02, 0.0, 0.0]]),
        np.array([[0.0, 0.0, -1.0]]),
        np.array([[1.0, 0.0, 0.0]]),
        np.array([0.04]),
    )
    points = np.array(
        [
            [0.0, 0.0, 0.01],  # between the fingers
            [0.015, 0.005, 0.03],  # between the fingers
            [0.0, 0.03, 0.01],  # beside them (y beyond the finger breadth)
            [0.0, 0.0, -0.01],  # beyond the fingertips
        ]
    )
    contact = np.array([0.9, 0.5, 1.0, 1.0])
    held, count = between_fingers(pose, np.array([0.04]), points, contact, gripper)
    assert count.tolist() == [2] and held[0] == pytest.approx(0.7)


def test_part_neighbourhood_gives_cloud_points_the_nearest_scored_probability() -> None:
    scored = np.array([[0.0, 0.0, 0.0], [0.02, 0.0, 0.0], [0.5, 0.0, 0.0]])
    contact = np.array([0.9, 0.2, 0.7], dtype=np.float32)
    cloud = np.array(
        [
            [0.004, 0.0, 0.0],  # nearest: the first scored point
            [0.015, 0.003, 0.0],  # nearest: the second
            [0.0, 0.04, 0.0],  # outside the radius
            [0.5, 0.001, 0.0],  # far away (and its nearest scored point too)
        ],
        dtype=np.float32,
    )
    local, local_contact = part_neighbourhood(scored, contact, cloud, np.zeros(3), 0.03)
    np.testing.assert_allclose(local, cloud[:2], atol=1e-7)
    np.testing.assert_allclose(local_contact, [0.9, 0.2])


def raised_shaft(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A table (z = 0) and the upper half of a thin rod (4 mm radius, 12 cm long along y, its
    axis 1.5 cm up), both densely sampled: the cloud [P, 3] and its rod mask [P]."""
    a, b = rng.uniform(-0.2, 0.2, (2, 20000))
    table = np.c_[a, b, rng.normal(0, 0.0005, 20000)]
    angle, along = rng.uniform(0, np.pi, 1500), rng.uniform(-0.06, 0.06, 1500)
    rod = np.c_[0.004 * np.cos(angle), along, 0.015 + 0.004 * np.sin(angle)]
    cloud = np.concatenate([table, rod]).astype(np.float32)
    return cloud, np.r_[np.zeros(len(table), bool), np.ones(len(rod), bool)]


def test_a_thin_part_is_planned_on_the_dense_cloud_not_the_sparse_sample() -> None:
    """A rod that the network's sample covers with a few points: measured on the cloud, it
    gets top-down grasps closing across it; on the sample alone, no section of it holds
    enough points for one."""
    rng = np.random.default_rng(3)
    cloud, on_rod = raised_shaft(rng)
    index = np.r_[
        rng.choice(np.flatnonzero(~on_rod), 2000, replace=False),
        rng.choice(np.flatnonzero(on_rod), 4, replace=False),
    ]
    points = cloud[index]
    contact = np.where(on_rod[index], 0.9, 0.05).astype(np.float32)
    contact[-1] = 0.95  # the most probable contact, on the rod
    gripper = GripperConfig()
    dense = plan_part_grasps(points, contact, cloud, CFG, gripper)
    assert dense is not None
    best = dense.poses[np.argmax(dense.scores)]
    assert best[2, 2] == pytest.approx(-1.0, abs=1e-6)  # approaching straight down
    assert abs(best[0, 0]) == pytest.approx(1.0, abs=0.05)  # closing across the rod (along x)
    assert abs(best[0, 3]) < 0.003  # centred on it
    assert 0.008 <= dense.widths[np.argmax(dense.scores)] <= 0.03
    sparse = plan_part_grasps(
        points, contact, cloud, dataclasses.replace(CFG, dense=False), gripper
    )
    assert sparse is None or not (sparse.poses[:, 2, 2] < -0.99).any()


def wide_cup(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A table (z = 0) and a hollow cylinder on it, 9 cm across (wider than the gripper opens),
    its wall 5 mm thick and 10 cm high, outside, inside and rim densely sampled: the cloud
    [P, 3] and its wall mask [P]."""
    a, b = rng.uniform(-0.2, 0.2, (2, 20000))
    table = np.c_[a, b, rng.normal(0, 0.0005, 20000)]
    table = table[np.hypot(table[:, 0], table[:, 1]) > 0.045]
    angle, height = rng.uniform(0, 2 * np.pi, (2, 12000))
    radius = np.r_[np.full(5000, 0.045), np.full(5000, 0.040), rng.uniform(0.040, 0.045, 2000)]
    height = np.r_[0.1 * height[:10000] / (2 * np.pi), np.full(2000, 0.1)]
    wall = np.c_[radius * np.cos(angle), radius * np.sin(angle), height]
    cloud = np.concatenate([table, wall]).astype(np.float32)
    return cloud, np.r_[np.zeros(len(table), bool), np.ones(len(wall), bool)]


def test_a_hollow_part_wider_than_the_gripper_is_grasped_over_its_rim() -> None:
    """Across the cup the gripper cannot close, and top-down grasps placed by the part's height
    above the table (the most probable contact is low on the outside of the wall) would drive
    the palm into the rim; the best grasp straddles the wall from above, one finger inside
    and one outside, and without the rim candidates none does."""
    rng = np.random.default_rng(5)
    cloud, on_wall = wide_cup(rng)
    index = rng.choice(len(cloud), 2048, replace=False)
    points = np.r_[cloud[index], [[0.045, 0.0, 0.06]]].astype(np.float32)  # the seed: outside
    contact = np.r_[np.where(on_wall[index], 0.9, 0.05), 0.95].astype(np.float32)
    head = head_outputs(points, contact)

    def straddles(pose: np.ndarray, width: float) -> bool:
        radial = pose[:2, 3] / np.linalg.norm(pose[:2, 3])
        return bool(
            pose[2, 2] < -0.99  # approaching straight down
            and abs(pose[:2, 0] @ radial) > 0.95  # closing across the wall
            and abs(np.linalg.norm(pose[:2, 3]) - 0.0425) < 0.004  # centred on it
            and width < 0.03
            and 0.06 < pose[2, 3] < 0.1  # fingertips below the rim
        )

    out = decode_grasps(points, contact, *head, HeadsConfig(), 5, cloud)
    assert straddles(out["poses"][0], out["widths"][0])
    assert np.linalg.norm(out["poses"][0][:2, 3] - [0.0425, 0.0]) < 0.02  # near the contact
    no_rim = HeadsConfig(part_grasps=dataclasses.replace(CFG, rim_places=0))
    out = decode_grasps(points, contact, *head, no_rim, 5, cloud)
    assert not any(straddles(p, w) for p, w in zip(out["poses"], out["widths"], strict=True))


def oracle_inputs(seed: int) -> tuple:
    """A held-out scene and 2,048 of its points scored by the ground truth (0.9 on the part)."""
    scene = generate_scene(seed, "test_instance")
    index = np.random.default_rng(seed).choice(len(scene.points), 2048, replace=False)
    points = scene.points[index]
    contact = np.where(scene.point_contact[index] > 0, 0.9, 0.05).astype(np.float32)
    return scene, points, contact


def head_outputs(points: np.ndarray, contact: np.ndarray) -> tuple:
    """Plausible grasp-head outputs: top-down, closing along x, 3 cm wide, grasp prob 0.5."""
    n = len(points)
    approach = np.tile(np.float32([0, 0, 1]), (n, 1))
    closing = np.tile(np.float32([1, 0, 0]), (n, 1))
    return np.full(n, 0.5, np.float32), approach, closing, np.full(n, 0.03, np.float32)


@pytest.mark.slow
def test_planned_grasps_on_the_true_part_mostly_succeed() -> None:
    """With a perfect contact prediction the best planned grasp succeeds on most scenes
    (measured 9 of 12 on these seeds), ranked best first and never colliding with the cloud."""
    cfg = HeadsConfig()
    successes = []
    for seed in range(7000, 7012):
        scene, points, contact = oracle_inputs(seed)
        out = decode_grasps(points, contact, *head_outputs(points, contact), cfg, 5, scene.points)
        assert (np.diff(out["scores"]) <= 1e-7).all()
        assert len(out["poses"]) >= 1
        successes.append(bool(scene.check_grasps(out["poses"], out["widths"]).success[0]))
    assert np.mean(successes) >= 0.5


def test_decode_falls_back_to_the_grasp_head_when_nothing_is_planned() -> None:
    scene, points, contact = oracle_inputs(7003)  # a bottle's body: planned grasps
    head = head_outputs(points, contact)
    planned = decode_grasps(points, contact, *head, HeadsConfig(), 5, scene.points)
    off = HeadsConfig(part_grasps=PartGraspConfig(enabled=False))
    from_head = decode_grasps(points, contact, *head, off, 5, scene.points)
    # the head's grasps: ranked by grasp x contact probability, at sampled points
    np.testing.assert_allclose(from_head["scores"], 0.5 * contact[from_head["point_index"]])
    assert not np.allclose(planned["scores"], 0.5 * contact[planned["point_index"]])
    # no support plane in view (only the part's own points): the head answers too
    on_part = points[contact > 0.5]
    head_part = tuple(h[contact > 0.5] for h in head)
    fallback = decode_grasps(
        on_part, contact[contact > 0.5], *head_part, HeadsConfig(), 5, on_part
    )
    assert plan_part_grasps(on_part, contact[contact > 0.5], on_part, CFG, GripperConfig()) is None
    np.testing.assert_allclose(fallback["scores"], 0.45 * np.ones(len(fallback["scores"])))


def test_part_grasp_config_round_trips_through_the_model_config() -> None:
    cfg = HeadsConfig(part_grasps=dataclasses.replace(CFG, yaw_deg=(0.0, 10.0)))
    from grasp_semantics.models.config import GraspNetConfig

    full = GraspNetConfig(heads=cfg)
    assert GraspNetConfig.from_dict(full.to_dict()).heads.part_grasps == cfg.part_grasps


def test_regions_plan_on_the_next_most_probable_part_too() -> None:
    """Two rods 12 cm long, 12 cm apart, the first scored 0.9, the second 0.7: one region
    plans on the first only; two plan on both, the first first (the first rod's far end is the
    same part, not the next); a third finds only the table (a contact on the support plane
    plans nothing) and is left out."""
    rng = np.random.default_rng(4)
    cloud, on_rod = raised_shaft(rng)
    second = cloud[on_rod] + np.float32([0.12, 0.0, 0.0])
    cloud = np.concatenate([cloud, second])
    rod = np.r_[np.where(on_rod, 1, 0), np.full(len(second), 2)]
    index = rng.choice(len(cloud), 3000, replace=False)
    points = cloud[index]
    contact = np.choose(rod[index], [0.05, 0.9, 0.7]).astype(np.float32)
    gripper = GripperConfig()
    one = list(plan_part_regions(points, contact, cloud, CFG, gripper))
    assert len(one) == 1
    np.testing.assert_array_equal(
        one[0].poses, plan_part_grasps(points, contact, cloud, CFG, gripper).poses
    )
    plans = list(
        plan_part_regions(points, contact, cloud, dataclasses.replace(CFG, regions=3), gripper)
    )
    assert len(plans) == 2
    assert [rod[index][p.seed_index] for p in plans] == [1, 2]
    assert np.all(plans[1].poses[:, 0, 3] > 0.06)  # nearer the second rod than the first
    assert plans[1].contact.max() == pytest.approx(0.7)  # the first rod no longer counts
    assert (plans[0].part_rank, plans[1].part_rank) == (0, 1)
    assert plans[1].part_probability == pytest.approx(0.7 / 0.9)


def test_the_predicted_part_follows_linked_probable_points_however_long() -> None:
    chain = np.c_[np.arange(0, 0.2, 0.01), np.zeros(20), np.zeros(20)]  # 20 cm, 1 cm steps
    apart = np.array([[0.0, 0.05, 0.0], [0.25, 0.0, 0.0]])  # probable but 3 cm+ from it
    dull = np.array([[0.0, -0.005, 0.0]])  # next to it but too improbable
    points = np.concatenate([chain, apart, dull])
    contact = np.r_[np.full(20, 0.8), 0.9, 0.9, 0.1]
    contact[5] = 0.85  # the seed
    part = predicted_part(points, contact, 5, fraction=0.5, link=0.02)
    np.testing.assert_array_equal(part, np.r_[np.ones(20, bool), False, False, False])
    assert predicted_part(points, contact, 20, 0.5, 0.02).sum() == 1  # alone: itself
