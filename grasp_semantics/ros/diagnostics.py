"""Health of the node as a diagnostic_msgs/DiagnosticStatus: rate, latency, errors."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue


class Health:
    """Counters and the last problem, safe to update from several threads."""

    def __init__(self, name: str, hardware_id: str, window: int = 50) -> None:
        self.name, self.hardware_id = name, hardware_id
        self._lock = threading.Lock()
        self._latencies_ms: deque[float] = deque(maxlen=window)
        self._stamps: deque[float] = deque(maxlen=window)
        self.predictions = 0
        self.rejected = 0
        self.last_error = ""
        self.last_error_time = 0.0
        self.warning = ""
        self.last_warning = ""  # kept after the condition clears, like last_error

    def prediction(self, latency_ms: float) -> None:
        """Record a published prediction; a success clears the warning, not the last error."""
        with self._lock:
            self.predictions += 1
            self._latencies_ms.append(latency_ms)
            self._stamps.append(time.monotonic())
            self.warning = ""

    def error(self, text: str) -> None:
        """Record rejected input or a failed prediction."""
        with self._lock:
            self.rejected += 1
            self.last_error = text
            self.last_error_time = time.monotonic()

    def warn(self, text: str) -> None:
        """Record a condition that stops predictions without being bad input."""
        with self._lock:
            self.warning = text
            self.last_warning = text or self.last_warning

    def status(
        self, dropped_pairs: int, worker_restarts: int = 0, error_hold_s: float = 5.0
    ) -> DiagnosticStatus:
        """ERROR for a few seconds after bad input, WARN while waiting on something, else OK."""
        with self._lock:
            now = time.monotonic()
            rate = 0.0
            if len(self._stamps) > 1 and now - self._stamps[-1] < 5.0:
                rate = (len(self._stamps) - 1) / max(self._stamps[-1] - self._stamps[0], 1e-6)
            latency = np.asarray(self._latencies_ms) if self._latencies_ms else np.zeros(1)
            if self.last_error and now - self.last_error_time < error_hold_s:
                level, message = DiagnosticStatus.ERROR, self.last_error
            elif self.warning:
                level, message = DiagnosticStatus.WARN, self.warning
            else:
                level, message = DiagnosticStatus.OK, "predicting" if self.predictions else "ready"
            values = {
                "rate_hz": f"{rate:.2f}",
                "latency_ms_median": f"{np.median(latency):.1f}",
                "latency_ms_p95": f"{np.percentile(latency, 95):.1f}",
                "predictions": str(self.predictions),
                "rejected_inputs": str(self.rejected),
                "dropped_pairs": str(dropped_pairs),
                "worker_restarts": str(worker_restarts),
                "last_error": self.last_error,
                "last_warning": self.last_warning,
            }
        return DiagnosticStatus(
            level=level,
            name=self.name,
            message=message,
            hardware_id=self.hardware_id,
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
