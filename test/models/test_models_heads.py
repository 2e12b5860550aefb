"""Grasp heads, pose decoding (axis convention), NMS and fusion."""

import numpy as np
import torch

from grasp_semantics.grasping.decoding import (
    contact_probability,
    decode_grasps,
    pose_nms,
    snap_closing,
    surface_normals,
)
from grasp_semantics.grasping.gripper import cloud_collisions, grasp_poses
from grasp_semantics.grasping.part_planning import NearestPoints
from grasp_semantics.models.config import FusionConfig, HeadsConfig
from grasp_semantics.models.fusion import GlobalFusion, PixelAlignedFusion, project_to_grid
from grasp_semantics.models.heads import GraspHeads
from grasp_semantics.models.pointnet2 import knn


def test_heads_outputs_are_valid_grasp_parameters():
    cfg = HeadsConfig()
    out = GraspHeads(cfg, 32)(torch.randn(2, 50, 32))
    assert out["contact_logits"].shape == (2, 50) and out["grasp_logits"].shape == (2, 50)
    a, b = out["approach"], out["closing"]
    torch.testing.assert_close(a.norm(dim=-1), torch.ones(2, 50))
    torch.testing.assert_close(b.norm(dim=-1), torch.ones(2, 50))
    assert (a * b).sum(-1).abs().max() < 1e-5
    assert (out["width"] >= 0).all() and (out["width"] <= cfg.max_width).all()


def test_contact_probability_averages_each_point_with_its_nearest_neighbours():
    # a part of 20 points on a line (logit 2) and, 5 cm off it, a stray point the head is
    # surer of (logit 4) among points it rejects (logit -4)
    part = torch.stack([torch.linspace(0, 0.1, 20), torch.zeros(20), torch.zeros(20)], -1)
    stray = torch.tensor([[0.05, 0.05, 0.0]]) + torch.tensor(
        [[0, 0, 0], [0.003, 0, 0], [-0.003, 0, 0], [0, 0.003, 0]]
    )
    points = torch.cat([part, stray])[None]  # [1, 24, 3]
    logits = torch.cat([torch.full((20,), 2.0), torch.tensor([4.0, -4.0, -4.0, -4.0])])[None]
    alone = contact_probability(points, logits, 1)
    torch.testing.assert_close(alone, torch.sigmoid(logits))
    assert int(alone.argmax()) == 20  # on its own, the stray point is the most probable
    smoothed = contact_probability(points, logits, 4)
    assert int(smoothed.argmax()) < 20  # with its neighbours, the part is
    # the stray point: the mean of itself and its three neighbours
    expected = (torch.sigmoid(torch.tensor(4.0)) + 3 * torch.sigmoid(torch.tensor(-4.0))) / 4
    torch.testing.assert_close(smoothed[0, 20], expected)
    torch.testing.assert_close(smoothed[0, 5], torch.sigmoid(torch.tensor(2.0)))


def test_contact_probability_on_cpu_matches_the_dense_neighbour_search():
    # on CPU the neighbours come from open3d's k-d tree, elsewhere from pointnet2.knn
    generator = torch.Generator().manual_seed(0)
    points = 0.1 * torch.randn(2, 300, 3, generator=generator)
    logits = torch.randn(2, 300, generator=generator)
    _, index = knn(points, points, 5)
    dense = torch.sigmoid(logits).gather(1, index.reshape(2, -1)).reshape(2, 300, 5).mean(-1)
    torch.testing.assert_close(contact_probability(points, logits, 5), dense)


def test_decoded_grasps_are_proper_rotations_with_the_axis_convention():
    rng = np.random.default_rng(0)
    m = 200
    points = rng.uniform(-0.2, 0.2, (m, 3)).astype(np.float32)
    approach = rng.normal(size=(m, 3))
    approach /= np.linalg.norm(approach, axis=1, keepdims=True)
    closing = np.cross(approach, rng.normal(size=(m, 3)))
    closing /= np.linalg.norm(closing, axis=1, keepdims=True)
    width = rng.uniform(0.01, 0.08, m).astype(np.float32)
    g = decode_grasps(
        points,
        rng.uniform(size=m),
        rng.uniform(size=m),
        approach,
        closing,
        width,
        HeadsConfig(),
        max_grasps=20,
    )
    poses = g["poses"]
    assert poses.shape == (20, 4, 4)
    rot = poses[:, :3, :3]
    np.testing.assert_allclose(
        rot @ rot.transpose(0, 2, 1), np.broadcast_to(np.eye(3), rot.shape), atol=1e-6
    )
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-6)
    idx = g["point_index"]
    np.testing.assert_allclose(rot[:, :, 2], approach[idx], atol=1e-6)  # +z approach
    np.testing.assert_allclose(rot[:, :, 0], closing[idx], atol=1e-6)  # +x closing
    np.testing.assert_allclose(rot[:, :, 1], np.cross(rot[:, :, 2], rot[:, :, 0]), atol=1e-6)
    tcp = points[idx] + 0.5 * width[idx, None] * closing[idx]  # TCP = c + w/2 * closing
    np.testing.assert_allclose(poses[:, :3, 3], tcp, atol=1e-6)
    np.testing.assert_array_equal(poses[:, 3], np.broadcast_to([0, 0, 0, 1], (20, 4)))
    assert (np.diff(g["scores"]) <= 1e-7).all()  # best first by grasp x contact probability
    assert (g["scores"] <= g["contact_scores"] + 1e-7).all()


