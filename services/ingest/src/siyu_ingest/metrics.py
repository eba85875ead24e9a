"""Prometheus metrics of the ingest service (beside the shared ones of ``siyu_shared.metrics``)."""

from __future__ import annotations

from prometheus_client import Counter

REFUSED_DELIVERIES = Counter(
    "siyu_ingest_unstorable_deliveries_total",
    "Signed deliveries refused (400) because they hold what Postgres cannot store (a NUL, an integer beyond int64).",
    ["channel"],
)
