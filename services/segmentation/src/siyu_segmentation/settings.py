"""Settings of the segmentation service (environment prefix `SEGMENTATION_`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from siyu_shared.settings import ServiceSettings


class SegmentationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SEGMENTATION_", extra="ignore", frozen=True)

    sweep_interval_s: float = Field(
        default=300.0, gt=0, description="How often recency rules are re-evaluated and RFM recomputed."
    )
    backfill_poll_s: float = Field(default=1.0, gt=0, description="How often the worker looks for backfills.")
    backfill_chunk: int = Field(default=20000, ge=1, description="Profiles per backfill transaction.")
    consumer_max_batch: int = Field(
        default=2000,
        ge=1,
        description="Events fetched per poll (split per partition, one transaction each): the batch handler's cost "
        "is a few statements per round, so larger batches mean fewer round trips and commits per event.",
    )
