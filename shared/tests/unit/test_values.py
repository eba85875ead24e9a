"""The shared constrained values: what they refuse, and that what they accept survives every conversion we make."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from siyu_shared.events.catalog.touches import TouchSent
from siyu_shared.values import (
    INT64_MAX,
    MAX_UTC_OFFSET,
    Count,
    Period,
    Tenant,
    Text,
    Timestamp,
    check_datetime,
    is_tenant,
    unstorable,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
offsets = st.integers(-36 * 3600, 36 * 3600).map(lambda s: timezone(timedelta(seconds=s)) if abs(s) < 86400 else UTC)
moments = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets)


@given(moments)
def test_an_accepted_time_converts_to_utc_shanghai_and_its_next_month_without_overflow(moment: datetime) -> None:
    try:
        check_datetime(moment)
    except ValueError:
        offset = moment.utcoffset()
        assert offset is not None
        utc = moment.replace(tzinfo=None) - offset
        assert abs(offset) > MAX_UTC_OFFSET or not datetime(1900, 1, 1) <= utc <= datetime(9998, 12, 31)
        return
    local = moment.astimezone(UTC).astimezone(SHANGHAI)
    first_of_next = (local.replace(day=1) + timedelta(days=32)).replace(day=1)
    assert first_of_next.astimezone(UTC) > moment
    assert TypeAdapter(Timestamp).validate_python(moment) == moment


@pytest.mark.parametrize(
    "text", ["2026-11-22T08:00:00+23:30", "0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-01:00"]
)
def test_json_times_outside_the_range_are_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Timestamp).validate_json(f'"{text}"')


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Timestamp).validate_python(datetime(2026, 1, 1))


@given(st.text(), st.text())
def test_text_is_refused_exactly_when_it_holds_a_nul(head: str, tail: str) -> None:
    adapter = TypeAdapter(Text)
    assert adapter.validate_python(head.replace("\x00", "")) == head.replace("\x00", "")
    with pytest.raises(ValidationError):
        adapter.validate_python(head + "\x00" + tail)


@given(st.integers())
def test_counts_are_what_a_bigint_holds(value: int) -> None:
    adapter = TypeAdapter(Count)
    if 0 <= value <= INT64_MAX:
        assert adapter.validate_python(value) == value
    else:
        with pytest.raises(ValidationError):
            adapter.validate_python(value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _has_unstorable(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return value != value or value in (float("inf"), float("-inf"))
    if isinstance(value, int):
        return not -(2**63) <= value <= INT64_MAX
    if isinstance(value, list):
        return any(_has_unstorable(v) for v in value)
    if isinstance(value, dict):
        return any("\x00" in k or _has_unstorable(v) for k, v in value.items())
    return False


@given(json_values)
def test_unstorable_finds_a_nul_a_huge_integer_or_a_non_finite_number_anywhere(value: Any) -> None:
    assert (unstorable(value) is not None) == _has_unstorable(value)


def test_an_event_refuses_what_its_consumers_could_not_store_where_it_is_built() -> None:
    """NUL, beyond int64, a wild offset, and ids longer than the consumers' columns (``staff_id`` varchar(64))."""
    fields = {"touch_id": "t1", "person_id": "p1", "channel": "wecom_1v1", "occurred_at": datetime.now(UTC)}
    assert TouchSent(**fields).touch_id == "t1"
    for bad in ({"touch_id": "t\x001"}, {"staff_id": "s\x00"}, {"journey_version": 2**63}, {"staff_id": "s" * 65}):
        with pytest.raises(ValidationError):
            TouchSent(**{**fields, **bad})
    with pytest.raises(ValidationError):
        TouchSent(**{**fields, "occurred_at": datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=23, minutes=30)))})


class _Tenanted(BaseModel):
    tenant: Tenant
    period: Period


@given(st.text(max_size=70))
def test_one_tenant_rule(candidate: str) -> None:
    accepted = True
    try:
        _Tenanted(tenant=candidate, period="2026-11")
    except ValidationError:
        accepted = False
    assert accepted == is_tenant(candidate)
    assert not is_tenant("Acme.CN") and is_tenant("acme-cn")


@pytest.mark.parametrize(
    ("period", "ok"),
    [
        ("2026-11", True),
        ("0000-01", False),
        ("1899-12", False),
        ("9998-12", True),
        ("9999-01", False),
        ("2026-13", False),
    ],
)
def test_periods(period: str, ok: bool) -> None:
    try:
        _Tenanted(tenant="t", period=period)
    except ValidationError:
        assert not ok
    else:
        assert ok
