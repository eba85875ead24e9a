"""Prometheus metrics of the ingest service (beside the shared ones of ``siyu_shared.metrics``)."""

from __future__ import annotations

from prometheus_client import Counter

STALE_CALLBACKS = Counter(
    "siyu_ingest_stale_callbacks_total",
    "Authentic callbacks refused because their signed send time lies outside INGEST_CALLBACK_MAX_AGE_S of now.",
    ["channel"],
)
REFUSED_DELIVERIES = Counter(
    "siyu_ingest_unstorable_deliveries_total",
    "Signed deliveries refused (400), or polled TMC messages skipped, because they hold what Postgres cannot store "
    "(a NUL, an integer beyond int64).",
    ["channel"],
)
