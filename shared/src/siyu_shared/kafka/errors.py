"""Which failures are the infrastructure's (retry forever) and which are the event's (retry, then DLQ)."""

from __future__ import annotations

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError


class PoisonEvent(Exception):
    """The message can never be handled as it is (not JSON, not a valid envelope, invalid payload)."""


def is_infrastructure_failure(exc: BaseException) -> bool:
    """An outage, not a bad event: the batch is retried until it works, never dead-lettered."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
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
