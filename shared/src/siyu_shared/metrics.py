"""Prometheus metrics every service exposes on ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("siyu_http_requests_total", "HTTP requests served.", ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram(
    "siyu_http_request_seconds",
    "HTTP request latency.",
    ["service", "method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CONSUMER_LAG = Gauge(
    "siyu_consumer_lag", "Messages behind the partition's high watermark.", ["group", "topic", "partition"]
)
HANDLER_LATENCY = Histogram(
    "siyu_handler_seconds",
    "Time to handle one event, inside its transaction.",
    ["group", "event_type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)
HANDLER_OUTCOMES = Counter(
    "siyu_handler_outcomes_total",
    "Handled events by outcome (ok, duplicate, ignored, retried, dead_lettered).",
    ["group", "outcome"],
)
OUTBOX_BACKLOG = Gauge("siyu_outbox_backlog", "Outbox rows not yet published.", ["service"])
OUTBOX_PUBLISHED = Counter("siyu_outbox_published_total", "Outbox rows published to Kafka.", ["service"])
