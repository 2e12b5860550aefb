"""The whole network: Qwen-VL semantics encoder + PointNet++ + fusion + contact/grasp heads.

``GraspNet.forward(batch)`` takes a training/evaluation batch (see :meth:`GraspNet.forward`)
and returns per-point outputs; the stages are also callable one by one (``encode``,
``point_features``, ``fuse_and_predict``) so the predictor can time and cache them.
Checkpoints are a directory with ``config.yaml`` and ``model.safetensors``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from grasp_semantics.models.config import GraspNetConfig, get_config
from grasp_semantics.models.fusion import build_fusion, sample_colours
from grasp_semantics.models.heads import GraspHeads
from grasp_semantics.models.pointnet2 import PointNet2
from grasp_semantics.models.semantics_qwen import (
    EncoderOutput,
    QwenSemanticsEncoder,
    as_image_batch,
)

CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "model.safetensors"


def weights_fingerprint(tensors: Mapping[str, torch.Tensor]) -> str:
    """Content hash of named tensors (a ``state_dict``): what a head trained on a frozen model
    records, to refuse being loaded onto another."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


class GraspNet(nn.Module):
    """Language-conditioned functional grasp network."""

    def __init__(self, cfg: GraspNetConfig | str = "tiny") -> None:
        super().__init__()
        self.cfg = get_config(cfg) if isinstance(cfg, str) else cfg
        ecfg = self.cfg.encoder
        self.encoder = QwenSemanticsEncoder(ecfg)
        self.pointnet = PointNet2(self.cfg.pointnet)
        self.fusion = build_fusion(
            self.cfg.fusion, self.pointnet.out_dim, ecfg.global_dim, ecfg.token_dim
        )
        self.heads = GraspHeads(self.cfg.heads, self.cfg.fusion.out_dim)

    @classmethod
    def from_config(cls, cfg: GraspNetConfig | str) -> GraspNet:
        return cls(cfg)

    # ------------------------------------------------------------ stages
    def encode(
        self,
        images: Any,
        instructions: list[str],
        cached: bool = False,
        image_keys: list[str] | None = None,
    ) -> EncoderOutput:
        """Semantic features of uint8 images [B, V, H, W, 3] (or [B, H, W, 3]) + instructions;
        ``cached``: reuse the encoder's output for a seen (image, instruction), the images
        known by ``image_keys`` when given (see ``QwenSemanticsEncoder.encode_cached``)."""
        if cached:
            return self.encoder.encode_cached(images, instructions, image_keys)
        return self.encoder(images, instructions)

    def point_inputs(
        self,
        points: torch.Tensor,
        images: torch.Tensor,
        intrinsics: torch.Tensor | None,
        extrinsics: torch.Tensor | None = None,
        feats: torch.Tensor | None = None,
    ) -> torch.Tensor | None:
        """Per-point input features [B, N, F]: ``feats`` and, with ``pointnet.colour``, the
        colour of each point's pixel (images uint8 [B, V, H, W, 3], intrinsics [B, 3, 3])."""
        if not self.cfg.pointnet.colour:
            return feats
        if intrinsics is None:
            raise ValueError("point colours need camera intrinsics [B, 3, 3]")
        colours = sample_colours(
            points,
            images.to(points.device),
            intrinsics.to(points),
            None if extrinsics is None else extrinsics.to(points),
        )
        return colours if feats is None else torch.cat([feats, colours], dim=-1)

    def point_features(
        self, points: torch.Tensor, feats: torch.Tensor | None = None, fps_ordered: bool = False
    ) -> torch.Tensor:
        """PointNet++ features [B, N, C] of points [B, N, 3] (cloud frame, metres)."""
        return self.pointnet(points, feats, fps_ordered=fps_ordered)

    def fuse_and_predict(
        self,
        points: torch.Tensor,
        point_feats: torch.Tensor,
        enc: EncoderOutput,
        image_hw: tuple[int, int],
        intrinsics: torch.Tensor | None = None,
        extrinsics: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Fusion + heads: the per-point output dict of :class:`GraspHeads`."""
        if self.cfg.fusion.mode == "pixel_aligned":
            if intrinsics is None:
                raise ValueError("pixel_aligned fusion needs camera intrinsics [B, 3, 3]")
            fused = self.fusion(
                point_feats,
                enc.global_vec,
                points,
                enc.visual_grid,
                intrinsics.to(points),
                image_hw,
                None if extrinsics is None else extrinsics.to(points),
            )
        else:
            fused = self.fusion(point_feats, enc.global_vec)
        return self.heads(fused)

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Per-point predictions for a batch.

        ``batch`` keys: ``images`` uint8 [B, V, H, W, 3] (or [B, H, W, 3]); ``instructions``
        list of B strings; ``points`` float [B, N, 3] in the cloud frame (metres);
        optional ``point_feats`` [B, N, in_features]; ``intrinsics`` [B, 3, 3] of view 0 at
        its H x W (needed by pixel-aligned fusion); ``extrinsics`` [B, 4, 4] cloud → camera
        (identity if absent); ``fps_ordered`` bool (points already in FPS order).
        Returns contact_logits [B, N], grasp_logits [B, N], approach [B, N, 3],
        closing [B, N, 3], width [B, N].
        """
        images = as_image_batch(batch["images"])
        points = batch["points"]
        enc = self.encode(images, list(batch["instructions"]))
        inputs = self.point_inputs(
            points,
            images,
            batch.get("intrinsics"),
            batch.get("extrinsics"),
            batch.get("point_feats"),
        )
        feats = self.point_features(
            points, inputs, fps_ordered=bool(batch.get("fps_ordered", False))
        )
        image_hw = (int(images.shape[2]), int(images.shape[3]))
        return self.fuse_and_predict(
            points, feats, enc, image_hw, batch.get("intrinsics"), batch.get("extrinsics")
        )

    # ------------------------------------------------------------ checkpoints
    def _saved_keys(self) -> set[str]:
        """State-dict keys written to disk: all, except a checkpointed backbone's frozen
        base weights (they come back from its own directory)."""
        keys = set(self.state_dict().keys())
        bcfg = self.cfg.encoder.backbone
        if bcfg.checkpoint is not None and bcfg.tuning != "full":
            trainable = {n for n, p in self.named_parameters() if p.requires_grad}
            keys = {k for k in keys if not k.startswith("encoder.backbone.") or k in trainable}
        return keys

    def fingerprint(self) -> str:
        """Content hash of the weights :meth:`save_pretrained` writes (a checkpointed backbone's
        frozen base is named by its directory): what the grasp scorer records."""
        keep = self._saved_keys()
        tensors = {k: v for k, v in self.state_dict().items() if k in keep}
        digest = weights_fingerprint(tensors)
        checkpoint = self.cfg.encoder.backbone.checkpoint
        return digest if checkpoint is None else f"{digest}:{Path(checkpoint).expanduser()}"

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``config.yaml`` and ``model.safetensors`` into ``directory``."""
        from safetensors.torch import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.cfg.save(out / CONFIG_FILE)
        keep = self._saved_keys()
        state = {
            k: v.detach().cpu().contiguous() for k, v in self.state_dict().items() if k in keep
        }
        save_file(state, str(out / WEIGHTS_FILE), metadata={"format": "pt", "name": self.cfg.name})
        return out

    @classmethod
    def from_pretrained(
        cls, directory: str | os.PathLike, device: str | torch.device = "cpu"
    ) -> GraspNet:
        """Rebuild from :meth:`save_pretrained` output (weights mapped to ``device``)."""
        from safetensors.torch import load_file

        path = Path(directory)
        if not (path / CONFIG_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(f"{path} needs {CONFIG_FILE} and {WEIGHTS_FILE}")
        model = cls(GraspNetConfig.load(path / CONFIG_FILE))
        state = load_file(str(path / WEIGHTS_FILE), device=str(device))
        missing, unexpected = model.load_state_dict(state, strict=False)
        allowed = set(model.state_dict()) - model._saved_keys()
        bad_missing = [k for k in missing if k not in allowed]
        if bad_missing or unexpected:
            raise RuntimeError(
                f"checkpoint {path} does not match its config: missing {bad_missing[:5]}, "
                f"unexpected {list(unexpected)[:5]}"
            )
        return model.to(device)
