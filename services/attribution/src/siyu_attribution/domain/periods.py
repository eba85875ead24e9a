"""Statement periods: calendar months in Asia/Shanghai, named ``YYYY-MM``."""

from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
# The last period named, with its bounds in the zone of the moment that named it (zone, start, end, name): moments
# come in runs of the same month (an order's postings, a replay's orders), so one comparison instead of a time zone
# conversion each (~8 µs). And the one before it: an order paid late in a month is released in the next, so a
# replay's moments alternate between two months. Each replaced as one tuple, so a reader in another thread sees one
# period's bounds or another's.
_Bounds = tuple[tzinfo | None, datetime, datetime, str]
_last: _Bounds = (None, datetime.min, datetime.min, "")
_previous: _Bounds = _last


def period_of(moment: datetime) -> str:
    """The statement period a moment falls in (the Shanghai calendar month)."""
    global _last, _previous
    zone, start, end, name = _last
    if moment.tzinfo is zone and start <= moment < end:
        return name
    zone, start, end, name = previous = _previous
    if moment.tzinfo is zone and start <= moment < end:
        _previous, _last = _last, previous
        return name
    if moment.tzinfo is None:
        raise ValueError("moment must carry a timezone")
    local = moment.astimezone(SHANGHAI)
    name = f"{local.year:04d}-{local.month:02d}"
    zone = moment.tzinfo
    if isinstance(zone, timezone) and 1 < local.year < 9999:  # fixed offset: wall times in it order as instants
        start, end = period_bounds(name)
        _previous, _last = _last, (zone, start.astimezone(zone), end.astimezone(zone), name)
    return name


def next_period(period: str) -> str:
    year, month = (int(part) for part in period.split("-"))
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def posting_period(moment: datetime, *, last_closed: str | None) -> str:
    """The period an entry posted at ``moment`` belongs to: its own month, or the first open one after a close.

    A closed statement never changes, so anything dated in a closed period carries over to the next open period.
    """
    zone, start, end, own = _last
    if not (moment.tzinfo is zone and start <= moment < end):  # period_of's remembered month, checked here first
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
