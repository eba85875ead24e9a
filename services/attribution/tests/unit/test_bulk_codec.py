"""The replay's COPY codec for timestamptz sends what asyncpg's own codec sends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from siyu_attribution.adapters.bulk import PG_EPOCH, timestamptz_decode, timestamptz_encoder

MOMENTS = st.datetimes(
    min_value=datetime(1900, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8))]),
)


def asyncpg_microseconds(value: datetime) -> int:
    """What asyncpg's binary encoder computes: the value in UTC less Postgres' epoch, in microseconds."""
    delta = value.astimezone(UTC) - PG_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@given(values=st.lists(MOMENTS, max_size=20))
def test_encoding_matches_asyncpg_and_decodes_back(values: list[datetime]) -> None:
    encode = timestamptz_encoder()
    for value in values + values[::-1]:
        encoded = encode(value)
        assert encoded == (asyncpg_microseconds(value),)
        assert timestamptz_decode(encoded) == value


def test_the_last_value_is_remembered_by_identity_only() -> None:
    encode = timestamptz_encoder()
    paid = datetime(2026, 10, 3, 4, tzinfo=UTC)
    assert encode(paid) is encode(paid)
    assert encode(paid + timedelta(microseconds=1)) == (encode(paid)[0] + 1,)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(TypeError):
        timestamptz_encoder()(datetime(2026, 10, 3))


def test_infinities_decode_as_asyncpg_does() -> None:
    assert timestamptz_decode((0x7FFF_FFFF_FFFF_FFFF,)) == datetime.max
    assert timestamptz_decode((-0x8000_0000_0000_0000,)) == datetime.min
