"""Settings of the journey service (environment prefix `JOURNEY_`)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from siyu_shared.settings import ServiceSettings


class JourneySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="JOURNEY_", extra="ignore", frozen=True)

    database_pool_size: int = Field(
        default=20,
        ge=1,
        description="Connections kept open per process. A worker holds up to two per partition batch in flight (its "
        "transaction and the sandbox's), two per timer loop, one or two per delivery loop and the relay's: with fewer, "
        "every burst opens overflow connections that the pool closes again, each preparing its statements anew.",
    )
    timer_batch: int = Field(default=1000, ge=1, description="Timers fired per transaction.")
    timer_workers: int = Field(
        default=2, ge=1, description="Concurrent timer loops per worker process (claims skip each other's rows)."
    )
    timer_poll_s: float = Field(default=0.2, gt=0, description="Timer poll when nothing was due.")
    sender_batch: int = Field(default=500, ge=1, description="Touches claimed per delivery round.")
    sender_workers: int = Field(
        default=1, ge=1, description="Concurrent delivery loops per worker process (claims skip each other's rows)."
    )
    sender_poll_s: float = Field(default=0.05, gt=0, description="Delivery poll when nothing was pending.")
    sender_max_attempts: int = Field(default=5, ge=1)
    sending_lease_s: float = Field(default=300, gt=0, description="After this, a `sending` touch is recovered.")
    wecom_base_url: str = "https://qyapi.weixin.qq.com"
    wecom_corp_id: str | None = None
    wecom_corp_secret: SecretStr | None = None
    sms_base_url: str | None = Field(default=None, description="SMS gateway (unset: SMS goes to the sandbox).")
    sms_api_key: SecretStr | None = None
    sms_sign_name: str = "Siyu"
    wecom_channels: list[str] = Field(
        default_factory=list, description="Channels sent through WeCom (empty: everything goes to the sandbox)."
    )
