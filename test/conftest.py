"""Test set-up: isolate ROS 2 traffic of this run and share small fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Each test run talks only to itself: its own DDS domain, discovery limited to this host.
# Set before anything imports rclpy.
os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_LOCALHOST_ONLY", None)

import rclpy  # after the environment above


@pytest.fixture
def ros_context() -> Iterator[rclpy.Context]:
    """A fresh rclpy context for one test, shut down afterwards."""
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    context.try_shutdown()