def _pose(contact, approach, closing, width=0.04):
    return grasp_poses(
        np.array([contact], float),
        np.array([approach], float),
        np.array([closing], float),
        np.array([width]),
    )


def test_nms_removes_duplicates_including_the_finger_swap():
    base = _pose([0, 0, 0], [0, 0, 1], [1, 0, 0])
    swapped = _pose([0.04, 0, 0], [0, 0, 1], [-1, 0, 0])  # same grasp from the other finger
    far = _pose([0.2, 0, 0], [0, 0, 1], [1, 0, 0])
    tilted = _pose([0, 0, 0], [0, 1, 0], [1, 0, 0])
    poses = np.concatenate([base, swapped, far, tilted])
    keep = pose_nms(poses, np.array([0.9, 0.8, 0.7, 0.6]), 10, 0.02, np.deg2rad(30))
    assert keep.tolist() == [0, 2, 3]


def test_global_fusion_modes():
    feats, g = torch.randn(2, 10, 16), torch.randn(2, 8)
    for op in ("film", "concat"):
        assert GlobalFusion(16, 8, 12, op)(feats, g).shape == (2, 10, 12)


def test_projection_and_pixel_aligned_fusion():
    k = torch.tensor([[[500.0, 0, 320], [0, 500, 240], [0, 0, 1]]])
    pts = torch.tensor([[[0.0, 0.0, 1.0], [-0.6, -0.45, 1.0], [0.0, 0.0, -1.0], [5.0, 0, 1.0]]])
    rows, cols, inside = project_to_grid(pts, k, (480, 640), (8, 10))
    assert inside.tolist() == [[True, True, False, False]]
    assert (rows[0, 0].item(), cols[0, 0].item()) == (4, 5)  # image centre
    assert (rows[0, 1].item(), cols[0, 1].item()) == (0, 0)  # top-left corner
    fusion = PixelAlignedFusion(16, 8, 6, FusionConfig(mode="pixel_aligned", out_dim=12))
    grid = torch.randn(1, 1, 8, 10, 6)
    out = fusion(torch.zeros(1, 4, 16), torch.zeros(1, 8), pts, grid, k, (480, 640))
    assert out.shape == (1, 4, 12)
    assert not torch.allclose(out[0, 0], out[0, 1])  # different cells, different features
    torch.testing.assert_close(out[0, 2], out[0, 3])  # both get the learned "no token"


def test_sample_colours_reads_each_points_pixel():
    from grasp_semantics.models.fusion import sample_colours

    image = torch.zeros(1, 1, 4, 6, 3, dtype=torch.uint8)
    image[0, 0, 2, 5] = torch.tensor([255, 0, 51], dtype=torch.uint8)
    k = torch.tensor([[[10.0, 0.0, 3.0], [0.0, 10.0, 2.0], [0.0, 0.0, 1.0]]])
    # pixel (u=5, v=2) centre at z=1: x = (5.5 - 3) / 10, y = (2.5 - 2) / 10; then one behind
    # the camera and one outside the image
    points = torch.tensor([[[0.25, 0.05, 1.0], [0.0, 0.0, -1.0], [5.0, 0.0, 1.0]]])
    colours = sample_colours(points, image, k)
    assert torch.allclose(colours[0, 0], torch.tensor([1.0, 0.0, 0.2]))
    assert torch.equal(colours[0, 1:], torch.zeros(2, 3))


