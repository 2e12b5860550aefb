"""Test set-up shared by every folder; imports nothing of ROS, so the core's tests run after a
plain ``pip install .[test]``.

Folders follow the package's layers (test/models/, test/grasping/, ...); test/ros/ holds every
test that needs rclpy and the generated interfaces, marked ``ros`` by its own conftest. Where
rclpy is not installed that folder is not collected and the few ``ros`` tests elsewhere are
skipped, so ``pytest -m "not ros"`` (or plain ``pytest``) runs the rest.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

# Each test run talks only to itself: its own DDS domain, discovery limited to this host. Set
# here, before anything can import rclpy, because core tests start ROS too where it is
# installed (the bench times the node; test_installed_commands runs the installed node).
os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_LOCALHOST_ONLY", None)

HAVE_ROS = importlib.util.find_spec("rclpy") is not None  # found, not imported
collect_ignore = [] if HAVE_ROS else ["ros"]


def pytest_report_header() -> str:
    return (
        "rclpy: found"
        if HAVE_ROS
        else "rclpy: not installed: test/ros/ not collected, other ros tests skipped"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without rclpy a ``ros`` test outside test/ros/ (the installed node's) is skipped, so a
    plain ``pytest`` after ``pip install .[test]`` reports it rather than failing in it."""
    if HAVE_ROS:
        return
    for item in items:
        if item.get_closest_marker("ros"):
            item.add_marker(pytest.mark.skip(reason="rclpy is not installed"))
