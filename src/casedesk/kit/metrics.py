"""Prometheus metrics of the process; exposed at ``/metrics``."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

HTTP_REQUESTS = Counter(
    "casedesk_http_requests_total",
    "HTTP requests served, by method, route template and status code",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "casedesk_http_request_duration_seconds",
    "HTTP request latency, by method and route template",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
UNHANDLED_ERRORS = Counter(
    "casedesk_unhandled_errors_total",
    "Requests that ended in an unexpected exception (rendered as a 500 problem)",
)


def render_latest() -> tuple[bytes, str]:
    """The exposition text; aggregates all workers when several processes share a directory."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
