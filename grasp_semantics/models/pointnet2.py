"""PointNet++ in plain, vectorised PyTorch (CPU and GPU, no CUDA extensions).

References: Qi et al., "PointNet++: Deep Hierarchical Feature Learning on Point Sets in a Metric
Space" (NeurIPS 2017) for set abstraction (farthest point sampling, ball query, shared MLP, max
pool; multi-scale grouping) and feature propagation (inverse-distance 3-NN interpolation);
Eldar et al. 1997 for farthest point sampling.

Tensors are channels-last: points ``[B, N, 3]``, features ``[B, N, C]``. The only Python loop
is farthest point sampling's loop over the *samples* (each step is one vectorised distance
update over all points of all clouds); on CPU, FPS runs in C++ (``fpsample``) when installed.
Set abstraction has a fast path (exact C++ FPS, k-NN restricted to the ball, the first MLP
layer's feature part applied per point rather than per group member) and the textbook
``reference`` path it is tested and benchmarked against (``benchmarks/bench.py``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from grasp_semantics.models.config import PointNetConfig, SetAbstractionConfig

try:  # optional C++ FPS for CPU
    import fpsample as _fpsample
except ImportError:  # pragma: no cover - optional dependency
    _fpsample = None


def fps_reference(points: np.ndarray, k: int, start: int = 0) -> np.ndarray:
    """Textbook farthest point sampling, one cloud [N, 3] → indices [k] (benchmarks, tests)."""
    n = points.shape[0]
    chosen = np.zeros(k, dtype=np.int64)
    dist = np.full(n, np.inf)
    current = start
    for i in range(k):
        chosen[i] = current
        diff = points - points[current]
        dist = np.minimum(dist, np.einsum("ij,ij->i", diff, diff))
        current = int(np.argmax(dist))
    return chosen


def fps_torch(xyz: torch.Tensor, k: int, start: int = 0) -> torch.Tensor:
    """Batched farthest point sampling: xyz [B, N, 3] → indices [B, k] (int64), FPS order.

    Each of the k steps updates the distance-to-sampled-set of all B*N points at once, on
    coordinate planes [3, B, N] with in-place ops (no [B, N, 3] temporaries).
    """
    b, n, _ = xyz.shape
    planes = xyz.detach().float().permute(2, 0, 1).contiguous()  # [3, B, N]
    batch = torch.arange(b, device=xyz.device)
    out = torch.empty(b, k, dtype=torch.long, device=xyz.device)
    dist = torch.full((b, n), float("inf"), device=xyz.device)  # [B, N] to the sampled set
    d = torch.empty(b, n, device=xyz.device)
    tmp = torch.empty(b, n, device=xyz.device)
    current = torch.full((b,), start, dtype=torch.long, device=xyz.device)
    for i in range(k):
        out[:, i] = current
        center = planes[:, batch, current].unsqueeze(-1)  # [3, B, 1]
        torch.sub(planes[0], center[0], out=d).square_()
        torch.sub(planes[1], center[1], out=tmp)
        d.addcmul_(tmp, tmp)
        torch.sub(planes[2], center[2], out=tmp)
        d.addcmul_(tmp, tmp)
        torch.minimum(dist, d, out=dist)
        current = dist.argmax(-1)
    return out


@torch.compiler.disable  # numpy and C++ calls: runs eagerly inside a compiled network
def fps_exact(xyz: torch.Tensor, k: int) -> torch.Tensor:
    """Exact farthest point sampling from index 0, in FPS order: indices [B, k] of xyz [B, N, 3].

    The same result as :func:`fps_torch`; on CPU with ``fpsample`` installed its plain C++ loop
    runs instead of k Python steps (timed beside it by ``benchmarks/bench.py``).
    """
    if _fpsample is None or xyz.device.type != "cpu" or k >= xyz.shape[1]:
        return fps_torch(xyz, k)
    arr = xyz.detach().float().numpy()
    chosen = [_fpsample.fps_sampling(cloud, k, start_idx=0).astype(np.int64) for cloud in arr]
    return torch.from_numpy(np.stack(chosen))


def farthest_point_sample(
    xyz: torch.Tensor, k: int, use_fpsample: bool | None = None, ordered: bool = True
) -> torch.Tensor:
    """FPS indices [B, k] for xyz [B, N, 3]; ``fpsample`` on CPU by default.

    ``ordered=True`` (default): the indices are **in FPS order**, i.e. every prefix is a
    farthest point sample of the chosen points, which lets :class:`PointNet2` take its
    set-abstraction centroids as prefixes (``fps_ordered=True``). ``fpsample`` returns an
    index *set*, not an FPS order (and ignores the start point), so its sample is ordered by
    :func:`fps_torch` over the k chosen points. ``ordered=False`` skips that step (the
    indices are then a set in no useful order: pass ``fps_ordered=False`` to the network).
    With ``fpsample`` the chosen set may differ slightly from exact FPS of all N points.
    """
    if use_fpsample is None:
        use_fpsample = _fpsample is not None and xyz.device.type == "cpu"
    if not use_fpsample or k >= xyz.shape[1]:
        return fps_torch(xyz, k)
    if _fpsample is None:
        raise RuntimeError("fpsample is not installed")
    arr = xyz.detach().float().cpu().numpy()
    chosen = np.stack(
        [
            _fpsample.bucket_fps_kdline_sampling(cloud, k, h=7, start_idx=0).astype(np.int64)
            for cloud in arr
        ]
    )
    chosen_t = torch.from_numpy(chosen).to(xyz.device)  # [B, k], a set
    if not ordered:
        return chosen_t
    order = fps_torch(index_points(xyz.detach().float(), chosen_t), k)  # [B, k] FPS order
    return torch.gather(chosen_t, 1, order)


def sample_indices(
    points: np.ndarray, count: int, rng: np.random.Generator, ordered: bool = True
) -> np.ndarray:
    """Exactly ``count`` indices into ``points`` [N, 3]: a farthest point sample when N is
    larger (in FPS order when ``ordered``, see :func:`farthest_point_sample`), else every
    point once plus random repeats."""
    if len(points) <= count:
        extra = rng.integers(0, len(points), count - len(points))
        return np.concatenate([np.arange(len(points)), extra])
    idx = farthest_point_sample(torch.from_numpy(points)[None], count, ordered=ordered)
    return idx[0].numpy()


def square_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise squared distances: a [B, S, 3], b [B, N, 3] → [B, S, N].

    One bmm of augmented 5-vectors, (-2a, 1, |a|^2) . (b, |b|^2, 1) = |a - b|^2: a K=3 bmm
    plus broadcast adds is slower on CPU.
    """
    a_sq = (a * a).sum(-1, keepdim=True)
    b_sq = (b * b).sum(-1, keepdim=True)
    a5 = torch.cat([-2.0 * a, torch.ones_like(a_sq), a_sq], dim=-1)  # [B, S, 5]
    b5 = torch.cat([b, b_sq, torch.ones_like(b_sq)], dim=-1)  # [B, N, 5]
    return torch.bmm(a5, b5.transpose(1, 2)).clamp_(min=0.0)


