"""Settings of the ingest service (environment prefix `INGEST_`)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from siyu_shared.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore", frozen=True)
