"""A cheap Kafka reachability check for ``/readyz``: a metadata round-trip on a long-lived client."""

from __future__ import annotations

import contextlib

from aiokafka.client import AIOKafkaClient


class KafkaProbe:
    def __init__(self, bootstrap_servers: str) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._client: AIOKafkaClient | None = None

    async def check(self) -> None:
        if self._client is None:
            client = AIOKafkaClient(bootstrap_servers=self._bootstrap_servers, request_timeout_ms=2000)
            try:
                await client.bootstrap()
            except Exception:
                await client.close()
                raise
            self._client = client
        await self._client.fetch_all_metadata()

    async def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
            self._client = None
