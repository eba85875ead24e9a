"""Values every edge accepts only in the range the whole stack can hold.

Python, pydantic and JSON accept values that PostgreSQL refuses: a NUL character in text (``text`` and ``jsonb``
cannot hold ``\\u0000``), integers beyond int64 (``bigint``), years a ``timestamptz`` cannot take once the value
is moved to UTC (Python's own ``datetime`` stops at years 1 and 9999), and UTC offsets that no place uses
(``+23:30`` parses, and a consumer that hands the text to Postgres then fails). A value like that must be refused
where it enters (a 422 at the API, a 400 for a webhook, a ``ValueError`` when an event is built), never where it
is stored or consumed. These types are what every edge uses: path and query parameters, request bodies, webhook
payload fields and the event models.

The tenant id has one rule, here, for API keys, webhook paths and events alike.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints

NUL = "\x00"
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

TENANT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""A tenant id: lower-case letters, digits, ``_`` and ``-``, starting with a letter or digit, at most 64."""
_TENANT = re.compile(TENANT_PATTERN)

MAX_UTC_OFFSET = timedelta(hours=14)
"""The widest offset in use anywhere (UTC-12 to UTC+14); PostgreSQL refuses some beyond it."""
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9998, 12, 31, tzinfo=UTC)
"""Well inside Python's years 1..9999, so a value moved to any offset, its calendar month (a statement
period) and the month after it all stay in range; PostgreSQL's ``timestamptz`` holds far more. Nothing a platform
or an operator sends lies outside."""

PERIOD_PATTERN = r"^(?:19[0-9]{2}|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-(?:0[1-9]|1[0-2])$"
"""A calendar month ``YYYY-MM`` in the years :data:`Timestamp` takes (1900..9998)."""


_NAIVE_EARLIEST, _NAIVE_LATEST = EARLIEST.replace(tzinfo=None), LATEST.replace(tzinfo=None)
_WALL_EARLIEST, _WALL_LATEST = _NAIVE_EARLIEST - MAX_UTC_OFFSET, _NAIVE_LATEST + MAX_UTC_OFFSET


def is_tenant(value: str) -> bool:
    return _TENANT.fullmatch(value) is not None


def text_unstorable(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None: a NUL, or a lone surrogate (JSON's ``"\\ud800"`` decodes to
    one; it has no UTF-8 form, so the driver cannot send it)."""
    if NUL in value:
        return "contains the NUL character (U+0000)"
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            return "contains a lone surrogate (not a Unicode character)"
    return None


def refuse_nul(value: str) -> str:
    """The :data:`Text` check: refuses what :func:`text_unstorable` finds."""
    reason = text_unstorable(value)
    if reason:
        raise ValueError(f"text {reason}")
    return value


def check_datetime(value: datetime) -> datetime:
    """``value`` if it carries an offset of at most 14 hours and lies between 1900 and 9998 in UTC."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("a time must carry a UTC offset")
    if abs(offset) > MAX_UTC_OFFSET:
        raise ValueError("a UTC offset must lie between -14:00 and +14:00")
    # Wall time first (moving a time at Python's own ends to UTC overflows), then the instant, as naive UTC.
    wall = value.replace(tzinfo=None)
    if not _WALL_EARLIEST <= wall <= _WALL_LATEST or not _NAIVE_EARLIEST <= wall - offset <= _NAIVE_LATEST:
        raise ValueError("a time must lie between 1900-01-01 and 9998-12-31 (UTC)")
    return value


def unstorable(value: Any, *, where: str = "$", nested_json: bool = False) -> str | None:
    """Why a decoded JSON (or XML) document cannot be stored as it is, or None when it can.

    Walks keys and values: text with a NUL, an integer outside int64 (what ``jsonb`` numbers round-trip through
    every consumer as, and what any id column holds), or a float that is not finite (Python's JSON reader takes
    ``NaN``; ``jsonb`` does not). ``nested_json`` also looks inside every string that is itself a JSON object or
    array, as platforms send ``content`` and ``data`` that way.
    """
    if isinstance(value, str):
        reason = text_unstorable(value)
        if reason:
            return f"{where} {reason}"
        if nested_json:
            text = value.strip()
            if text[:1] in ("{", "[") and text[-1:] in ("}", "]"):
                try:
                    nested = orjson.loads(text)
                except orjson.JSONDecodeError:
                    return None
                return unstorable(nested, where=f"{where}(decoded)", nested_json=True)
        return None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where} is not a finite number"
    if isinstance(value, int):
        return None if INT64_MIN <= value <= INT64_MAX else f"{where} is an integer beyond 64 bits"
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and (reason := text_unstorable(key)):
                return f"a key under {where} {reason}"
            reason = unstorable(item, where=f"{where}.{key}", nested_json=nested_json)
            if reason:
                return reason
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            reason = unstorable(item, where=f"{where}[{index}]", nested_json=nested_json)
            if reason:
                return reason
    return None


def storable_json(value: Any) -> Any:
    """A validator for free-form JSON fields (``dict[str, Any]``): refuses what :func:`unstorable` finds."""
    reason = unstorable(value)
    if reason:
        raise ValueError(reason)
    return value


Text = Annotated[str, AfterValidator(refuse_nul)]
"""Any text that is stored or published: no NUL, no lone surrogate. Add length and pattern with ``Field`` as usual."""
Tenant = Annotated[str, StringConstraints(pattern=TENANT_PATTERN), Field(examples=["glowlab"])]
Period = Annotated[str, StringConstraints(pattern=PERIOD_PATTERN), Field(examples=["2026-11"])]
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
"""A non-negative integer a ``bigint`` holds: amounts in fen, counts, cursors such as ``after_id``."""
Id = Annotated[int, Field(ge=1, le=INT64_MAX)]
"""A positive ``bigint`` id."""
Timestamp = Annotated[AwareDatetime, AfterValidator(check_datetime)]
"""A time with its UTC offset, in the range every layer holds (see :func:`check_datetime`)."""
JsonObject = Annotated[dict[str, Any], AfterValidator(storable_json)]
"""A free-form JSON object that can be stored in ``jsonb`` and published."""
