"""Which failures the exception alone marks as an outage (the database probe decides the rest)."""

from __future__ import annotations

import asyncpg
from sqlalchemy.exc import DBAPIError

from siyu_shared.kafka.errors import is_infrastructure_failure


def wrapped(orig: Exception) -> DBAPIError:
    return DBAPIError("SELECT 1", None, orig)


def test_a_server_shutting_down_or_starting_is_an_outage_whatever_wraps_it() -> None:
    for orig in (
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.exceptions.ConnectionFailureError("connection failure"),
    ):
        assert is_infrastructure_failure(orig), orig
        assert is_infrastructure_failure(wrapped(orig)), orig


def test_the_drivers_protocol_state_is_an_outage() -> None:
    state = asyncpg.InternalClientError("cannot switch to state 12; another operation is in progress")
    assert is_infrastructure_failure(state) and is_infrastructure_failure(wrapped(state))


def test_a_bad_statement_or_value_is_not() -> None:
    for orig in (
        asyncpg.exceptions.UndefinedTableError('relation "no_such_table" does not exist'),
        asyncpg.exceptions.InvalidTextRepresentationError("invalid input syntax for type integer"),
        asyncpg.exceptions.UniqueViolationError("duplicate key value"),
    ):
        assert not is_infrastructure_failure(wrapped(orig)), orig
    assert not is_infrastructure_failure(ValueError("bad event"))
