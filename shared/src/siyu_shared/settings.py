"""Typed settings shared by every service; each service subclasses with its own env prefix (``INGEST_`` …).

The connection settings also fall back to the unprefixed ``DATABASE_URL``, ``KAFKA_BOOTSTRAP_SERVERS`` and
``KAFKA_TOPIC_PREFIX`` so one environment can point every service at an existing cluster.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from siyu_shared.events.topics import TopicNames

Environment = Literal["development", "test", "production"]
DEV_SECRET_MARK = "dev-only"

_UNPREFIXED_FALLBACKS = {
    "database_url": "DATABASE_URL",
    "kafka_bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS",
    "kafka_topic_prefix": "KAFKA_TOPIC_PREFIX",
    "environment": "SIYU_ENVIRONMENT",
}


class ServiceSettings(BaseSettings):
    """Settings every service has. Read once at start (see ``bootstrap.py`` of each service)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    environment: Environment = "development"
    database_url: str = Field(description="SQLAlchemy async URL of the service's own role and database.")
    database_pool_size: int = Field(default=10, ge=1)
    kafka_bootstrap_servers: str = Field(description="Comma-separated host:port list.")
    kafka_topic_prefix: str = ""
    log_level: str = "INFO"
    log_json: bool = True

    consumer_max_batch: int = Field(default=500, ge=1)
    consumer_max_attempts: int = Field(default=4, ge=1, description="Handler attempts before the DLQ.")
    consumer_retry_backoff_s: float = Field(default=0.2, ge=0)
    outbox_batch: int = Field(default=500, ge=1)
    outbox_poll_interval_s: float = Field(default=0.5, gt=0)
    outbox_retention_hours: float = Field(default=72, gt=0)
    readiness_timeout_s: float = Field(default=2.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _unprefixed_fallbacks(cls, values: Any) -> Any:
        if isinstance(values, dict):
            for field, env in _UNPREFIXED_FALLBACKS.items():
                if values.get(field) is None and env in os.environ:
                    values[field] = os.environ[env]
        return values

    @model_validator(mode="after")
    def _no_default_secrets_outside_development(self) -> ServiceSettings:
        if self.environment == "production":
            for name, value in self:
                if isinstance(value, SecretStr) and DEV_SECRET_MARK in value.get_secret_value():
                    raise ValueError(f"{name} still has its development default; set a real secret")
        return self

    @property
    def topics(self) -> TopicNames:
        return TopicNames(self.kafka_topic_prefix)

    @property
    def async_database_url(self) -> str:
        """The URL with the asyncpg driver, whatever form it was given in."""
        return to_asyncpg_url(self.database_url)


def to_asyncpg_url(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    raise ValueError("database_url must be a postgresql:// URL")


def to_libpq_url(url: str) -> str:
    """The URL without a SQLAlchemy driver suffix, for asyncpg.connect and psql."""
    return "postgresql://" + to_asyncpg_url(url).removeprefix("postgresql+asyncpg://")


def explain(error: ValidationError) -> str:
    """What an operator must set, in environment variable names, when a service's settings do not validate.

    pydantic's own message names fields (``database_url``) and its URL; the operator sets ``INGEST_DATABASE_URL``
    (or the unprefixed fallback) and needs to read that.
    """
    settings_class = _settings_class(error.title)
    prefix = str(settings_class.model_config.get("env_prefix", "")) if settings_class else ""
    lines = [f"{error.title}: the environment does not configure this service:"]
    for problem in error.errors():
        field = str(problem["loc"][0]) if problem["loc"] else ""
        names = [f"{prefix}{field.upper()}"]
        if field in _UNPREFIXED_FALLBACKS:
            names.append(_UNPREFIXED_FALLBACKS[field])
        info = settings_class.model_fields.get(field) if settings_class else None
        described = info.description if info else None
        what = "is not set" if problem["type"] == "missing" else f"is invalid: {problem['msg']}"
        lines.append(f"  {' or '.join(names)} {what}" + (f": {described.rstrip('.')}" if described else ""))
    return "\n".join(lines)


def _settings_class(name: str) -> type[ServiceSettings] | None:
    pending: list[type[ServiceSettings]] = [ServiceSettings]
    while pending:
        cls = pending.pop()
        if cls.__name__ == name:
            return cls
        pending.extend(cls.__subclasses__())
    return None
