"""Composition root of the attribution service: settings, routers, consumers and loops wired into a ServiceSpec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from siyu_attribution.settings import AttributionSettings
from siyu_shared.service import ServiceSpec

MIGRATIONS = Path(__file__).parent / "migrations"


def build_spec(settings: AttributionSettings | None = None, **overrides: Any) -> ServiceSpec:
    """The service as configured by the environment, or by ``settings`` / keyword overrides (tests, tools)."""
    return ServiceSpec(
        name="attribution",
        title="Siyu Attribution",
        description="Who earned each order, and a double-entry commission ledger that always balances.",
        settings=settings or AttributionSettings(**overrides),
        migrations=MIGRATIONS,
    )
