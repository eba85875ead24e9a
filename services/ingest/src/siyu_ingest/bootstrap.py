"""Composition root of the ingest service: settings, routers, consumers and loops wired into a ServiceSpec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from siyu_ingest.api.admin import admin_router
from siyu_ingest.api.imports import imports_router
from siyu_ingest.api.webhooks import webhook_router
from siyu_ingest.context import IngestContext
from siyu_ingest.settings import IngestSettings
from siyu_ingest.tmc_consumer import tmc_loop
from siyu_ingest.worker import delivery_worker
from siyu_shared.service import ServiceSpec

MIGRATIONS = Path(__file__).parent / "migrations"


def build_spec(settings: IngestSettings | None = None, **overrides: Any) -> ServiceSpec:
    """The service as configured by the environment, or by ``settings`` / keyword overrides (tests, tools)."""
    settings = settings or IngestSettings(**overrides)
    ctx = IngestContext.build(settings)
    return ServiceSpec(
        name="ingest",
        title="Siyu Ingest",
        description=(
            "The front door: channel webhooks in, one person behind every identifier, "
            "leads/contacts/orders/persons out."
        ),
        settings=settings,
        migrations=MIGRATIONS,
        routers=(webhook_router(ctx), admin_router(ctx), imports_router()),
        background=(delivery_worker(ctx), tmc_loop(ctx)),
    )
