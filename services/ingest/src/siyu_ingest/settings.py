"""Settings of the ingest service (environment prefix `INGEST_`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from siyu_shared.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore", frozen=True)

    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Larger webhook bodies get 413.")
    webhook_commits_in_flight: int = Field(
        default=2,
        ge=1,
        description="Concurrent group commits of webhook deliveries; fewer means more deliveries per commit.",
    )
    callback_max_age_s: float = Field(
        default=86_400.0,
        gt=0,
        description=(
            "A callback whose signed send time (WeCom's `timestamp`) lies further than this from now, either way, is "
            "refused (400) and counted in siyu_ingest_stale_callbacks_total."
        ),
    )
    identity_hmac_key: SecretStr = Field(
        default=SecretStr("dev-only-identity-hmac-key"),
        description="Key of the HMAC under which identifiers (phones…) are matched; production refuses the default.",
    )
    pii_key: SecretStr = Field(
        default=SecretStr("dev-only-pii-encryption-key"),
        description="Key (any string; SHA-256 derived) of the AES-GCM encryption of phones, names and credentials.",
    )
    channels_file: Path | None = Field(
        default=None, description="YAML/JSON `{tenant: {channel: {secret: …}}}` for the local demo."
    )
    worker_batch: int = Field(default=500, ge=1, description="Deliveries processed per transaction.")
    worker_poll_interval_s: float = Field(default=0.5, gt=0)
    worker_max_attempts: int = Field(default=5, ge=1, description="Attempts of a delivery before it is failed.")
    credentials_cache_s: float = Field(default=5.0, ge=0)
    tmc_poll_interval_s: float = Field(default=2.0, gt=0, description="TMC consume poll when the feed was empty.")
    tmc_timeout_s: float = Field(default=10.0, gt=0)
    wecom_api_base: str = "https://qyapi.weixin.qq.com"
    wecom_api_timeout_s: float = Field(default=3.0, gt=0)
