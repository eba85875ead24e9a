"""The benchmark contract: a suite is an async function ``run(ctx) -> list[Figure]``.

Every figure is printed next to a ceiling measured in the same run on the same machine (a bare endpoint, a plain
consume loop, a raw INSERT…), so the ratio says how much of the machine the code uses, whatever the machine.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

import asyncpg

from siyu_devstack.stack import Stack
from siyu_devstack.topics import create_topics
from siyu_shared.events.topics import TopicNames


@dataclass(frozen=True)
class Figure:
    suite: str
    name: str
    value: float
    unit: str
    higher_is_better: bool = True
    ceiling: float | None = None
    ceiling_label: str | None = None
    target: float | None = None
    notes: str = ""

    @property
    def ratio(self) -> float | None:
        """Share of the ceiling reached (for latencies: ceiling / value, so 1.0 is always the best possible)."""
        if not self.ceiling or not self.value:
            return None
        return self.value / self.ceiling if self.higher_is_better else self.ceiling / self.value

    @property
    def meets_target(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value <= self.target

    def as_json(self) -> dict[str, object]:
        return {**asdict(self), "ratio": self.ratio, "meets_target": self.meets_target}


@dataclass
class BenchContext:
    stack: Stack
    scale: float = field(default_factory=lambda: float(os.environ.get("BENCH_SCALE", "1.0")))

    def scaled(self, n: int) -> int:
        """``n`` scaled by ``BENCH_SCALE`` (0.01 for a smoke run), at least 1."""
        return max(1, int(n * self.scale))

    async def fresh_topics(self) -> str:
        """A topic prefix of the suite's own, with every topic created."""
        prefix = f"{self.stack.topic_prefix}b{secrets.token_hex(3)}."
        await create_topics(self.stack.bootstrap_servers, TopicNames(prefix).all(), partitions=self.stack.partitions)
        return prefix


SETTLE_MAX_S = 120.0
"""The longest ``settle`` waits for autovacuum before it lets the next suite start anyway."""


async def settle(stack: Stack) -> float:
    """Lets the database settle after a suite: a CHECKPOINT (so no checkpoint the last suite's writes called for
    flushes and syncs the data files under the next suite), then a wait until no autovacuum worker of the cluster is
    busy (at most ``SETTLE_MAX_S``; the benchmarks are the stack's only users). Returns the seconds it took. Each
    suite then pays for its own writes' background work, not for its predecessor's: a 1,000,000-row backfill left
    behind half-second stalls in the next suite's latencies."""
    started = time.monotonic()
    conn = await asyncpg.connect(stack.admin_dsn)
    try:
        await conn.execute("CHECKPOINT")
        while time.monotonic() - started < SETTLE_MAX_S:
            busy = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")
            if not busy:
                break
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    return time.monotonic() - started


Suite = Callable[[BenchContext], Awaitable[list[Figure]]]
