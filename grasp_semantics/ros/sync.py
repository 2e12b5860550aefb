"""Image / cloud pairing by stamp, keeping only the newest pair (no unbounded queue), and the
fair lock the node's worker and services share the model through.

A stand-in for message_filters' ApproximateTimeSynchronizer with queue size 1 per input, written
without ROS types so it can be tested on its own: stamps are nanoseconds, messages are opaque.
The node feeds it from its subscription callbacks and takes pairs from a worker thread.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


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


class FairLock:
    """A lock granted in the order it was asked for, with a bounded wait.

    ``threading.Lock`` favours whoever asks again first: two service clients calling back to
    back can hold the model between them while a third waits for ever. Here each waiter queues
    and ``release`` hands the lock to the longest-waiting one directly.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[threading.Event] = deque()

    def acquire(self, timeout: float | None = None) -> bool:
        """Take the lock, waiting at most ``timeout`` seconds (None: no bound); False if not."""
        with self._mutex:
            if not self._held and not self._waiters:
                self._held = True
                return True
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(timeout):
            return True
        with self._mutex:
            if turn.is_set():  # handed over while the wait was timing out
                return True
            self._waiters.remove(turn)
            return False

    def release(self) -> None:
        """Hand the lock to the longest waiter, or free it."""
        with self._mutex:
            if not self._held:
                raise RuntimeError("FairLock released while not held")
            if self._waiters:
                self._waiters.popleft().set()  # ownership passes on: _held stays True
            else:
                self._held = False

    @property
    def waiting(self) -> int:
        """How many callers wait for the lock now."""
        with self._mutex:
            return len(self._waiters)

    @contextmanager
    def held(self, timeout: float | None = None) -> Iterator[None]:
        """``with lock.held(t):`` the lock for the block; :class:`Busy` after ``t`` seconds."""
        if not self.acquire(timeout):
            raise Busy(f"the model stayed busy with other requests for {timeout:g} s")
        try:
            yield
        finally:
            self.release()


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
