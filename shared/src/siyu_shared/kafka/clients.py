"""Factories for aiokafka clients with the settings Siyu relies on."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.coordinator.assignors.range import RangePartitionAssignor


def idempotent_producer(bootstrap_servers: str, *, client_id: str, **overrides: Any) -> AIOKafkaProducer:
    """acks=all with idempotence: a retried send never duplicates within the producer's session."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "client_id": client_id,
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 2,
        "request_timeout_ms": 15000,
        "max_batch_size": 256 * 1024,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def manual_commit_consumer(
    bootstrap_servers: str, *, group_id: str, client_id: str, max_batch: int, **overrides: Any
) -> AIOKafkaConsumer:
    """A group consumer that never commits on its own: the runner commits after the database commit.

    The range assignor gives each member the same partition numbers of every topic (all topics share one
    partition count and key), so one person's events on different topics reach the same member.
    """
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "group_id": group_id,
        "client_id": client_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": max_batch,
        "isolation_level": "read_committed",
        "session_timeout_ms": 10000,
        "heartbeat_interval_ms": 3000,
        "max_poll_interval_ms": 300000,
        "partition_assignment_strategy": (RangePartitionAssignor,),
    }
    options.update(overrides)
    return AIOKafkaConsumer(**options)
