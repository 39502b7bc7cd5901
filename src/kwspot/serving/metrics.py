"""Prometheus metrics (the text format at ``GET /metrics``): requests, latencies, active
streams, model calls and batch sizes. Each app has its own registry; under ``--workers N``
the processes share values through prometheus_client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``, set by ``kwspot serve`` before the workers start)."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServerMetrics:
    """Every metric the server exports, on one registry."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("kwspot_requests_total", "HTTP requests by route and status",
                                ["route", "status"], registry=r)
        self.request_seconds = Histogram("kwspot_request_seconds", "HTTP request latency",
                                         ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.streams_total = Counter("kwspot_streams_total", "WebSocket streams by how they "
                                     "ended", ["outcome"], registry=r)
        self.active_streams = Gauge("kwspot_active_streams", "open WebSocket streams",
                                    registry=r, multiprocess_mode="livesum")
        self.audio_seconds = Counter("kwspot_stream_audio_seconds_total",
                                     "audio received on streams", registry=r)
        self.detections = Counter("kwspot_detections_total", "detections by keyword and source",
                                  ["keyword", "source"], registry=r)
        self.event_seconds = Histogram(
            "kwspot_event_latency_seconds", "stream event latency: from receiving the frame "
            "that completed the window to sending the event", buckets=LATENCY_BUCKETS,
            registry=r)
        self.model_calls = Counter("kwspot_model_calls_total", "network calls on stream "
                                   "windows", registry=r)
        self.model_seconds = Histogram("kwspot_model_call_seconds", "one model call",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.batch_windows = Histogram("kwspot_batch_windows", "windows per model call",
                                       buckets=BATCH_BUCKETS, registry=r)
        self.batch_streams = Histogram("kwspot_batch_streams", "streams per model call",
                                       buckets=BATCH_BUCKETS, registry=r)

    def process_exits(self) -> None:
        """A worker that stops cleanly removes its live gauges from the shared directory (a
        worker that crashes cannot; its open-stream count stays until the server restarts)."""
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory and os.path.isdir(directory):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid(), directory)

    def render(self) -> bytes:
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory and os.path.isdir(directory):
            from prometheus_client import multiprocess

            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged, path=directory)
            return generate_latest(merged)
        return generate_latest(self.registry)
