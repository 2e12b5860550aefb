"""Draw a scene with its labels and ground-truth grasps, to check the data by eye.

Left: the RGB image, the functional-contact points of the target in magenta and the top
ground-truth grasps as gripper outlines (best in green). Right: the per-pixel part labels
(table grey, each object its own hue, the functional part bright) and a caption.
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from grasp_semantics.data.render import project
from grasp_semantics.data.scene import Scene
from grasp_semantics.grasping.gripper import gripper_segments


def label_image(scene: Scene) -> np.ndarray:
    """RGB ``[H,W,3]`` uint8 of the part labels."""
    h, w = scene.mask_object.shape
    out = np.full((h, w, 3), 40, np.uint8)
    out[scene.mask_object == -1] = (150, 150, 150)
    n = max(len(scene.objects), 1)
    for i in range(len(scene.objects)):
        hue = i / n
        for part in range(len(scene.objects[i].part_names)):
            m = (scene.mask_object == i) & (scene.mask_part == part)
            if i == scene.target and part == scene.functional_part:
                rgb = (1.0, 0.2, 1.0)
            else:
                rgb = colorsys.hsv_to_rgb(hue, 0.7, 0.45 + 0.35 * part)
            out[m] = (np.array(rgb) * 255).astype(np.uint8)
    return out


def draw_scene(scene: Scene, max_grasps: int = 5) -> Image.Image:
    """The picture described in the module docstring."""
    h, w = scene.rgb.shape[:2]
    img = Image.fromarray(scene.rgb.copy())
    draw = ImageDraw.Draw(img)
    for u, v in scene.pixels[scene.point_contact.astype(bool)]:
        draw.point((int(u), int(v)), fill=(255, 0, 255))
    k = scene.intrinsics.astype(np.float64)
    for rank in range(min(max_grasps, len(scene.grasps)) - 1, -1, -1):
        pose = scene.grasps[rank].astype(np.float64)
        seg = gripper_segments(float(scene.grasp_widths[rank]))
        pts = seg.reshape(-1, 3) @ pose[:3, :3].T + pose[:3, 3]
        if np.any(pts[:, 2] <= 0.01):
            continue
        uv = project(pts, k).reshape(-1, 2, 2)
        colour = (0, 255, 0) if rank == 0 else (255, 200, 0)
        for a, b in uv:
            draw.line([tuple(a), tuple(b)], fill=colour, width=2 if rank == 0 else 1)
        for c in scene.grasp_contacts[rank].astype(np.float64):
            cu, cv = project(c[None], k)[0]
            draw.ellipse([cu - 2, cv - 2, cu + 2, cv + 2], outline=(0, 255, 255))

    panel = Image.new("RGB", (w // 2, h), (20, 20, 20))
    labels = Image.fromarray(label_image(scene)).resize((w // 2, h // 2), Image.NEAREST)
    panel.paste(labels, (0, 0))
    pd = ImageDraw.Draw(panel)
    target = scene.objects[scene.target]
    lines = [
        f'"{scene.instruction}"',
        f"task: {scene.task}  ({scene.paraphrase_id})",
        f"target: #{scene.target} {target.colour} {target.category} [{target.instance_id}]",
        f"grasp part: {target.part_names[scene.functional_part]}",
        f"seed {scene.seed}, split {scene.split}",
        f"points {len(scene.points)}, contact {int(scene.point_contact.sum())}",
        f"GT grasps {len(scene.grasps)} (top {max_grasps} drawn, best green)",
        "objects:",
    ] + [f" #{i} {o.colour} {o.category} ({o.instance_id})" for i, o in enumerate(scene.objects)]
    y = h // 2 + 6
    for line in lines:
        for chunk in _wrap(line, 50):
            pd.text((6, y), chunk, fill=(235, 235, 235))
            y += 13
    out = Image.new("RGB", (w + w // 2, h))
    out.paste(img, (0, 0))
    out.paste(panel, (w, 0))
    return out


def _wrap(text: str, width: int) -> list[str]:
    words, lines, cur = text.split(), [], ""
    for word in words:
        if cur and len(cur) + 1 + len(word) > width:
            lines.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}".strip()
    return [*lines, cur]


def save_scene_png(scene: Scene, path: str | Path, max_grasps: int = 5) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    draw_scene(scene, max_grasps).save(path)
    return path
