"""ROS tests: every test in this folder is marked ``ros`` and may use ``ros_context``; the
run's ROS_DOMAIN_ID and localhost-only discovery are set by test/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import rclpy

HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark this folder's tests ``ros`` (the hook sees the whole session's items)."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.ros)


@pytest.fixture
def ros_context() -> Iterator[rclpy.Context]:
    """A fresh rclpy context for one test, shut down afterwards."""
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    context.try_shutdown()
