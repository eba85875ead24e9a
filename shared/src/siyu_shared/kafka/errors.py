"""Which failures are the infrastructure's (retry forever) and which are the event's (retry, then DLQ)."""

from __future__ import annotations

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError


class PoisonEvent(Exception):
    """The message can never be handled as it is (not JSON, not a valid envelope, invalid payload)."""


class Contention(Exception):
    """Contention a handler detected itself (another transaction got there first, e.g. created the row this one
    was about to create): retried like a serialization failure, never the event's fault."""


TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})
"""Serialization failure and deadlock: contention between transactions, gone on a retry, never the event's fault."""


def is_infrastructure_failure(exc: BaseException) -> bool:
    """An outage or contention, not a bad event: the batch is retried until it works, never dead-lettered."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, Contention) or _sqlstate(exc) in TRANSIENT_SQLSTATES:
        return True
    return isinstance(
        exc,
        OperationalError
        | InterfaceError
        | ConnectionError
        | TimeoutError
        | OSError
        | asyncpg.PostgresConnectionError
        | asyncpg.InterfaceError
        | asyncpg.CannotConnectNowError
        | KafkaConnectionError
        | KafkaTimeoutError,
    )


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a Postgres error, raised by asyncpg or wrapped by SQLAlchemy (``orig`` carries it)."""
    for candidate in (exc, getattr(exc, "orig", None)):
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str):
            return code
    return None
