"""Statement periods: calendar months in Asia/Shanghai, named ``YYYY-MM``."""

from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def period_of(moment: datetime) -> str:
    """The statement period a moment falls in (the Shanghai calendar month)."""
    if moment.tzinfo is None:
        raise ValueError("moment must carry a timezone")
    local = moment.astimezone(SHANGHAI)
    return f"{local.year:04d}-{local.month:02d}"


def next_period(period: str) -> str:
    year, month = (int(part) for part in period.split("-"))
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def posting_period(moment: datetime, *, last_closed: str | None) -> str:
    """The period an entry posted at ``moment`` belongs to: its own month, or the first open one after a close.

    A closed statement never changes, so anything dated in a closed period carries over to the next open period.
    """
    own = period_of(moment)
    if last_closed is not None and own <= last_closed:
        return next_period(last_closed)
    return own


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """Start (inclusive) and end (exclusive) of a period, as aware datetimes."""
    year, month = (int(part) for part in period.split("-"))
    start = datetime(year, month, 1, tzinfo=SHANGHAI)
    ny, nm = (int(part) for part in next_period(period).split("-"))
    return start, datetime(ny, nm, 1, tzinfo=SHANGHAI)


class PostingPeriods:
    """``posting_period`` for many moments after the same close, remembering the bounds of the last period seen.

    A replay posts runs of entries in the same month: one comparison instead of a time zone conversion each. The
    bounds are kept in the moments' own fixed-offset zone (UTC in practice), so the comparison needs no offsets.
    """

    __slots__ = ("_end", "_last_closed", "_name", "_start", "_zone")

    def __init__(self, *, last_closed: str | None) -> None:
        self._last_closed = last_closed
        self._zone: tzinfo | None = None
        self._start = self._end = datetime.min
        self._name = ""

    def __call__(self, moment: datetime) -> str:
        if moment.tzinfo is self._zone and self._start <= moment < self._end:
            return self._name
        name = posting_period(moment, last_closed=self._last_closed)
        zone = moment.tzinfo
        if isinstance(zone, timezone):  # fixed offset: comparing wall times in it is comparing instants
            start, end = period_bounds(period_of(moment))
            self._zone, self._start, self._end, self._name = zone, start.astimezone(zone), end.astimezone(zone), name
        return name
