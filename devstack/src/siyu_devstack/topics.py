"""Creating the Kafka topics of a deployment, idempotently, and checking that a broker answers.

Topics are created up front rather than relying on broker auto-creation: every topic must have the same partition
count (the same person lands on the same partition number of every topic, see ``siyu_shared.events.topics``), and
an existing topic with another count is an error we report instead of silently living with. Creating is idempotent
so the same call works for a fresh local broker, a restarted one and a shared cluster (``KAFKA_BOOTSTRAP_SERVERS``).

aiokafka ships no type information, so this module is the one place that touches its admin client untyped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped,unused-ignore]
from aiokafka.errors import for_code  # type: ignore[import-untyped,unused-ignore]

from siyu_shared.events.topics import DEFAULT_PARTITIONS

log = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS = 36


class TopicError(RuntimeError):
    """A topic could not be created, or exists with the wrong shape."""


def _admin(bootstrap: str, request_timeout: float) -> Any:
    return AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="siyu-devstack",
        request_timeout_ms=int(request_timeout * 1000),
    )


async def _partition_counts(admin: Any, names: list[str]) -> dict[str, int | None]:
    """Partition count per topic; None while a topic is unknown or any of its partitions has no leader yet."""
    counts: dict[str, int | None] = dict.fromkeys(names)
    for topic in await admin.describe_topics(names):
        partitions = topic["partitions"]
        ready = topic["error_code"] == 0 and partitions and all(p["leader"] >= 0 for p in partitions)
        counts[str(topic["topic"])] = len(partitions) if ready else None
    return counts


async def describe_partitions(
    bootstrap: str, names: Iterable[str], *, timeout_s: float = 10.0
) -> dict[str, int | None]:
    """Partition count of each named topic (None for a topic that does not exist or has no leaders yet)."""
    admin = _admin(bootstrap, timeout_s)
    await admin.start()
    try:
        return await _partition_counts(admin, list(names))
    finally:
        await admin.close()


async def create_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int = DEFAULT_PARTITIONS,
    *,
    replication_factor: int = 1,
    timeout_s: float = 30.0,
) -> list[str]:
    """Create the topics that do not exist yet and wait until all of them have leaders.

    Returns the names this call created. Raises :class:`TopicError` when a topic cannot be created or already
    exists with a partition count other than ``partitions``.
    """
    wanted = list(dict.fromkeys(names))
    deadline = time.monotonic() + timeout_s
    admin = _admin(bootstrap, timeout_s)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        created: list[str] = []
        if missing:
            response = await admin.create_topics(
                [NewTopic(name, partitions, replication_factor) for name in missing], timeout_ms=int(timeout_s * 1000)
            )
            for entry in response.topic_errors:
                name, code = str(entry[0]), int(entry[1])
                if code == 0:
                    created.append(name)
                elif code != _TOPIC_ALREADY_EXISTS:  # lost a race with another creator: fine
                    message = entry[2] if len(entry) > 2 and entry[2] else for_code(code).__name__
                    raise TopicError(f"could not create topic {name!r}: {message}")
        while True:
            counts = await _partition_counts(admin, wanted)
            wrong = {name: n for name, n in counts.items() if n is not None and n != partitions}
            if wrong:
                raise TopicError(
                    f"topics exist with a partition count other than {partitions}: {wrong}; every topic must share "
                    "one partition count. Delete them, use another KAFKA_TOPIC_PREFIX, or set SIYU_KAFKA_PARTITIONS."
                )
            pending = sorted(name for name, n in counts.items() if n is None)
            if not pending:
                break
            if time.monotonic() > deadline:
                raise TopicError(f"topics have no leader after {timeout_s:.0f}s: {pending}")
            await asyncio.sleep(0.1)
        if created:
            log.info("created %d topics with %d partitions on %s", len(created), partitions, bootstrap)
        return created
    finally:
        await admin.close()


async def wait_for_broker(bootstrap: str, *, timeout_s: float = 30.0) -> int:
    """Block until the cluster at ``bootstrap`` answers a metadata request listing a broker; returns its count."""
    deadline = time.monotonic() + timeout_s
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        admin = _admin(bootstrap, min(5.0, max(0.5, deadline - time.monotonic())))
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
            brokers = len(cluster.get("brokers") or [])
            if brokers and cluster.get("controller_id", -1) >= 0:
                return brokers
        except Exception as exc:  # any failure means "not ready yet"; the last one is reported
            last_error = exc
        finally:
            await admin.close()
        await asyncio.sleep(0.1)
    raise TimeoutError(f"Kafka at {bootstrap} did not answer within {timeout_s:.0f}s (last error: {last_error!r})")
