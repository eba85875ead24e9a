"""Settings of the segmentation service (environment prefix `SEGMENTATION_`)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from siyu_shared.settings import ServiceSettings


class SegmentationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SEGMENTATION_", extra="ignore", frozen=True)
