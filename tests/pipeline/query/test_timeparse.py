"""Time ranges from questions: a table of phrasings, timezones and DST edges, and the precedence rules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import InvalidTimeRange
from pipeline.query.timeparse import TimeBounds, TimeParseConfig, resolve_time_range

NOW = "2026-03-14T13:30:15Z"  # a Saturday; Berlin 14:30:15 (CET), New York 09:30:15 (EDT), Kolkata 19:00:15


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


# now, timezone, question, expected start, expected end (UTC), expected asked instant (None: a range)
TABLE = [
    # clock times: the most recent such minute not after now
    (NOW, "UTC", "what happened at 14:03?", "2026-03-13T14:03Z", "2026-03-13T14:04Z", "2026-03-13T14:03Z"),
    (NOW, "UTC", "at 13:03", "2026-03-14T13:03Z", "2026-03-14T13:04Z", "2026-03-14T13:03Z"),
    (NOW, "UTC", "at 13:30", "2026-03-14T13:30Z", "2026-03-14T13:31Z", "2026-03-14T13:30Z"),
    (NOW, "UTC", "who was there at 2:03 pm", "2026-03-13T14:03Z", "2026-03-13T14:04Z", "2026-03-13T14:03Z"),
    (NOW, "UTC", "anything at 12:03 p.m.?", "2026-03-14T12:03Z", "2026-03-14T12:04Z", "2026-03-14T12:03Z"),
    (NOW, "UTC", "at 13:29:50", "2026-03-14T13:29:50Z", "2026-03-14T13:29:51Z", "2026-03-14T13:29:50Z"),
    (NOW, "UTC", "at 9", "2026-03-14T09:00Z", "2026-03-14T10:00Z", "2026-03-14T09:00Z"),
    (NOW, "UTC", "around 11am", "2026-03-14T11:00Z", "2026-03-14T12:00Z", "2026-03-14T11:00Z"),
    (NOW, "UTC", "what was at noon", "2026-03-14T12:00Z", "2026-03-14T12:01Z", "2026-03-14T12:00Z"),
    (NOW, "UTC", "around midnight", "2026-03-14T00:00Z", "2026-03-14T00:01Z", "2026-03-14T00:00Z"),
    (NOW, "UTC", "camera 3 at 10h15", "2026-03-14T10:15Z", "2026-03-14T10:16Z", "2026-03-14T10:15Z"),
    # dates, with dateparser reading the date words
    (NOW, "UTC", "yesterday at 9", "2026-03-13T09:00Z", "2026-03-13T10:00Z", "2026-03-13T09:00Z"),
    (NOW, "UTC", "at 9:30 yesterday", "2026-03-13T09:30Z", "2026-03-13T09:31Z", "2026-03-13T09:30Z"),
    (NOW, "UTC", "at 14:03 on 2026-03-10", "2026-03-10T14:03Z", "2026-03-10T14:04Z", "2026-03-10T14:03Z"),
    (NOW, "UTC", "March 10 at 2pm", "2026-03-10T14:00Z", "2026-03-10T15:00Z", "2026-03-10T14:00Z"),
    (NOW, "UTC", "what happened yesterday", "2026-03-13T00:00Z", "2026-03-14T00:00Z", None),
    (NOW, "UTC", "anything today?", "2026-03-14T00:00Z", "2026-03-14T13:30:15Z", None),
    (NOW, "UTC", "on 2026-03-01", "2026-03-01T00:00Z", "2026-03-02T00:00Z", None),
    (NOW, "UTC", "last friday", "2026-03-13T00:00Z", "2026-03-14T00:00Z", None),
    # ranges
    (NOW, "UTC", "between 14:00 and 14:10", "2026-03-13T14:00Z", "2026-03-13T14:10Z", None),
    (NOW, "UTC", "between 12:00 and 12:10", "2026-03-14T12:00Z", "2026-03-14T12:10Z", None),
    (NOW, "UTC", "from 12:00 to 12:10", "2026-03-14T12:00Z", "2026-03-14T12:10Z", None),
    (NOW, "UTC", "12:00-12:10", "2026-03-14T12:00Z", "2026-03-14T12:10Z", None),
    (NOW, "UTC", "12:00 \u2013 12:10", "2026-03-14T12:00Z", "2026-03-14T12:10Z", None),
    (NOW, "UTC", "between 23:50 and 00:10", "2026-03-13T23:50Z", "2026-03-14T00:10Z", None),
    (NOW, "UTC", "between 2 and 3 pm", "2026-03-13T14:00Z", "2026-03-13T15:00Z", None),
    (NOW, "UTC", "from 9 to 11 yesterday", "2026-03-13T09:00Z", "2026-03-13T11:00Z", None),
    (NOW, "UTC", "since 13:00", "2026-03-14T13:00Z", "2026-03-14T13:30:15Z", None),
    (NOW, "UTC", "after 12:30", "2026-03-14T12:30Z", "2026-03-14T13:30:15Z", None),
    (NOW, "UTC", "before 9", "2026-03-14T08:00Z", "2026-03-14T09:00Z", None),
    # windows ending now, and moments back from now
    (NOW, "UTC", "what happened in the last 5 minutes", "2026-03-14T13:25:15Z", "2026-03-14T13:30:15Z", None),
    (NOW, "UTC", "during the past hour", "2026-03-14T12:30:15Z", "2026-03-14T13:30:15Z", None),
    (NOW, "UTC", "the past half hour", "2026-03-14T13:00:15Z", "2026-03-14T13:30:15Z", None),
    (NOW, "UTC", "last 2 hours", "2026-03-14T11:30:15Z", "2026-03-14T13:30:15Z", None),
    (NOW, "UTC", "over the last 90 seconds", "2026-03-14T13:28:45Z", "2026-03-14T13:30:15Z", None),
    (NOW, "UTC", "in the last ten minutes", "2026-03-14T13:20:15Z", "2026-03-14T13:30:15Z", None),
    (NOW, "UTC", "5 minutes ago", "2026-03-14T13:25:15Z", "2026-03-14T13:26:15Z", "2026-03-14T13:25:15Z"),
    # ISO timestamps: an offset is absolute, none means camera-local
    (NOW, "UTC", "2026-03-14T14:03:00Z", "2026-03-14T14:03:00Z", "2026-03-14T14:03:01Z", "2026-03-14T14:03Z"),
    (NOW, "UTC", "at 2026-03-14T10:03+02:00", "2026-03-14T08:03Z", "2026-03-14T08:04Z", "2026-03-14T08:03Z"),
    (NOW, "Europe/Berlin", "2026-03-14 12:03", "2026-03-14T11:03Z", "2026-03-14T11:04Z", "2026-03-14T11:03Z"),
    (NOW, "UTC", "between 2026-03-12T10:00Z and 2026-03-12T11:00Z", "2026-03-12T10:00Z", "2026-03-12T11:00Z", None),
    # other zones
    (NOW, "Europe/Berlin", "at 14:03", "2026-03-14T13:03Z", "2026-03-14T13:04Z", "2026-03-14T13:03Z"),
    (NOW, "Europe/Berlin", "at 14:45", "2026-03-13T13:45Z", "2026-03-13T13:46Z", "2026-03-13T13:45Z"),
    (NOW, "Europe/Berlin", "yesterday at 9", "2026-03-13T08:00Z", "2026-03-13T09:00Z", "2026-03-13T08:00Z"),
    (NOW, "Europe/Berlin", "yesterday", "2026-03-12T23:00Z", "2026-03-13T23:00Z", None),
    (NOW, "America/New_York", "at 9:15", "2026-03-14T13:15Z", "2026-03-14T13:16Z", "2026-03-14T13:15Z"),
    (NOW, "America/New_York", "at 10", "2026-03-13T14:00Z", "2026-03-13T15:00Z", "2026-03-13T14:00Z"),
    (NOW, "Asia/Kolkata", "at 18:45", "2026-03-14T13:15Z", "2026-03-14T13:16Z", "2026-03-14T13:15Z"),
    # DST, Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET
    ("2026-03-29T10:00Z", "Europe/Berlin", "at 02:30", "2026-03-29T01:30Z", "2026-03-29T01:31Z", "2026-03-29T01:30Z"),
    ("2026-03-29T10:00Z", "Europe/Berlin", "between 01:00 and 04:00", "2026-03-29T00:00Z", "2026-03-29T02:00Z", None),
    ("2026-03-29T01:02Z", "Europe/Berlin", "in the last 5 minutes", "2026-03-29T00:57Z", "2026-03-29T01:02Z", None),
    ("2026-03-30T10:00Z", "Europe/Berlin", "yesterday", "2026-03-28T23:00Z", "2026-03-29T22:00Z", None),
    ("2026-10-25T04:00Z", "Europe/Berlin", "at 02:30", "2026-10-25T01:30Z", "2026-10-25T01:31Z", "2026-10-25T01:30Z"),
    ("2026-10-25T00:45Z", "Europe/Berlin", "at 02:30", "2026-10-25T00:30Z", "2026-10-25T00:31Z", "2026-10-25T00:30Z"),
    ("2026-10-26T12:00Z", "Europe/Berlin", "yesterday", "2026-10-24T22:00Z", "2026-10-25T23:00Z", None),
    (
        "2026-10-26T12:00Z",
        "Europe/Berlin",
        "at 2:30 on 2026-10-25",
        "2026-10-25T01:30Z",
        "2026-10-25T01:31Z",
        "2026-10-25T01:30Z",
    ),
    # DST, America/New_York: 2026-11-01 02:00 EDT -> 01:00 EST
    ("2026-11-01T12:00Z", "America/New_York", "at 1:30", "2026-11-01T06:30Z", "2026-11-01T06:31Z", "2026-11-01T06:30Z"),
]


@pytest.mark.parametrize(("now", "tz", "question", "start", "end", "instant"), TABLE)
def test_question_phrasings_resolve_to_the_expected_range(now, tz, question, start, end, instant):
    found = resolve_time_range(question, utc(now), tz)
    assert (found.start, found.end) == (utc(start), utc(end))
    assert found.instant == (None if instant is None else utc(instant))
    assert found.source == "question" and found.timezone == tz
    assert found.phrase and found.phrase in question.lower().replace("\u2013", "-")


@pytest.mark.parametrize("question", ["did anyone enter?", "what is on camera 3", "", "show the 2 cars", None])
def test_a_question_without_a_time_gets_the_default_range(question):
    now = utc(NOW)
    found = resolve_time_range(question, now, "Europe/Berlin")
    assert (found.start, found.end, found.source, found.instant) == (now - timedelta(hours=1), now, "default", None)
    longer = resolve_time_range(question, now, "UTC", config=TimeParseConfig(default_window=timedelta(hours=6)))
    assert longer.start == now - timedelta(hours=6)


def test_explicit_start_and_end_win_over_the_question():
    start, end = utc("2026-03-14T10:00Z"), utc("2026-03-14T10:30Z")
    found = resolve_time_range("what happened at 14:03?", utc(NOW), "UTC", start=start, end=end)
    assert (found.start, found.end, found.source, found.instant) == (start, end, "explicit", None)


def test_naive_explicit_times_are_read_in_the_camera_zone():
    found = resolve_time_range(None, utc(NOW), "Europe/Berlin", start=datetime(2026, 3, 14, 11, 0))
    assert found.start == utc("2026-03-14T10:00Z")
    assert found.end == utc(NOW)  # only a start: up to now


def test_only_an_explicit_end_looks_back_one_open_window():
    found = resolve_time_range("at 9", utc(NOW), "UTC", end=utc("2026-03-14T12:00Z"))
    assert (found.start, found.end, found.source) == (utc("2026-03-14T11:00Z"), utc("2026-03-14T12:00Z"), "explicit")


def test_reversed_or_empty_ranges_are_refused():
    with pytest.raises(InvalidTimeRange, match="at or before it starts"):
        resolve_time_range(None, utc(NOW), "UTC", start=utc("2026-03-14T12:00Z"), end=utc("2026-03-14T11:00Z"))


def test_bad_inputs_are_clear_errors():
    with pytest.raises(InvalidTimeRange, match="unknown timezone"):
        resolve_time_range("at 9", utc(NOW), "Mars/Olympus")
    with pytest.raises(InvalidTimeRange, match="timezone-aware"):
        resolve_time_range("at 9", datetime(2026, 3, 14, 12), "UTC")


def test_the_range_serializes_with_utc_times_and_its_source():
    found = resolve_time_range("what happened at 14:03?", utc(NOW), "Europe/Berlin")
    assert found.to_json() == {
        "start": "2026-03-14T13:03:00Z",
        "end": "2026-03-14T13:04:00Z",
        "source": "question",
        "timezone": "Europe/Berlin",
        "instant": "2026-03-14T13:03:00Z",
        "phrase": "14:03",
    }


# ---- bounds: absurd dates are InvalidTimeRange, never OverflowError or ValueError ------------------------

ABSURD = [
    "what happened on 9999-12-31 at 23:59?",
    "on 9999-12-31",
    "at 23:59 on December 31, 9999",
    "what happened on 0001-01-01?",
    "at 00:00 on 0001-01-01",
    "between 9999-12-31T23:00 and 9999-12-31T23:59",
    "at 9999-12-31T23:59:59+14:00",
    "at 0001-01-01T00:00:00-12:00",
    "in the last 99999999999 days",
    "99999999999999 hours ago",
    "over the last 1" + "0" * 400 + " seconds",
    "at 2026-02-30T10:00",
    "what happened on 1969-07-20?",
    "on 2026-03-16",  # the day after tomorrow: it ends more than a day after now
]


@pytest.mark.parametrize("tz", ["UTC", "Pacific/Kiritimati", "Etc/GMT+12"])  # UTC, UTC+14, UTC-12
@pytest.mark.parametrize("question", ABSURD)
def test_a_question_about_an_absurd_date_is_an_invalid_time_range(question, tz):
    with pytest.raises(InvalidTimeRange, match="out of range|could not read"):
        resolve_time_range(question, utc(NOW), tz)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (None, datetime(1, 1, 1, 0, 10, tzinfo=timezone.utc)),  # the open start would be before year 1
        (datetime(9999, 12, 31, 23, 59, tzinfo=timezone.utc), None),
        (datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-12))), None),  # past 9999 in UTC
        (datetime(1, 1, 1), None),  # naive: read in Berlin, an hour before year 1
        (None, datetime(1970, 1, 1, 0, 10, tzinfo=timezone.utc)),  # in bounds, its open start is not
        (utc("2026-03-14T10:00Z"), utc("2026-03-16T10:00Z")),  # ends two days after now
    ],
)
def test_explicit_times_out_of_bounds_are_an_invalid_time_range(start, end):
    with pytest.raises(InvalidTimeRange, match="out of range"):
        resolve_time_range(None, utc(NOW), "Europe/Berlin", start=start, end=end)


def test_a_range_up_to_a_day_ahead_is_within_bounds():
    found = resolve_time_range(None, utc(NOW), "UTC", start=utc("2026-03-14T13:00Z"), end=utc("2026-03-15T13:30:15Z"))
    assert found.end == utc(NOW) + timedelta(days=1)
    assert TimeBounds().check(utc("1970-01-01T00:00Z"), utc(NOW)) == utc("1970-01-01T00:00Z")


def test_a_naive_time_is_checked_in_the_widest_timezones():
    bounds, now = TimeBounds(), utc(NOW)
    assert bounds.check_local(datetime(1970, 1, 1, 14, 0), now) == datetime(1970, 1, 1, 14, 0)
    for wall in (datetime(1970, 1, 1, 13, 59), datetime(2026, 3, 15, 1, 31), datetime(9999, 12, 31)):
        with pytest.raises(InvalidTimeRange, match="without an offset"):
            bounds.check_local(wall, now)


_ZONES = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Pacific/Kiritimati", "Etc/GMT+12"])
_WORDS = st.sampled_from(["at", "on", "between", "and", "since", "before", "after", "from", "to", "last", "ago",
                          "yesterday", "today", "noon", "midnight", "pm", "am", "hours", "days", "-"])  # fmt: skip
_YEAR = st.integers(1, 9999).map(lambda y: f"{y:04d}")
_TWO = st.integers(0, 99).map(lambda n: f"{n:02d}")
_PIECES = st.one_of(
    _WORDS,
    st.builds(lambda y, m, d: f"{y}-{m}-{d}", _YEAR, _TWO, _TWO),
    st.builds(lambda y, m, d, h, mi: f"{y}-{m}-{d}T{h}:{mi}", _YEAR, _TWO, _TWO, _TWO, _TWO),
    st.builds(lambda h, m: f"{h}:{m}", _TWO, _TWO),
    st.builds(lambda m, d, y: f"{m} {d}, {y}", st.sampled_from(["March", "dec", "Feb"]), st.integers(0, 40), _YEAR),
    st.integers(0, 10**30).map(str),
    st.text(max_size=12),
)


@settings(max_examples=400, derandomize=True, deadline=None, database=None)
@given(pieces=st.lists(_PIECES, min_size=1, max_size=6), tz=_ZONES)
def test_any_question_resolves_within_bounds_or_is_an_invalid_time_range(pieces, tz):
    now, bounds = utc(NOW), TimeBounds()
    try:
        found = resolve_time_range(" ".join(pieces), now, tz)
    except InvalidTimeRange:
        return
    assert bounds.earliest <= found.start < found.end <= now + bounds.ahead
