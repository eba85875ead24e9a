"""The replay's COPY codec for timestamptz sends what asyncpg's own codec sends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from siyu_attribution.adapters.bulk import PG_EPOCH, timestamptz_decode, timestamptz_encoder

INFINITY, NEGATIVE_INFINITY = 0x7FFF_FFFF_FFFF_FFFF, -0x8000_0000_0000_0000
ZONES = st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))])
MOMENTS = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=ZONES)
# The extremes, where asyncpg sends Postgres' infinities: naive datetime.max/min, and the same instants in UTC.
EXTREMES = st.sampled_from(
    [
        datetime.max,
        datetime.min,
        datetime.max.replace(tzinfo=UTC),
        datetime.min.replace(tzinfo=UTC),
        datetime.max.replace(tzinfo=timezone(timedelta(hours=8))),  # finite: 8 hours before the last instant
        datetime(9999, 12, 31, 23, 59, 59, 999_998, tzinfo=UTC),
        datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    ]
)


def asyncpg_microseconds(value: datetime) -> int:
    """What asyncpg's binary encoder sends (asyncpg/pgproto/codecs/datetime.pyx): the naive extremes as the
    infinities, else the value in UTC less Postgres' epoch in microseconds, the first and last instants of
    ``datetime`` mapped to the infinities too."""
    if value.tzinfo is None:
        assert value in (datetime.max, datetime.min)
        return INFINITY if value == datetime.max else NEGATIVE_INFINITY
    delta = value.astimezone(UTC) - PG_EPOCH
    microseconds = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if microseconds == 252_455_615_999_999_999:
        return INFINITY
    if microseconds == -63_082_281_600_000_000:
        return NEGATIVE_INFINITY
    return microseconds


@given(values=st.lists(MOMENTS | EXTREMES, max_size=20))
def test_encoding_matches_asyncpg_and_decodes_back(values: list[datetime]) -> None:
    encode = timestamptz_encoder()
    for value in values + values[::-1]:
        encoded = encode(value)
        assert encoded == (asyncpg_microseconds(value),)
        decoded = timestamptz_decode(encoded)
        if encoded[0] == INFINITY:
            assert decoded == datetime.max  # as asyncpg decodes it: naive, whatever was sent
        elif encoded[0] == NEGATIVE_INFINITY:
            assert decoded == datetime.min
        else:
            assert decoded == value


def test_the_infinities_are_sent_as_postgres_infinities() -> None:
    encode = timestamptz_encoder()
    assert encode(datetime.max) == (INFINITY,)
    assert encode(datetime.min) == (NEGATIVE_INFINITY,)
    assert encode(datetime.max.replace(tzinfo=UTC)) == (INFINITY,)
    assert encode(datetime.min.replace(tzinfo=UTC)) == (NEGATIVE_INFINITY,)


def test_the_last_value_is_remembered_by_identity_only() -> None:
    encode = timestamptz_encoder()
    paid = datetime(2026, 10, 3, 4, tzinfo=UTC)
    assert encode(paid) is encode(paid)
    assert encode(paid + timedelta(microseconds=1)) == (encode(paid)[0] + 1,)


def test_naive_datetimes_other_than_the_infinities_are_refused() -> None:
    with pytest.raises(TypeError, match="naive datetime"):
        timestamptz_encoder()(datetime(2026, 10, 3))
    with pytest.raises(TypeError, match="naive datetime"):
        timestamptz_encoder()(datetime(9999, 12, 31, 23, 59, 59))


def test_infinities_decode_as_asyncpg_does() -> None:
    assert timestamptz_decode((0x7FFF_FFFF_FFFF_FFFF,)) == datetime.max
    assert timestamptz_decode((-0x8000_0000_0000_0000,)) == datetime.min
