"""The sandbox sender (default locally): records each touch in ``sandbox_deliveries`` instead of sending.

It behaves like a channel that honours an idempotency key: a second delivery of the same touch id is a no-op.
It writes on its own connection, outside the caller's transaction, as a real channel would.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from siyu_journey.adapters.senders import Delivered, Outcome, Outgoing
from siyu_journey.adapters.tables import sandbox_deliveries


class SandboxSender:
    idempotent = True

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def send(self, touches: Sequence[Outgoing]) -> list[Outcome]:
        if touches:
            async with self._engine.begin() as conn:
                await conn.execute(
                    pg_insert(sandbox_deliveries).on_conflict_do_nothing(index_elements=["touch_id"]),
                    [
                        {
                            "touch_id": t.touch_id,
                            "tenant": t.tenant,
                            "person_id": t.person_id,
                            "channel": t.channel,
                            "staff_id": t.staff_id,
                            "body": t.body,
                        }
                        for t in touches
                    ],
                )
        return [Delivered() for _ in touches]
