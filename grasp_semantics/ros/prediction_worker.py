"""The node's prediction worker: a thread that takes the newest image/cloud pair and predicts
on it, at most ``rate_hz()`` times a second (newer pairs replace the pending one meanwhile), so
a slow model never builds a queue. Nothing a pair carries ends it; the node's watchdog
restarts it if it dies all the same."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class PredictionWorker:
    """``take(timeout)`` gives the next pair or None, ``predict(pair)`` handles one, and
    ``on_failure(what, error)`` reports what ``predict`` raised."""

    def __init__(
        self,
        take: Callable[[float], Any],
        predict: Callable[[Any], None],
        rate_hz: Callable[[], float],
        on_failure: Callable[[str, BaseException], Any],
    ) -> None:
        self._take, self._predict, self._rate_hz = take, predict, rate_hz
        self._on_failure = on_failure
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.restarts = 0  # by the watchdog

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def stopped(self) -> bool:
        """True from :meth:`stop` until the next :meth:`start`."""
        return self._stop.is_set()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="predict", daemon=True)
        self._thread.start()

    def restart(self) -> None:
        """Start a new thread in place of one that died."""
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        """Stop and join the thread (a prediction under way finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        next_allowed = 0.0
        while not self._stop.is_set():
            wait = next_allowed - time.monotonic()
            if wait > 0:  # rate cap: newer pairs replace the pending one meanwhile
                self._stop.wait(wait)
                continue
            pair = self._take(0.1)
            if pair is None:
                continue
            rate = self._rate_hz()
            next_allowed = time.monotonic() + (1.0 / rate if rate > 0 else 0.0)
            try:
                self._predict(pair)
            except Exception as error:  # the worker outlives every input
                self._on_failure("prediction failed", error)
