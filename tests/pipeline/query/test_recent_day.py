"""'At 14:03' with no footage at 14:03 today: the most recent day that has footage at that local time answers,
on DST days and in a camera's own timezone too."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from pipeline.query.recent_day import most_recent_day_with_footage
from pipeline.query.timeparse import resolve_time_range

UTC = timezone.utc


def footage_at(*starts: datetime, seconds: int = 10):
    """A has_footage over clips starting at `starts` (UTC), and the oldest of them."""
    clips = [(s, s + timedelta(seconds=seconds)) for s in starts]

    def has_footage(start: datetime, end: datetime) -> bool:
        return any(a < end and b > start for a, b in clips)

    return has_footage, min(starts)


def ask(question: str, now: datetime, zone: str, *starts: datetime):
    asked = resolve_time_range(question, now, zone)
    has_footage, oldest = footage_at(*starts)
    return asked, most_recent_day_with_footage(asked, has_footage, now, oldest)


def test_footage_today_answers_as_asked():
    now = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
    asked, used = ask("what happened at 14:03?", now, "UTC", datetime(2026, 11, 23, 14, 3, 0, tzinfo=UTC))
    assert used == asked and used.asked_day is None


def test_no_footage_today_moves_to_the_most_recent_day_with_footage_at_that_time():
    now = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
    footage = [datetime(2026, 11, d, 14, 3, 0, tzinfo=UTC) for d in (18, 20)] + [datetime(2026, 11, 22, 9, tzinfo=UTC)]
    asked, used = ask("what happened at 14:03?", now, "UTC", *footage)
    assert used.start == datetime(2026, 11, 20, 14, 3, tzinfo=UTC)
    assert used.end - used.start == asked.end - asked.start == timedelta(minutes=1)
    assert used.instant == used.start and used.asked_day == date(2026, 11, 23)


def test_a_question_with_a_date_never_moves():
    now = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
    asked, used = ask("at 14:03 yesterday", now, "UTC", datetime(2026, 11, 20, 14, 3, tzinfo=UTC))
    assert used == asked


def test_no_day_with_footage_at_that_time_answers_the_day_asked():
    now = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
    asked, used = ask("at 14:03", now, "UTC", datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    assert used == asked


def test_spring_forward_day_a_skipped_time_on_the_day_found_moves_forward_by_the_gap():
    """New York, 2026-03-08: 02:00-03:00 does not exist. Asked on the 9th at 02:30 with footage only at 07:30Z
    on the 8th (03:30 EDT, where 02:30 moves): that is the answer."""
    now = datetime(2026, 3, 9, 17, 0, tzinfo=UTC)
    asked, used = ask("what happened at 2:30?", now, "America/New_York", datetime(2026, 3, 8, 7, 30, tzinfo=UTC))
    assert asked.start == datetime(2026, 3, 9, 6, 30, tzinfo=UTC)  # 02:30 EDT on the 9th
    assert used.start == datetime(2026, 3, 8, 7, 30, tzinfo=UTC) and used.asked_day == date(2026, 3, 9)


def test_spring_forward_day_asked_the_day_before_uses_standard_time():
    now = datetime(2026, 3, 8, 17, 0, tzinfo=UTC)  # the DST day itself: 02:30 moved to 03:30 EDT = 07:30Z
    asked, used = ask("at 2:30", now, "America/New_York", datetime(2026, 3, 7, 7, 30, tzinfo=UTC))
    assert asked.start == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert used.start == datetime(2026, 3, 7, 7, 30, tzinfo=UTC)  # 02:30 EST on the 7th
    assert used.asked_day == date(2026, 3, 8)


def test_fall_back_day_a_repeated_time_is_its_later_occurrence():
    """New York, 2026-11-01: 01:30 happens twice (05:30Z EDT, 06:30Z EST); the later one is the answer."""
    now = datetime(2026, 11, 2, 17, 0, tzinfo=UTC)
    both = (datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 1, 6, 30, tzinfo=UTC))
    _, used = ask("at 1:30", now, "America/New_York", *both)
    assert used.start == datetime(2026, 11, 1, 6, 30, tzinfo=UTC) and used.asked_day == date(2026, 11, 2)


ZONES = [
    ("Asia/Tokyo", datetime(2026, 11, 20, 0, 3, tzinfo=UTC)),
    ("America/Los_Angeles", datetime(2026, 11, 20, 17, 3, tzinfo=UTC)),
]


@pytest.mark.parametrize(("zone", "footage_utc"), ZONES)
def test_a_camera_in_another_timezone_is_searched_by_its_own_local_days(zone, footage_utc):
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    _, used = ask("what happened at 9:03?", now, zone, footage_utc)
    assert used.start == footage_utc
    local = used.start.astimezone(ZoneInfo(zone))
    assert local.time() == time(9, 3) and local.date() == date(2026, 11, 20)
