"""PointNet++ layers and farthest point sampling."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from grasp_semantics.models.config import PointNetConfig, SetAbstractionConfig
from grasp_semantics.models.pointnet2 import (
    FeaturePropagation,
    PointNet2,
    SetAbstraction,
    ball_query,
    farthest_point_sample,
    fps_exact,
    fps_reference,
    fps_torch,
    index_points,
    knn,
    square_distance,
)


def test_fps_torch_matches_loop_reference():
    pts = np.random.default_rng(0).normal(size=(3000, 3)).astype(np.float32)
    ref = fps_reference(pts, 256)
    ours = fps_torch(torch.from_numpy(pts)[None], 256)[0].numpy()
    np.testing.assert_array_equal(ours, ref)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(20, 400),
    frac=st.floats(0.05, 1.0),
    seed=st.integers(0, 2**16),
    scale=st.floats(0.01, 10.0),
)
def test_fps_points_are_distinct_and_spread(n, frac, seed, scale):
    pts = (np.random.default_rng(seed).uniform(-1, 1, (n, 3)) * scale).astype(np.float32)
    k = max(2, int(n * frac))
    idx = fps_torch(torch.from_numpy(pts)[None], k)[0].numpy()
    assert len(set(idx.tolist())) == k  # distinct
    chosen = pts[idx].astype(np.float64)
    pair = np.linalg.norm(chosen[:, None] - chosen[None], axis=-1)
    np.fill_diagonal(pair, np.inf)
    cover = np.linalg.norm(pts[:, None].astype(np.float64) - chosen[None], axis=-1).min(1).max()
    # Greedy FPS: every chosen point was the farthest one when picked, so the chosen points
    # are at least the final covering radius apart from each other.
    assert pair.min() >= cover * (1 - 1e-4) - 1e-6


@pytest.mark.parametrize("use_fpsample", [False, True])
def test_farthest_point_sample_backends(use_fpsample):
    pytest.importorskip("fpsample")
    pts = torch.rand(2, 5000, 3)
    idx = farthest_point_sample(pts, 512, use_fpsample=use_fpsample)
    assert idx.shape == (2, 512)
    for b, row in enumerate(idx):
        assert len(set(row.tolist())) == 512 and int(row.max()) < 5000
        # FPS order: re-sampling the chosen points in order gives them back in that order
        again = fps_torch(pts[b, row][None], 512)[0]
        assert (again == torch.arange(512)).all()


def test_square_distance_and_ball_query():
    xyz = torch.rand(2, 300, 3)
    centers = xyz[:, :10]
    d = square_distance(centers, xyz)
    ref = ((centers[:, :, None] - xyz[:, None]) ** 2).sum(-1)
    torch.testing.assert_close(d, ref, atol=1e-5, rtol=1e-4)
    idx = ball_query(xyz, centers, 0.2, 16)
    assert idx.shape == (2, 10, 16)
    grouped = index_points(xyz, idx)
    assert ((grouped - centers[:, :, None]).norm(dim=-1) <= 0.2 + 1e-5).all()
    assert (idx[..., 0] == torch.arange(10)).all()  # the nearest is the center itself


def test_layer_shapes():
    xyz, feats = torch.rand(2, 256, 3), torch.rand(2, 256, 4)
    sa = SetAbstraction(SetAbstractionConfig(64, (0.1, 0.2), (8, 16), ((16, 32), (16, 24))), 4)
    new_xyz, new_feats = sa(xyz, feats)
    assert new_xyz.shape == (2, 64, 3) and new_feats.shape == (2, 64, 56)
    fp = FeaturePropagation(56, 4, (32, 16))
    assert fp(xyz, new_xyz, feats, new_feats).shape == (2, 256, 16)


def test_pointnet2_shapes_and_fps_order_shortcut():
    torch.manual_seed(0)
    cfg = PointNetConfig(num_points=512)
    net = PointNet2(cfg).eval()
    xyz = torch.rand(2, 512, 3) * 0.4
    with torch.no_grad():
        out = net(xyz)
        assert out.shape == (2, 512, net.out_dim)
        ordered = index_points(xyz, fps_torch(xyz, 512))  # same cloud, in FPS order
        a = net(ordered)
        b = net(ordered, fps_ordered=True)
    torch.testing.assert_close(a, b)


def test_fps_exact_is_fps_torch():
    pts = torch.from_numpy(np.random.default_rng(3).normal(size=(2, 2048, 3)).astype(np.float32))
    assert torch.equal(fps_exact(pts, 512), fps_torch(pts, 512))


def test_index_points_is_a_row_gather():
    points, idx = torch.rand(3, 50, 7), torch.randint(0, 50, (3, 11, 4))
    expected = torch.stack([points[b][idx[b]] for b in range(3)])
    assert torch.equal(index_points(points, idx), expected)


def test_knn_within_radius_gives_the_same_ball_query():
    xyz = torch.rand(2, 400, 3)
    centers = torch.cat([xyz[:, :30], xyz[:, :2] + 5.0], dim=1)  # the last two balls are empty
    for radius, k in ((0.05, 8), (0.15, 32)):
        plain = ball_query(xyz, centers, radius, k, knn(xyz, centers, k))
        masked = ball_query(xyz, centers, radius, k, knn(xyz, centers, k, radius=radius))
        assert torch.equal(plain.sort(-1).values, masked.sort(-1).values)
    assert (masked[:, -2:] == square_distance(centers, xyz).argmin(-1)[:, -2:, None]).all()


@pytest.mark.parametrize("in_features", [0, 3])
def test_pointnet2_fast_set_abstraction_matches_the_reference(in_features):
    """The fast path (exact FPS in C++, masked k-NN, per-point first layer) computes the same
    features as the textbook one, within float tolerance, on a table-top-like cloud."""
    torch.manual_seed(0)
    net = PointNet2(PointNetConfig(in_features=in_features)).eval()
    rng = np.random.default_rng(0)
    xyz = rng.uniform(-0.3, 0.3, (2, 2048, 3)).astype(np.float32)
    xyz[..., 2] = 0.7 + 0.05 * np.sin(8 * xyz[..., 0])
    xyz = torch.from_numpy(xyz)
    feats = torch.rand(2, 2048, in_features) if in_features else None
    with torch.inference_mode():
        fast = net(xyz, feats)
        reference = net(xyz, feats, reference=True)
    torch.testing.assert_close(fast, reference, atol=1e-5, rtol=1e-4)