def index_points(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Gather rows: points [B, N, C], idx [B, *S] → [B, *S, C].

    One ``index_select`` of whole rows of the flattened [B * N, C] points: on CPU far faster
    than ``gather`` with an index expanded over C.
    """
    b, n, c = points.shape
    offset = torch.arange(b, device=idx.device).view(b, *([1] * (idx.dim() - 1))) * n
    rows = points.reshape(b * n, c).index_select(0, (idx + offset).reshape(-1))
    return rows.reshape(*idx.shape, c)


def knn(
    xyz: torch.Tensor, centers: torch.Tensor, k: int, radius: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """k nearest points of each center, nearest first: squared distances and indices [B, S, k].

    With fewer than k points, the nearest is repeated. ``radius``: only the neighbours within
    it matter (ball query): the slots past a ball's points get distance inf (their indices are
    arbitrary) and slot 0 stays the nearest point even when the ball is empty. Masking the
    distances first makes ``topk`` faster on CPU (most candidates are rejected at once).
    """
    k_eff = min(k, xyz.shape[1])
    d2 = square_distance(centers, xyz)  # [B, S, N]
    if radius is not None:
        d2.masked_fill_(d2 > radius * radius, float("inf"))
    d2, idx = d2.topk(k_eff, dim=-1, largest=False, sorted=True)
    empty = torch.isinf(d2[..., :1])  # [B, S, 1] balls without a point (rare)
    # Eagerly the nearest point is only looked up when needed; a compiled graph always looks
    # it up rather than break on the data-dependent branch.
    if radius is not None and (torch.compiler.is_compiling() or bool(empty.any())):
        nearest = square_distance(centers, xyz).argmin(-1, keepdim=True)
        idx[..., :1] = torch.where(empty, nearest, idx[..., :1])
    if k_eff < k:
        pad = k - k_eff
        d2 = torch.cat([d2, d2[..., :1].expand(*d2.shape[:-1], pad)], dim=-1)
        idx = torch.cat([idx, idx[..., :1].expand(*idx.shape[:-1], pad)], dim=-1)
    return d2, idx


def ball_query(
    xyz: torch.Tensor,
    centers: torch.Tensor,
    radius: float,
    k: int,
    neighbours: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Up to k nearest neighbours of each center within ``radius``: indices [B, S, k].

    Slots with fewer than k points in the ball repeat the nearest one (the center itself when
    centers are drawn from xyz), as in PointNet++'s ball query; taking the *nearest* k rather
    than the first k by index makes groups independent of point order. ``neighbours``: a
    precomputed ``knn(xyz, centers, k' >= k)`` shared between the scales of one level.
    """
    d2, idx = neighbours if neighbours is not None else knn(xyz, centers, k)
    d2, idx = d2[..., :k], idx[..., :k]
    return torch.where(d2 > radius * radius, idx[..., :1], idx)


