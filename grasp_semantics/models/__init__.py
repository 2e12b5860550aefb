"""The network: Qwen-VL semantics encoder, PointNet++, fusion, heads, losses (no ROS here).

Submodules import transformers lazily where they can; import what you need from them, e.g.
``from grasp_semantics.models.grasp_net import GraspNet``.
"""

from grasp_semantics.models.config import GraspNetConfig, get_config

__all__ = ["GraspNetConfig", "get_config"]
