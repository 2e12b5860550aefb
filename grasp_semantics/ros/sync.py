"""Image / cloud pairing by stamp, keeping only the newest pair (no unbounded queue).

A stand-in for message_filters' ApproximateTimeSynchronizer with queue size 1 per input, written
without ROS types so it can be tested on its own: stamps are nanoseconds, messages are opaque.
The node feeds it from its subscription callbacks and takes pairs from a worker thread.
"""

from __future__ import annotations

import threading
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
