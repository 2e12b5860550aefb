"""Helpers for tests that talk to nodes over real rclpy topics (no sleeps: events)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node


class Inbox:
    """Collects messages of one subscription and lets a test wait for a count."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self._cond = threading.Condition()

    def __call__(self, msg: Any) -> None:
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()

    def wait_until(self, predicate: Any, timeout: float = 30.0) -> Any:
        """The first message (received before or during the wait) that satisfies ``predicate``."""

        def found() -> Any:
            return next((m for m in self.messages if predicate(m)), None)

        with self._cond:
            if not self._cond.wait_for(lambda: found() is not None, timeout):
                raise TimeoutError(
                    f"no matching message among {len(self.messages)} in {timeout} s"
                )
            return found()

    def wait_for(self, count: int = 1, timeout: float = 30.0) -> list[Any]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.messages) >= count, timeout):
                raise TimeoutError(f"got {len(self.messages)} of {count} messages in {timeout} s")
            return list(self.messages)


@contextmanager
def spinning(*nodes: Node) -> Iterator[MultiThreadedExecutor]:
    """Spin ``nodes`` on a background executor for the duration of the block."""
    executor = MultiThreadedExecutor(num_threads=4, context=nodes[0].context)
    for node in nodes:
        executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        yield executor
    finally:
        executor.shutdown()
        thread.join(timeout=10)


def wait_until(condition: Any, timeout: float = 10.0, what: str = "condition") -> None:
    """Block until ``condition()`` holds (state another thread changes), at most ``timeout``."""
    pause = threading.Event()  # never set: a bounded wait between checks
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        pause.wait(0.02)
    raise TimeoutError(f"{what} did not hold within {timeout} s")


def wait_for_subscribers(publisher: Any, count: int = 1, timeout: float = 10.0) -> None:
    """Block until ``publisher`` has matched ``count`` subscriptions (DDS discovery)."""
    wait_until(
        lambda: publisher.get_subscription_count() >= count,
        timeout,
        f"a subscriber on {publisher.topic_name}",
    )
