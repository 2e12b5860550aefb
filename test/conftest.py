"""Test set-up: isolate ROS 2 traffic of this run and share small fixtures."""

from __future__ import annotations

import os

# Each test run talks only to itself: its own DDS domain, discovery limited to this host.
# Set before anything imports rclpy.
os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_LOCALHOST_ONLY", None)
