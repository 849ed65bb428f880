"""'At 14:03' when the cameras have no footage at 14:03 today: the most recent earlier day that has footage at that
local time answers instead, and the range says which day (docs/architecture.md, "Time model").

Each earlier day is resolved on its own local date, in the cameras' zone, by the same DST rules as the question
(a time skipped by a spring-forward change moves forward by the gap, a repeated one is its later occurrence).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pipeline.query.timeparse import TimeRange, localize

HasFootage = Callable[[datetime, datetime], bool]  # any asked camera has a clip overlapping [start, end)
MAX_DAYS_BACK = 400


def on_day(time_range: TimeRange, days_back: int, now: datetime) -> TimeRange:
    """The same local clock time `days_back` local days before the range's own day."""
    zone = ZoneInfo(time_range.timezone)
    day = time_range.instant.astimezone(zone).date() - timedelta(days=days_back)
    instant = localize(datetime.combine(day, time_range.clock), zone, now)
    length = time_range.end - time_range.start
    return replace(time_range, start=instant, end=instant + length, instant=instant)


def most_recent_day_with_footage(
    time_range: TimeRange, has_footage: HasFootage, now: datetime, oldest: datetime | None
) -> TimeRange:
    """`time_range` itself when it has footage or names a date; else the same clock time on the most recent
    earlier day with footage, with `asked_day` set (searched back to `oldest`, the oldest stored clip, at most
    MAX_DAYS_BACK days); the range as asked when no day has any."""
    if time_range.clock is None or time_range.instant is None or oldest is None:
        return time_range
    if has_footage(time_range.start, time_range.end):
        return time_range
    asked_day = time_range.instant.astimezone(ZoneInfo(time_range.timezone)).date()
    for days_back in range(1, MAX_DAYS_BACK + 1):
        candidate = on_day(time_range, days_back, now)
        if candidate.end <= oldest:
            break
        if has_footage(candidate.start, candidate.end):
            return replace(candidate, asked_day=asked_day)
    return time_range
