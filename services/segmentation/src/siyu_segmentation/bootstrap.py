"""Composition root of the segmentation service: settings, routers, consumers and loops wired into a ServiceSpec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from siyu_segmentation.settings import SegmentationSettings
from siyu_shared.service import ServiceSpec

MIGRATIONS = Path(__file__).parent / "migrations"


def build_spec(settings: SegmentationSettings | None = None, **overrides: Any) -> ServiceSpec:
    """The service as configured by the environment, or by ``settings`` / keyword overrides (tests, tools)."""
    return ServiceSpec(
        name="segmentation",
        title="Siyu Segmentation",
        description="Profiles of facts per person, declarative rules, and tags that follow people as they move.",
        settings=settings or SegmentationSettings(**overrides),
        migrations=MIGRATIONS,
    )
