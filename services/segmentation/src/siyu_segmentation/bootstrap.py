"""Composition root of the segmentation service: settings, routers, consumers and loops wired into a ServiceSpec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from siyu_segmentation.adapters.rule_store import RuleCache
from siyu_segmentation.api.routes import router
from siyu_segmentation.batch import build_batch_handling
from siyu_segmentation.loops import backfill_loop, sweep_loop
from siyu_segmentation.retag import Tagger
from siyu_segmentation.settings import SegmentationSettings
from siyu_shared.events.topics import SUBSCRIPTIONS
from siyu_shared.service import ConsumerSpec, ServiceSpec

MIGRATIONS = Path(__file__).parent / "migrations"


def build_spec(settings: SegmentationSettings | None = None, **overrides: Any) -> ServiceSpec:
    """The service as configured by the environment, or by ``settings`` / keyword overrides (tests, tools)."""
    settings = settings or SegmentationSettings(**overrides)
    tagger = Tagger(cache=RuleCache(), topics=settings.topics)
    return ServiceSpec(
        name="segmentation",
        title="Siyu Segmentation",
        description="Profiles of facts per person, declarative rules, and tags that follow people as they move.",
        settings=settings,
        migrations=MIGRATIONS,
        routers=(router,),
        consumers=(
            ConsumerSpec(
                name="main",
                topics=SUBSCRIPTIONS["segmentation"]["main"],
                # Whole partition batches at a time (one event at a time only to isolate a failing one).
                batch=lambda runtime: build_batch_handling(tagger),
            ),
        ),
        background=(backfill_loop, sweep_loop),
    )
