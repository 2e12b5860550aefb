"""Synthetic functional-grasp data: procedural part-annotated objects, tasks and instructions,
ray-cast RGB-D scenes with labels and ground-truth grasps, held-out splits, shards and bags.

Entry point: ``generate_scene(seed, split)`` (see ``scene.py``).
"""

from grasp_semantics.data.scene import Scene, SceneConfig, generate_scene

__all__ = ["Scene", "SceneConfig", "generate_scene"]
