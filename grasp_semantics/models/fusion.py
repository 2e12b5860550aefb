"""Fusion of the instruction semantics into per-point geometry features.

``global`` is the baseline: the pooled semantic vector ``[B, 256]`` modulates every
point (FiLM, Perez et al. 2018: ``h * (1 + gamma) + beta``) or is concatenated to it.
``pixel_aligned`` adds, per point, the instruction-conditioned visual token of the image cell
the point projects to (pinhole intrinsics ``K``), in the spirit of pixel-aligned features
(PIFu, Saito et al. 2019); points behind the camera or outside the image get a learned
"no token" vector. Both keep the global path, so the two modes differ only in that extra term.
"""

from __future__ import annotations

import torch
from torch import nn

from grasp_semantics.models.config import FusionConfig


class GlobalFusion(nn.Module):
    """Point features [B, N, C] + global vector [B, G] → fused features [B, N, out]."""

    def __init__(self, point_dim: int, global_dim: int, out_dim: int, op: str = "film") -> None:
        super().__init__()
        if op not in ("film", "concat"):
            raise ValueError(f"global fusion op must be film | concat, got {op!r}")
        self.op = op
        if op == "film":
            self.film = nn.Linear(global_dim, 2 * point_dim)
            nn.init.zeros_(self.film.weight)  # starts as the identity modulation
            nn.init.zeros_(self.film.bias)
            in_dim = point_dim
        else:
            in_dim = point_dim + global_dim
        self.out = nn.Sequential(nn.Linear(in_dim, out_dim), nn.LayerNorm(out_dim), nn.ReLU())

    def forward(self, feats: torch.Tensor, global_vec: torch.Tensor) -> torch.Tensor:
        if self.op == "film":
            gamma, beta = self.film(global_vec).unsqueeze(1).chunk(2, dim=-1)  # [B, 1, C] each
            h = feats * (1.0 + gamma) + beta
        else:
            g = global_vec.unsqueeze(1).expand(-1, feats.shape[1], -1)  # [B, N, G]
            h = torch.cat([feats, g], dim=-1)
        return self.out(h)


def project_to_grid(
    points: torch.Tensor,
    intrinsics: torch.Tensor,
    image_hw: tuple[int, int],
    grid_hw: tuple[int, int],
    extrinsics: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Grid cell of each point: rows [B, N], cols [B, N] (long) and validity [B, N] (bool).

    ``points`` [B, N, 3] in the cloud frame; ``extrinsics`` [B, 4, 4] maps them into the camera
    optical frame (identity when None: organised clouds of the same RGB-D camera).
    ``intrinsics`` [B, 3, 3] is for the original image of size ``image_hw`` (H, W); the
    image is resized, not cropped, to the grid (the token grid, or the image itself for
    ``grid_hw == image_hw``), so u and v scale independently.
    """
    if extrinsics is not None:
        points = points @ extrinsics[:, :3, :3].transpose(1, 2) + extrinsics[:, None, :3, 3]
    uvw = points @ intrinsics.transpose(1, 2)  # [B, N, 3]
    z = uvw[..., 2]
    in_front = z > 1e-6
    safe_z = torch.where(in_front, z, torch.ones_like(z))
    # pixels; a NaN (from overflowing coordinates) falls outside rather than becoming an index
    u = torch.nan_to_num(uvw[..., 0] / safe_z, nan=-1.0)
    v = torch.nan_to_num(uvw[..., 1] / safe_z, nan=-1.0)
    h, w = image_hw
    inside = in_front & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    rows = (v / h * grid_hw[0]).floor().clamp(0, grid_hw[0] - 1).long()
    cols = (u / w * grid_hw[1]).floor().clamp(0, grid_hw[1] - 1).long()
    return rows, cols, inside


class PixelAlignedFusion(nn.Module):
    """Global fusion plus the visual token at each point's pixel (view 0)."""

    def __init__(self, point_dim: int, global_dim: int, token_dim: int, cfg: FusionConfig):
        super().__init__()
        self.global_fusion = GlobalFusion(point_dim, global_dim, cfg.out_dim, cfg.global_op)
        self.no_token = nn.Parameter(torch.zeros(token_dim))
        self.out = nn.Sequential(
            nn.Linear(cfg.out_dim + token_dim, cfg.out_dim), nn.LayerNorm(cfg.out_dim), nn.ReLU()
        )

    def forward(
        self,
        feats: torch.Tensor,
        global_vec: torch.Tensor,
        points: torch.Tensor,
        visual_grid: torch.Tensor,
        intrinsics: torch.Tensor,
        image_hw: tuple[int, int],
        extrinsics: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """feats [B, N, C], points [B, N, 3], visual_grid [B, V, Hg, Wg, T] → [B, N, out]."""
        b, _, hg, wg, t = visual_grid.shape
        rows, cols, inside = project_to_grid(points, intrinsics, image_hw, (hg, wg), extrinsics)
        flat = visual_grid[:, 0].reshape(b, hg * wg, t)  # [B, Hg*Wg, T]
        cell = (rows * wg + cols).unsqueeze(-1).expand(-1, -1, t)  # [B, N, T]
        tokens = torch.gather(flat, 1, cell)  # [B, N, T]
        tokens = torch.where(inside.unsqueeze(-1), tokens, self.no_token.expand_as(tokens))
        h = self.global_fusion(feats, global_vec)
        return self.out(torch.cat([h, tokens], dim=-1))


def build_fusion(cfg: FusionConfig, point_dim: int, global_dim: int, token_dim: int) -> nn.Module:
    if cfg.mode == "global":
        return GlobalFusion(point_dim, global_dim, cfg.out_dim, cfg.global_op)
    if cfg.mode == "pixel_aligned":
        return PixelAlignedFusion(point_dim, global_dim, token_dim, cfg)
    raise ValueError(f"fusion mode must be global | pixel_aligned, got {cfg.mode!r}")


def sample_colours(
    points: torch.Tensor,
    images: torch.Tensor,
    intrinsics: torch.Tensor,
    extrinsics: torch.Tensor | None = None,
) -> torch.Tensor:
    """RGB in [0, 1] of the pixel each point projects to in view 0: [B, N, 3] (0 outside).

    ``images`` uint8 [B, V, H, W, 3], ``intrinsics`` [B, 3, 3] of that H x W.
    """
    b, _, h, w, _ = images.shape
    rows, cols, inside = project_to_grid(points, intrinsics, (h, w), (h, w), extrinsics)
    flat = images[:, 0].reshape(b, h * w, 3)  # [B, H*W, 3]
    pixel = (rows * w + cols).unsqueeze(-1).expand(-1, -1, 3)  # [B, N, 3]
    colours = torch.gather(flat, 1, pixel).to(points.dtype) / 255.0
    return colours * inside.unsqueeze(-1)
