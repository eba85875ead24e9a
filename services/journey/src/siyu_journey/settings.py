"""Settings of the journey service (environment prefix `JOURNEY_`)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from siyu_shared.settings import ServiceSettings


class JourneySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="JOURNEY_", extra="ignore", frozen=True)
