from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siyu_attribution.domain.money import apply_rate, scale_each, split
from siyu_attribution.domain.periods import SHANGHAI, next_period, period_of, posting_period


@given(
    total=st.integers(min_value=-(10**9), max_value=10**12),
    weights=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=12).filter(any),
)
def test_split_parts_sum_exactly_and_stay_within_a_fen_of_their_quota(total: int, weights: list[int]) -> None:
    parts = split(total, weights)
    assert sum(parts) == total
    whole = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(Fraction(part) - Fraction(total * weight, whole)) < 1


@given(
    amounts=st.lists(st.integers(min_value=0, max_value=10**7), max_size=6),
    denominator=st.integers(min_value=1, max_value=10**7),
    data=st.data(),
)
def test_scale_each_keeps_every_part_between_its_floor_and_ceiling(
    amounts: list[int], denominator: int, data: st.DataObject
) -> None:
    numerator = data.draw(st.integers(min_value=0, max_value=denominator))
    parts = scale_each(amounts, numerator, denominator)
    assert sum(parts) == sum(amounts) * numerator // denominator
    for part, amount in zip(parts, amounts, strict=True):
        assert amount * numerator // denominator <= part <= -(-amount * numerator // denominator)


def test_scale_each_never_takes_a_part_below_its_own_floor() -> None:
    # A KOL's 7 fen and a staff's 1 fen, 47 of 76 yuan left after a refund: the KOL's own part is 4.33, the staff's
    # 0.62. Splitting the rounded-down total (4) by 7 : 1 gave the KOL 3 and the staff 1 (the book did, before).
    assert scale_each([1, 7], 47, 76) == [0, 4]
    assert scale_each([1, 7], 75, 76) == [1, 6]  # 0.99 and 6.91: the fen lost in all goes to the larger remainder
    assert scale_each([5, 5], 0, 7) == [0, 0] and scale_each([5, 5], 7, 7) == [5, 5]


def test_split_gives_leftover_fen_to_the_largest_remainders_then_the_earliest() -> None:
    assert split(100, [1, 1, 1]) == [34, 33, 33]
    assert split(10, [Fraction(1, 3), Fraction(2, 3)]) == [3, 7]
    assert split(0, [0, 0]) == [0, 0]
    with pytest.raises(ValueError):
        split(5, [0, 0])


def test_rate_rounds_down_to_the_fen() -> None:
    assert apply_rate(999, 500) == 49
    assert apply_rate(100_000, 500) == 5_000


def test_periods_are_shanghai_months_and_closed_ones_carry_over() -> None:
    # 2026-10-31 17:00 UTC is already November 1st in Shanghai.
    assert period_of(datetime(2026, 10, 31, 17, 0, tzinfo=UTC)) == "2026-11"
    assert period_of(datetime(2026, 10, 31, 15, 59, tzinfo=UTC)) == "2026-10"
    assert next_period("2026-12") == "2027-01"
    late = datetime(2026, 10, 20, tzinfo=UTC)
    assert posting_period(late, last_closed=None) == "2026-10"
    assert posting_period(late, last_closed="2026-10") == "2026-11"
    assert posting_period(late, last_closed="2026-09") == "2026-10"


@settings(max_examples=300, deadline=None)
@given(
    moments=st.lists(
        st.datetimes(
            min_value=datetime(2025, 12, 1),
            max_value=datetime(2027, 2, 1),
            timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), ZoneInfo("America/New_York")]),
        )
        | st.sampled_from([datetime.min.replace(tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC)]),
        max_size=20,
    ),
)
def test_the_remembered_period_bounds_change_no_period(moments: list[datetime]) -> None:
    """``period_of`` remembers the last two periods' bounds (runs of moments in one or two months skip it)."""
    for moment in sorted(moments) + moments:
        local = moment.astimezone(SHANGHAI)
        assert period_of(moment) == f"{local.year:04d}-{local.month:02d}"
