"""Image / cloud pairing by stamp, keeping only the newest pair (no unbounded queue), the
ordering of stamps, and the thread the node's worker and services share the model through.

A stand-in for message_filters' ApproximateTimeSynchronizer with queue size 1 per input, written
without ROS types so it can be tested on its own: stamps are nanoseconds, messages are opaque.
The node feeds it from its subscription callbacks and takes pairs from a worker thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class Pair:
    """An image and a cloud whose stamps differ by at most the slop."""

    image: Any
    cloud: Any
    image_stamp_ns: int
    cloud_stamp_ns: int


class NewestPairSync:
    """Pairs the newest image with the newest cloud when their stamps are within ``slop_ns``.

    Each side keeps only its latest message. A pair is formed when the newer side arrives and
    matches; a pair nobody took before the next one forms is dropped (and counted), so a slow
    consumer always gets the freshest data. Thread-safe.
    """

    def __init__(self, slop_ns: int) -> None:
        self.slop_ns = int(slop_ns)
        self._lock = threading.Condition()
        self._image: tuple[int, Any] | None = None
        self._cloud: tuple[int, Any] | None = None
        self._pair: Pair | None = None
        self.pairs_formed = 0
        self.pairs_dropped = 0
        self.last_gap_ns = 0  # stamp gap of the newest unmatched image and cloud

    def add_image(self, stamp_ns: int, msg: Any) -> bool:
        """Store an image; returns True when it completed a pair."""
        with self._lock:
            self._image = (stamp_ns, msg)
            return self._match()

    def add_cloud(self, stamp_ns: int, msg: Any) -> bool:
        """Store a cloud; returns True when it completed a pair."""
        with self._lock:
            self._cloud = (stamp_ns, msg)
            return self._match()

    def _match(self) -> bool:
        if self._image is None or self._cloud is None:
            return False
        (image_ns, image), (cloud_ns, cloud) = self._image, self._cloud
        if abs(image_ns - cloud_ns) > self.slop_ns:
            self.last_gap_ns = image_ns - cloud_ns
            return False
        self.last_gap_ns = 0
        if self._pair is not None:
            self.pairs_dropped += 1
        self._pair = Pair(image, cloud, image_ns, cloud_ns)
        self.pairs_formed += 1
        self._image = self._cloud = None
        self._lock.notify_all()
        return True

    def take(self, timeout: float | None = None) -> Pair | None:
        """The pending pair (removing it), waiting up to ``timeout`` seconds; None if none."""
        with self._lock:
            if self._pair is None and timeout:
                self._lock.wait_for(lambda: self._pair is not None, timeout)
            pair, self._pair = self._pair, None
            return pair

    def clear(self) -> None:
        """Forget everything stored."""
        with self._lock:
            self._image = self._cloud = self._pair = None


class ModelThread:
    """Runs every call that touches the model on one thread of its own, in arrival order.

    Two reasons. Fairness: calls queue first come, first served, so two service clients
    calling back to back cannot starve a third (a ``threading.Lock`` favours whoever asks again
    first). Speed: torch's CPU kernels can run slower in a thread when the process's main
    thread has run the model before (docs/speed.md), so loading, predicting, describing and
    freeing all happen here and never on the thread that spins the executor or calls
    configure.
    """

    def __init__(self, name: str = "model") -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._closed = False
        self._count = threading.Lock()
        self._waiting = 0
        self.busy_since: float | None = None  # monotonic start of the running call, or None

    def call(self, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        """``fn(*args)`` on the model thread, once the calls before it are done. :class:`Busy`
        when it has not started within ``timeout`` seconds (it is then never run); a call that
        has started is waited for to its end."""
        if self._closed:
            raise RuntimeError("the model thread is shut down")
        with self._count:
            self._waiting += 1
        future = self._pool.submit(self._timed, fn, args)
        try:
            return future.result(timeout)
        except FutureTimeout:
            if future.cancel():
                with self._count:
                    self._waiting -= 1
                raise Busy(
                    f"the model stayed busy with other requests for {timeout:g} s"
                ) from None
            return future.result()

    def _timed(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        with self._count:
            self._waiting -= 1
        self.busy_since = time.monotonic()
        try:
            return fn(*args)
        finally:
            self.busy_since = None

    @property
    def waiting(self) -> int:
        """Calls queued behind the running one."""
        with self._count:
            return self._waiting

    @property
    def closed(self) -> bool:
        return self._closed

    def shutdown(self) -> None:
        """Finish the running call, drop the queued ones; later calls raise."""
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)


class Busy(RuntimeError):
    """The model could not be had within the caller's bound."""


class StampOrder:
    """Which pairs are stale, in a way no single stamp can poison.

    A pair older than the last predicted one by at most ``max_rewind_ns`` came out of order and
    is skipped; one older by more means time jumped back (a bag looping, a clock reset, or a
    bad stamp earlier) and restarts the ordering from it. A stamp more than ``max_ahead_ns``
    ahead of the clock is predicted on but never becomes the reference, so it cannot lock out
    the normal stamps after it.
    """

    def __init__(self, max_rewind_ns: int, max_ahead_ns: int) -> None:
        self.max_rewind_ns, self.max_ahead_ns = int(max_rewind_ns), int(max_ahead_ns)
        self.last_ns: int | None = None

    def check(self, stamp_ns: int, now_ns: int) -> tuple[bool, str]:
        """``(predict, note)``: whether to predict on a pair stamped ``stamp_ns`` when the clock
        says ``now_ns`` (0: no clock yet, as under sim time before /clock), and why not / what
        was unusual ('' when nothing)."""
        if now_ns > 0 and stamp_ns - now_ns > self.max_ahead_ns:
            return True, (
                f"cloud stamp {stamp_ns / 1e9:.3f} s is {(stamp_ns - now_ns) / 1e9:.1f} s ahead "
                "of the node's clock (use_sim_time?): predicted, not used to order later input"
            )
        if self.last_ns is None or stamp_ns >= self.last_ns:
            return True, ""
        rewind_ns = self.last_ns - stamp_ns
        if rewind_ns <= self.max_rewind_ns:
            return False, (
                f"cloud stamp {stamp_ns / 1e9:.3f} s is older than the last predicted one "
                f"({self.last_ns / 1e9:.3f} s): stale input skipped"
            )
        self.last_ns = None
        return True, (
            f"cloud stamps jumped back {rewind_ns / 1e9:.3f} s (a bag looping or a clock "
            "reset): ordering restarted"
        )

    def predicted(self, stamp_ns: int, now_ns: int) -> None:
        """Record a predicted pair's stamp as the reference (unless it was far ahead)."""
        if not (now_ns > 0 and stamp_ns - now_ns > self.max_ahead_ns):
            self.last_ns = stamp_ns

    def clear(self) -> None:
        self.last_ns = None
