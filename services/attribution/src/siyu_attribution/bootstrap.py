"""Composition root of the attribution service: settings, routers, consumers and loops wired into a ServiceSpec."""

from __future__ import annotations

from pathlib import Path

from siyu_attribution.settings import AttributionSettings
from siyu_shared.service import ServiceSpec

MIGRATIONS = Path(__file__).parent / "migrations"


def build_spec(settings: AttributionSettings | None = None) -> ServiceSpec:
    return ServiceSpec(
        name="attribution",
        title="Siyu Attribution",
        description="Who earned each order, and a double-entry commission ledger that always balances.",
        settings=settings or AttributionSettings(),  # required values come from the environment
        migrations=MIGRATIONS,
    )
