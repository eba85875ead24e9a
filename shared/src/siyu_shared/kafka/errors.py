"""Which failures are the infrastructure's (retry forever) and which are the event's (retry, then DLQ).

``is_infrastructure_failure`` is the quick answer from the exception alone. It cannot be the whole answer: a
driver raises outages under classes that also mean a bad statement (``DBAPIError`` with ``the database system is
shutting down``, asyncpg's ``InternalClientError``). So whoever would blame the event or the request for a failure
this says nothing about asks the database itself first (``siyu_shared.db.health.DatabaseProbe``).
"""

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

OUTAGE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
"""Admin shutdown (``the database system is shutting down``), crash shutdown, cannot connect now (starting up or
shutting down) and too many connections: the server, not the statement. Every class ``08`` (connection exception)
SQLSTATE too."""


def is_infrastructure_failure(exc: BaseException) -> bool:
    """An outage or contention, not a bad event: the batch is retried until it works, never dead-lettered."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, Contention):
        return True
    sqlstate = _sqlstate(exc)
    if sqlstate is not None and (
        sqlstate in TRANSIENT_SQLSTATES or sqlstate in OUTAGE_SQLSTATES or sqlstate.startswith("08")
    ):
        return True
    if any(isinstance(e, asyncpg.InternalClientError) for e in (exc, getattr(exc, "orig", None))):
        # The driver's own protocol state (e.g. "cannot switch to state 12" on a connection cut mid-exchange):
        # never what the event or the request asked for.
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