class SharedMLP(nn.Sequential):
    """Per-point MLP on the last dimension: Linear (→ LayerNorm) → ReLU per layer.

    ``norm=False`` for the grouped MLPs of set abstraction, which run on B*S*k rows: there a
    per-layer LayerNorm cost more than all the matmuls, so the pooled output is normed instead.
    """

    def __init__(self, in_dim: int, dims: tuple[int, ...], norm: bool = True) -> None:
        layers: list[nn.Module] = []
        for d in dims:
            layers.append(nn.Linear(in_dim, d))
            if norm:
                layers.append(nn.LayerNorm(d))
            layers.append(nn.ReLU(inplace=True))  # on a fresh Linear / LayerNorm output
            in_dim = d
        super().__init__(*layers)


class SetAbstraction(nn.Module):
    """FPS centroids, ball-query groups per radius, shared MLP, max pool (multi-scale concat)."""

    def __init__(self, cfg: SetAbstractionConfig, in_dim: int) -> None:
        super().__init__()
        if not len(cfg.radii) == len(cfg.nsamples) == len(cfg.mlps):
            raise ValueError("radii, nsamples and mlps need one entry per scale")
        self.cfg = cfg
        self.mlps = nn.ModuleList(SharedMLP(in_dim + 3, tuple(m), norm=False) for m in cfg.mlps)
        self.out_dim = sum(m[-1] for m in cfg.mlps)
        self.norm = nn.LayerNorm(self.out_dim)

    def forward(
        self,
        xyz: torch.Tensor,
        feats: torch.Tensor | None,
        fps_ordered: bool = False,
        reference: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """xyz [B, N, 3], feats [B, N, C] → centroids [B, S, 3], features [B, S, out_dim].

        ``fps_ordered``: xyz is already in farthest-point order, so its first S points are an
        exact FPS sample (no sampling cost). ``reference``: the textbook computation
        (:meth:`forward_reference`), for benchmarks and tests of the fast one.
        """
        if reference:
            return self.forward_reference(xyz, feats, fps_ordered)
        s = min(self.cfg.npoint, xyz.shape[1])
        idx = None if fps_ordered else fps_exact(xyz, s)  # [B, S]
        new_xyz = xyz[:, :s] if idx is None else index_points(xyz, idx)  # [B, S, 3]
        # The k nearest within the largest ball, shared by all scales.
        neighbours = knn(xyz, new_xyz, max(self.cfg.nsamples), radius=max(self.cfg.radii))
        outs = []
        for radius, k, mlp in zip(self.cfg.radii, self.cfg.nsamples, self.mlps, strict=True):
            idx = ball_query(xyz, new_xyz, radius, k, neighbours)  # [B, S, k]
            local = (index_points(xyz, idx) - new_xyz.unsqueeze(2)) / radius  # [B, S, k, 3]
            first = mlp[0]  # Linear over [local xyz, features]
            # Its feature part is applied once per input point and gathered, not once per
            # group member (B*N rows instead of B*S*k): the same sum, several times cheaper.
            h = F.linear(local, first.weight[:, :3], first.bias)
            if feats is not None:
                h = h + index_points(F.linear(feats, first.weight[:, 3:]), idx)
            for layer in list(mlp)[1:]:
                h = layer(h)
            outs.append(h.amax(dim=2))  # [B, S, C_scale]
        return new_xyz, self.norm(torch.cat(outs, dim=-1))

    def forward_reference(
        self, xyz: torch.Tensor, feats: torch.Tensor | None, fps_ordered: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` as written in the paper: FPS in torch, plain k-NN, and the shared
        MLP on every concatenated [local xyz, features] group member."""
        s = min(self.cfg.npoint, xyz.shape[1])
        new_xyz = xyz[:, :s] if fps_ordered else index_points(xyz, fps_torch(xyz, s))
        neighbours = knn(xyz, new_xyz, max(self.cfg.nsamples))
        outs = []
        for radius, k, mlp in zip(self.cfg.radii, self.cfg.nsamples, self.mlps, strict=True):
            idx = ball_query(xyz, new_xyz, radius, k, neighbours)  # [B, S, k]
            local = (index_points(xyz, idx) - new_xyz.unsqueeze(2)) / radius  # [B, S, k, 3]
            if feats is not None:
                local = torch.cat([local, index_points(feats, idx)], dim=-1)
            outs.append(mlp(local).amax(dim=2))  # [B, S, C_scale]
        return new_xyz, self.norm(torch.cat(outs, dim=-1))


class FeaturePropagation(nn.Module):
    """Inverse-distance 3-NN interpolation from coarse to fine points, skip concat, MLP."""

    def __init__(self, in_dim: int, skip_dim: int, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.mlp = SharedMLP(in_dim + skip_dim, dims)
        self.out_dim = dims[-1]

    def forward(
        self,
        xyz_fine: torch.Tensor,
        xyz_coarse: torch.Tensor,
        feats_fine: torch.Tensor | None,
        feats_coarse: torch.Tensor,
    ) -> torch.Tensor:
        """xyz_fine [B, N, 3], xyz_coarse [B, S, 3], feats [B, N, C1] / [B, S, C2] → [B, N, C]."""
        k = min(3, xyz_coarse.shape[1])
        d2, idx = square_distance(xyz_fine, xyz_coarse).topk(k, dim=-1, largest=False)  # [B,N,k]
        w = 1.0 / (d2 + 1e-8)
        w = w / w.sum(-1, keepdim=True)
        interp = (index_points(feats_coarse, idx) * w.unsqueeze(-1)).sum(2)  # [B, N, C2]
        if feats_fine is not None:
            interp = torch.cat([interp, feats_fine], dim=-1)
        return self.mlp(interp)


class PointNet2(nn.Module):
    """Set-abstraction encoder + feature-propagation decoder: per-point features [B, N, C]."""

    def __init__(self, cfg: PointNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.sa = nn.ModuleList()
        self.in_features = cfg.in_features + 3 * cfg.colour
        dims = [self.in_features]
        for level in cfg.sa:
            self.sa.append(SetAbstraction(level, dims[-1]))
            dims.append(self.sa[-1].out_dim)
        if len(cfg.fp_mlps) != len(cfg.sa):
            raise ValueError("need one feature-propagation MLP per set-abstraction level")
        self.fp = nn.ModuleList()
        coarse = dims[-1]
        for i, mlp in enumerate(cfg.fp_mlps):
            skip = dims[len(cfg.sa) - 1 - i]  # features of the finer level
            self.fp.append(FeaturePropagation(coarse, skip, tuple(mlp)))
            coarse = self.fp[-1].out_dim
        self.out_dim = coarse

    def forward(
        self,
        xyz: torch.Tensor,
        feats: torch.Tensor | None = None,
        fps_ordered: bool = False,
        reference: bool = False,
    ) -> torch.Tensor:
        """xyz [B, N, 3] (metres), optional feats [B, N, in_features] → [B, N, out_dim].

        ``reference``: set abstraction by :meth:`SetAbstraction.forward_reference`.
        """
        if self.cfg.center:
            xyz = xyz - xyz.mean(dim=1, keepdim=True)
        if self.in_features and (feats is None or feats.shape[-1] != self.in_features):
            raise ValueError(f"PointNet2 expects {self.in_features} input features per point")
        levels = [(xyz, feats if self.in_features else None)]
        for i, sa in enumerate(self.sa):
            # FPS centroids come out in FPS order, and a prefix of an FPS order is the FPS
            # of that prefix: only the first level (of an unordered cloud) needs to sample.
            levels.append(sa(*levels[-1], fps_ordered=fps_ordered or i > 0, reference=reference))
        coarse_xyz, coarse = levels[-1]
        for i, fp in enumerate(self.fp):
            fine_xyz, fine = levels[len(self.sa) - 1 - i]
            coarse = fp(fine_xyz, coarse_xyz, fine, coarse)
            coarse_xyz = fine_xyz
        return coarse