def test_nms_matches_distances_and_angles_compared_directly():
    """pose_nms compares squared distances and cosines; the same grasps survive as when the
    TCP distances and rotation angles themselves are compared (the textbook form)."""
    rng = np.random.default_rng(4)
    n = 200
    poses = grasp_poses(
        rng.uniform(-0.03, 0.03, (n, 3)),
        rng.normal(size=(n, 3)) + np.array([0.0, 0.0, 3.0]),  # similar approach directions
        rng.normal(size=(n, 3)),
        rng.uniform(0.0, 0.08, n),
    )
    scores = rng.uniform(0, 1, n)
    order = np.argsort(-scores, kind="stable")
    p = poses[order]
    trans = np.linalg.norm(p[:, None, :3, 3] - p[None, :, :3, 3], axis=-1)
    rel = np.einsum("pji,qjk->pqik", p[:, :3, :3], p[:, :3, :3])  # r1^T r2
    flip = rel * np.array([-1.0, -1.0, 1.0])  # r2 turned 180 degrees about its z axis
    angle = np.minimum(
        np.arccos(np.clip((np.trace(rel, axis1=2, axis2=3) - 1) / 2, -1, 1)),
        np.arccos(np.clip((np.trace(flip, axis1=2, axis2=3) - 1) / 2, -1, 1)),
    )
    duplicate = (trans < 0.02) & (angle < np.deg2rad(30))
    keep, suppressed = [], np.zeros(n, dtype=bool)
    for i in range(n):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= duplicate[i]
    expected = order[keep[:25]]
    np.testing.assert_array_equal(pose_nms(poses, scores, 25, 0.02, np.deg2rad(30)), expected)


def test_cloud_collisions_count_points_inside_the_fingers_and_palm():
    # top-down grasp at the origin, closing along x, opened to 4 cm (+ clearance)
    pose = grasp_poses(
        np.array([[-0.02, 0, 0]]),
        np.array([[0, 0, 1.0]]),
        np.array([[1.0, 0, 0]]),
        np.array([0.04]),
    )
    between = np.zeros((50, 3))  # the object between the fingers: no collision
    in_finger = np.tile([[-0.03, 0.0, -0.02]], (4, 1))  # inside the left finger's box
    behind = np.tile([[0.0, 0.0, -0.055]], (4, 1))  # inside the palm
    assert not cloud_collisions(pose, np.array([0.04]), between)[0]
    assert cloud_collisions(pose, np.array([0.04]), np.r_[between, in_finger])[0]
    assert cloud_collisions(pose, np.array([0.04]), np.r_[between, behind])[0]
    assert not cloud_collisions(pose, np.array([0.04]), in_finger, tolerance=4)[0]  # noise


def test_decoding_skips_grasps_that_hit_the_cloud():
    points = np.array([[0.0, 0, 0], [0.3, 0, 0], [0.6, 0, 0]], dtype=np.float32)
    approach = np.tile([0.0, 0, 1], (3, 1))
    closing = np.tile([1.0, 0, 0], (3, 1))
    width = np.full(3, 0.04)
    score = np.array([0.9, 0.8, 0.7])
    obstacle = np.tile([[0.0, 0.0, -0.055]], (10, 1))  # in the palm of the best grasp
    args = (points, score, np.ones(3), approach, closing, width, HeadsConfig())
    assert decode_grasps(*args, max_grasps=2)["point_index"].tolist() == [0, 1]
    kept = decode_grasps(*args, max_grasps=2, cloud=np.r_[points, obstacle])["point_index"]
    assert kept.tolist() == [1, 2]
    no_check = HeadsConfig(collision_check=False)
    assert decode_grasps(*args[:-1], no_check, 2, cloud=obstacle)["point_index"].tolist() == [0, 1]


def test_cloud_collisions_match_testing_every_point_against_every_grasp():
    """Only points within reach of a TCP are box-tested; the verdicts are those of testing the
    whole cloud against each grasp (70 grasps: more than one block of 64)."""
    from grasp_semantics.grasping.gripper import gripper_boxes, opening
    from grasp_semantics.models.config import GripperConfig

    rng = np.random.default_rng(5)
    cloud = rng.uniform(-0.1, 0.1, (3000, 3)).astype(np.float32)
    n = 70
    poses = grasp_poses(
        rng.uniform(-0.08, 0.08, (n, 3)),
        rng.normal(size=(n, 3)),
        rng.normal(size=(n, 3)),
        rng.uniform(0.0, 0.08, n),
    )
    widths = rng.uniform(0.0, 0.08, n)
    lo, hi = gripper_boxes(opening(widths, GripperConfig()), GripperConfig())
    counts = []
    for i in range(n):
        local = (cloud - poses[i, :3, 3]) @ poses[i, :3, :3]
        inside = (local[:, None] >= lo[i]) & (local[:, None] <= hi[i])
        counts.append(int(inside.all(axis=2).any(axis=1).sum()))
    expected = np.array(counts) > 3
    assert 0 < expected.sum() < n  # both verdicts occur
    np.testing.assert_array_equal(cloud_collisions(poses, widths, cloud), expected)


