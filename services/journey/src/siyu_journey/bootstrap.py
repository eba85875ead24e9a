"""Composition root of the journey service: settings, routers, consumers and loops wired into a ServiceSpec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from siyu_journey.settings import JourneySettings
from siyu_shared.service import ServiceSpec

MIGRATIONS = Path(__file__).parent / "migrations"


def build_spec(settings: JourneySettings | None = None, **overrides: Any) -> ServiceSpec:
    """The service as configured by the environment, or by ``settings`` / keyword overrides (tests, tools)."""
    return ServiceSpec(
        name="journey",
        title="Siyu Journey",
        description="Staged touches (SOPs as data) on time, never twice, never spam.",
        settings=settings or JourneySettings(**overrides),
        migrations=MIGRATIONS,
    )
