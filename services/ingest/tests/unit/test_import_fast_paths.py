"""The import's fast paths give exactly what the general ones give (amounts in fen, dedupe keys)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from siyu_ingest.domain import imports as rules
from siyu_ingest.domain.errors import Malformed
from siyu_ingest.domain.normalise import decimal_yuan_to_fen, shanghai_time, shanghai_time_iso, yuan_to_fen
from siyu_shared.values import unstorable


def _outcome(rule: Callable[[str], int], raw: str) -> object:
    try:
        return rule(raw)
    except Exception as exc:
        return type(exc)


plain_amounts = st.from_regex(r"\A[0-9]{1,15}(\.[0-9]{1,2})?\Z")
amount_like = st.text(alphabet="0123456789.-+ eE٣５", max_size=12)


@given(st.one_of(plain_amounts, amount_like))
def test_yuan_to_fen_fast_path_matches_the_decimal_rule(raw: str) -> None:
    if raw == "":
        return
    assert _outcome(yuan_to_fen, raw) == _outcome(decimal_yuan_to_fen, raw)


records = st.fixed_dictionaries(
    {
        "type": st.just("order"),
        "channel": st.text(max_size=8),
        "order_no": st.text(max_size=20),
        "identifiers": st.lists(st.lists(st.text(max_size=10), min_size=2, max_size=2), max_size=3),
        "amount_fen": st.integers(min_value=0, max_value=10**12),
        "paid_at": st.none() | st.text(max_size=25),
        "status": st.text(max_size=6),
        "shop_id": st.none() | st.text(max_size=6),
    }
)


@given(records)
def test_dedupe_key_digests_the_stored_body(record: dict[str, Any]) -> None:
    if unstorable(record):  # a NUL in any field: a row error, never a body Postgres refuses
        with pytest.raises(Malformed, match="cannot be stored"):
            rules.encoded(record)
        return
    key, body = rules.encoded(record)
    assert orjson.loads(body) == record
    digest = hashlib.sha256(body).hexdigest()[:16]
    assert key == f"order:{record['channel']}:{str(record['order_no'])[:150]}:{digest}"
    # The same record with its fields in another order (a JSONL row, another export tool) is the same delivery.
    assert rules.encoded(dict(reversed(record.items()))) == (key, body)


def test_amounts_beyond_any_order_and_values_that_cannot_be_stored_are_row_errors() -> None:
    for amount in ("1e30", "100000000000000000", "1e999999999"):
        with pytest.raises(Malformed, match=r"beyond any real order|is not a number"):
            rules.order_record({"order_no": "1", "buyer_open_uid": "AAH", "payment": amount})
    assert yuan_to_fen("999999999999999.99") == 99999999999999999
    record = rules.order_record({"order_no": "1", "buyer_open_uid": "AAH", "payment": "1"})
    with pytest.raises(Malformed, match="cannot be stored"):
        rules.encoded({**record, "shop_id": 2**70})
    for poison in ({"shop_id": 2**63}, {"order_no": "1\x00"}, {"shop_id": "\x00"}, {"lines": [{"sku": "a\x00"}]}):
        with pytest.raises(Malformed, match="cannot be stored"):
            rules.encoded({**record, **poison})


def _zoneinfo_utc(naive: datetime) -> datetime:
    """The general rule: the wall clock read in Asia/Shanghai by the tz database, then converted to UTC."""
    return naive.replace(tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)))
def test_shanghai_wall_clock_fast_path_is_the_tz_database(naive: datetime) -> None:
    raw = naive.isoformat(sep=" ")
    assert shanghai_time(raw) == _zoneinfo_utc(naive)
    assert shanghai_time_iso(raw) == _zoneinfo_utc(naive).isoformat()


def test_daylight_saving_before_1992_still_follows_the_tz_database() -> None:
    # Summer 1990: China observed daylight saving (UTC+9), which a fixed +8 would get wrong by an hour.
    assert shanghai_time("1990-07-01 12:00:00") == datetime(1990, 7, 1, 3, tzinfo=UTC)
    assert shanghai_time_iso("2024-03-01 10:01:00") == "2024-03-01T02:01:00+00:00"
    assert shanghai_time_iso("2024-03-01T10:01:00+09:00") == "2024-03-01T01:01:00+00:00"
