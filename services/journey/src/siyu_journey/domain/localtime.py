"""Local time of the brands' customers (Asia/Shanghai): days, weeks, months and times of day.

The guardrails ask these for every touch of a batch with the batch's one ``now`` (a zone conversion each, ~15 µs
a touch in all), so the pure functions of an instant keep their last answers."""

from __future__ import annotations

import calendar
from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


@lru_cache(maxsize=256)
def parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def next_local_time(now: datetime, at: time) -> datetime:
    """The first instant strictly after ``now`` whose Shanghai wall clock reads ``at``."""
    local = now.astimezone(SHANGHAI)
    candidate = datetime.combine(local.date(), at, tzinfo=SHANGHAI)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate


@lru_cache(maxsize=256)
def start_of_day(now: datetime) -> datetime:
    local = now.astimezone(SHANGHAI)
    return datetime.combine(local.date(), time(0), tzinfo=SHANGHAI)


@lru_cache(maxsize=256)
def start_of_week(now: datetime) -> datetime:
    """Monday 00:00 Shanghai of the week ``now`` falls in."""
    day = start_of_day(now)
    return day - timedelta(days=day.weekday())


@lru_cache(maxsize=256)
def start_of_month(now: datetime) -> datetime:
    local = now.astimezone(SHANGHAI)
    return datetime(local.year, local.month, 1, tzinfo=SHANGHAI)


@lru_cache(maxsize=256)
def days_in_month(now: datetime) -> int:
    local = now.astimezone(SHANGHAI)
    return calendar.monthrange(local.year, local.month)[1]


@lru_cache(maxsize=256)
def in_window(now: datetime, start: time, end: time) -> bool:
    """Whether the Shanghai wall clock of ``now`` is in [start, end); windows may wrap midnight."""
    clock = now.astimezone(SHANGHAI).time()
    if start <= end:
        return start <= clock < end
    return clock >= start or clock < end
