"""What the routes and the worker of one process share: settings, the vault, credentials, the WeCom client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from siyu_ingest.adapters.credentials import CredentialStore, load_channels_file
from siyu_ingest.adapters.vault import Vault
from siyu_ingest.adapters.wecom_api import WeComApi
from siyu_ingest.settings import IngestSettings


@dataclass
class IngestContext:
    settings: IngestSettings
    vault: Vault
    credentials: CredentialStore
    _wecom: WeComApi | None = field(default=None, repr=False)
    webhook_writer: Any = field(default=None, repr=False)
    """Group-commit writer of the webhook hot path (an asyncpg pool), opened with the api role."""

    @classmethod
    def build(cls, settings: IngestSettings) -> IngestContext:
        vault = Vault.from_settings(settings)
        store = CredentialStore(
            vault=vault, file_entries=load_channels_file(settings.channels_file), ttl_s=settings.credentials_cache_s
        )
        return cls(settings=settings, vault=vault, credentials=store)

    @property
    def wecom(self) -> WeComApi:
        if self._wecom is None:
            self._wecom = WeComApi(timeout_s=self.settings.wecom_api_timeout_s)
        return self._wecom

    async def close(self) -> None:
        if self._wecom is not None:
            await self._wecom.close()
            self._wecom = None