def _plane(n: int = 400, seed: int = 0) -> np.ndarray:
    """A noisy 20 x 20 cm patch of the plane z = 0.5 (1 mm noise)."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-0.1, 0.1, (n, 2))
    return np.c_[xy, 0.5 + rng.normal(0, 0.001, n)].astype(np.float32)


def test_surface_normals_of_a_plane_and_a_sphere_and_not_of_a_line():
    plane = _plane()
    normals, surface = surface_normals(plane[:5], NearestPoints(plane), neighbours=16)
    assert surface.all() and (np.abs(normals[:, 2]) > 0.99).all()
    rng = np.random.default_rng(1)
    radial = rng.normal(size=(4000, 3))
    radial /= np.linalg.norm(radial, axis=1, keepdims=True)
    sphere = 0.05 * radial  # a 5 cm ball sampled ~3 mm apart, as a depth camera sees a mug
    normals, surface = surface_normals(sphere[:5], NearestPoints(sphere), neighbours=16)
    assert surface.all() and (np.abs((normals * radial[:5]).sum(1)) > 0.99).all()
    line = np.c_[np.linspace(0, 0.1, 50), np.zeros((50, 2))]
    assert not surface_normals(line[:3], NearestPoints(line), neighbours=16)[1].any()


def test_snapping_turns_the_closing_about_the_approach_onto_the_normal():
    contact, width = np.array([[0.0, 0, 0.5]] * 3), np.full(3, 0.03)
    inward = np.array([0.0, 0, 1])  # the surface faces -z: the first finger pushes along +z
    approach = np.tile([1.0, 0, 0], (3, 1))
    tilts = np.deg2rad([30.0, 60.0, 30.0])  # closing turned about the approach axis
    closing = np.c_[np.zeros(3), np.sin(tilts), np.cos(tilts)]
    poses = grasp_poses(contact, approach, closing, width)
    # normals of either sign; the third leans towards the approach: only its part
    # perpendicular to the approach is taken
    leaning = np.array([0.3, 0.0, 1.0]) / np.hypot(1, 0.3)
    normals = np.array([-inward, inward, leaning])
    snapped = snap_closing(poses, contact, width, normals, 45.0)
    for g in (0, 2):
        np.testing.assert_allclose(snapped[g, :3, 0], inward, atol=1e-9)
        np.testing.assert_allclose(snapped[g, :3, 2], approach[g], atol=1e-9)  # approach kept
        np.testing.assert_allclose(snapped[g, :3, 3], contact[g] + 0.015 * inward, atol=1e-9)
    np.testing.assert_array_equal(snapped[1], poses[1])  # 60 degrees off: left alone


def test_decoding_with_the_cloud_snaps_the_closing_onto_the_observed_surface():
    """A grasp whose closing direction is 20 degrees off the observed plane's normal (turned
    about its approach) comes back closing along the normal; without the cloud, or with
    snapping off, it is unchanged."""
    plane = _plane()
    m = 8
    points = plane[:m]
    tilt = np.deg2rad(20.0)
    closing = np.tile([0.0, np.sin(tilt), np.cos(tilt)], (m, 1))
    approach = np.tile([1.0, 0.0, 0.0], (m, 1))
    args = (points, np.linspace(1, 0.5, m), np.ones(m), approach, closing, np.full(m, 0.03))
    free = HeadsConfig(collision_check=False)
    g = decode_grasps(*args, free, max_grasps=3, cloud=plane)
    np.testing.assert_allclose(np.abs(g["poses"][:, 2, 0]), 1.0, atol=1e-3)  # along +-z
    np.testing.assert_allclose(g["poses"][:, :3, 2], approach[:3], atol=1e-9)
    for plain in (
        decode_grasps(*args, free, max_grasps=3),
        decode_grasps(
            *args,
            HeadsConfig(collision_check=False, snap_closing_deg=0),
            max_grasps=3,
            cloud=plane,
        ),
    ):
        np.testing.assert_allclose(plain["poses"][:, :3, 0], closing[:3], atol=1e-6)
