"""The sandbox sender (default locally): records each touch in ``sandbox_deliveries`` instead of sending.

It behaves like a channel that honours an idempotency key: a second delivery of the same touch id is a no-op.
It writes on its own connection, outside the caller's transaction, as a real channel would.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from siyu_journey.adapters.senders import Delivered, Outcome, Outgoing

_RECORD = text(
    """
    INSERT INTO sandbox_deliveries (touch_id, tenant, person_id, channel, staff_id, body)
    SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:tenants AS text[]), CAST(:persons AS text[]),
                         CAST(:channels AS text[]), CAST(:staff AS text[]), CAST(:bodies AS text[]))
    ON CONFLICT (touch_id) DO NOTHING
    """
)


class SandboxSender:
    idempotent = True

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def send(self, touches: Sequence[Outgoing]) -> list[Outcome]:
        if touches:
            # One statement in autocommit: its own durable transaction, without a BEGIN and a COMMIT round trip.
            async with self._engine.connect() as connection:
                conn = await connection.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(
                    _RECORD,
                    {
                        "ids": [t.touch_id for t in touches],
                        "tenants": [t.tenant for t in touches],
                        "persons": [t.person_id for t in touches],
                        "channels": [t.channel for t in touches],
                        "staff": [t.staff_id for t in touches],
                        "bodies": [t.body for t in touches],
                    },
                )
        return [Delivered() for _ in touches]
