"""The gateway's Prometheus metrics (``GET /metrics``, text exposition format), in a registry of its own."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

MAX_SLICE_LABELS = 64  # slices come from callers: past this many, new ones count as "(other)" (bounded series)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CONFIDENCE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)
FSYNC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)


class ServeMetrics:
    """Counters and histograms of one gateway (names start with ``distill_serve_``)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("distill_serve_requests", "Requests answered, by route, mode and slice",
                                ["route", "mode", "slice"], registry=r)  # fmt: skip
        self.fallbacks = Counter("distill_serve_fallbacks", "Student answers sent to the teacher (or the teacher "
                                 "replaced by the student), by reason", ["reason"], registry=r)  # fmt: skip
        self.errors = Counter("distill_serve_errors", "Requests answered with an error, by kind", ["kind"], registry=r)
        self.latency = Histogram("distill_serve_latency_seconds", "Gateway latency per route (arrival to answer)",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.confidence = Histogram("distill_serve_student_confidence", "Student confidence (after the calibration "
                                    "temperature) of every student answer", buckets=CONFIDENCE_BUCKETS, registry=r)  # fmt: skip
        self.batch_size = Histogram("distill_serve_batch_size", "Requests per student generate call",
                                    buckets=BATCH_BUCKETS, registry=r)  # fmt: skip
        self.fsync = Histogram("distill_serve_log_fsync_seconds", "Duration of each request-log group commit",
                               buckets=FSYNC_BUCKETS, registry=r)  # fmt: skip
        self.log_lines = Counter("distill_serve_log_lines", "Request-log lines made durable", registry=r)
        self._slices: set[str] = set()
        self._lock = threading.Lock()

    def slice_label(self, name: str) -> str:
        with self._lock:
            if name in self._slices:
                return name
            if len(self._slices) < MAX_SLICE_LABELS:
                self._slices.add(name)
                return name
        return "(other)"

    def observe_request(self, route: str, mode: str, slice_name: str, seconds: float) -> None:
        self.requests.labels(route, mode, self.slice_label(slice_name)).inc()
        self.latency.labels(route).observe(seconds)

    def observe_sync(self, lines: int, seconds: float) -> None:
        self.fsync.observe(seconds)
        self.log_lines.inc(lines)

    def render(self) -> bytes:
        return generate_latest(self.registry)
