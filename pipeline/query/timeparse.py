"""The time range a question refers to, in the camera's timezone, and where that range came from.

Precedence: explicit start/end fields, then a time in the question, then the default range (the last
`default_window` before now). What a question can say (case-insensitive):
- a clock time: "at 14:03", "2:03 pm", "14h03", "at 9", "noon", "midnight": that minute (or hour, for a
  bare hour; or second) local to the camera, the most recent one not after now unless a date is given;
  bare numbers are hours of a 24-hour clock and need a cue word before them ("at 9", "around 9").
- a date with or without a time: "yesterday at 9", "at 14:03 on 2026-03-13", "March 13 at 2pm", "friday";
  a date alone is that whole local day (today: up to now). Date words are read by dateparser.
- a range: "between 14:00 and 14:10", "from 9 to 11 yesterday", "14:00-14:10", "since 13:30",
  "after 13:30", "before 9"; an end at or before its start means the next day.
- a window ending now: "in the last 5 minutes", "past hour", "last 2 hours", "the past half hour";
  a moment: "5 minutes ago" (that minute).
- ISO 8601 timestamps: "2026-03-14T14:03:00Z", "2026-03-14 14:03" (camera-local without an offset).
Local times are converted with the camera's zone: a time skipped by a spring-forward change is moved
forward by the gap; a time that occurs twice when clocks fall back is the most recent occurrence not
after now (else the earlier one). Ranges are computed on local dates, then converted to UTC.
Every range lies within `TimeBounds` (1970-01-01 to one day after now); anything else, however absurd
(year 9999, "the last 1e400 days", February 30), is an InvalidTimeRange, never another error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo

import dateparser

from pipeline.errors import InvalidTimeRange
from pipeline.identifiers import is_timezone_name

RangeSource = Literal["explicit", "question", "default"]
UTC = timezone.utc


# The widest a local wall clock strays from UTC: UTC-12 to UTC+14.
_UTC_OFFSETS = (timedelta(hours=-12), timedelta(hours=14))


@dataclass(frozen=True)
class TimeBounds:
    """The instants a request may name: from `earliest` to `ahead` after now. Nothing is stored outside
    them, and dates near year 1 or 9999 overflow datetime arithmetic (a range end, a clip end, a header)."""

    earliest: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    ahead: timedelta = timedelta(days=1)

    def describe(self) -> str:
        return f"between {self.earliest:%Y-%m-%d} and {_hours(self.ahead)} after now"

    def check(self, instant: datetime, now: datetime, what: str = "time") -> datetime:
        """`instant` (tz-aware) itself when within the bounds, else InvalidTimeRange naming the rule. Compared
        as given: converting 9999-12-31T23:59-12:00 to UTC would overflow."""
        if not self.earliest <= instant <= now + self.ahead:
            raise InvalidTimeRange(f"{what} {instant.isoformat()} is out of range: times must lie {self.describe()}")
        return instant

    def check_local(self, wall: datetime, now: datetime, what: str = "time") -> datetime:
        """A naive wall-clock time, whatever zone it is later read in: the bounds narrowed by the widest
        UTC offsets, so the instant it names is within them in every zone."""
        west, east = _UTC_OFFSETS
        naive_now = now.astimezone(UTC).replace(tzinfo=None)
        low, high = self.earliest.replace(tzinfo=None) + east, naive_now + self.ahead + west
        if not low <= wall <= high:
            raise InvalidTimeRange(
                f"{what} {wall.isoformat()} is out of range: a time without an offset must lie between "
                f"{low.isoformat()} and {_hours(self.ahead + west)} after now, whatever the timezone"
            )
        return wall


@dataclass(frozen=True)
class TimeParseConfig:
    default_window: timedelta = field(default_factory=lambda: timedelta(hours=1))  # no time anywhere
    open_window: timedelta = field(default_factory=lambda: timedelta(hours=1))  # "before 9", or only end given
    languages: tuple[str, ...] = ("en",)  # for dateparser's date words
    bounds: TimeBounds = field(default_factory=TimeBounds)  # every resolved range lies within them


@dataclass(frozen=True)
class TimeRange:
    """[start, end) in UTC, the source it came from, and the asked instant when the question names one."""

    start: datetime
    end: datetime
    source: RangeSource
    timezone: str = "UTC"
    instant: datetime | None = None  # "at 14:03" -> 14:03:00 local, as UTC; the planner always covers it
    phrase: str | None = None  # the words of the question the range was read from
    clock: time | None = None  # a clock time asked without a date: another day may answer it (recent_day.py)
    asked_day: date | None = None  # set when the range moved to an earlier day: the local day first resolved

    def to_json(self) -> dict:
        data = {"start": _iso(self.start), "end": _iso(self.end), "source": self.source, "timezone": self.timezone}
        if self.instant is not None:
            data["instant"] = _iso(self.instant)
        if self.phrase is not None:
            data["phrase"] = self.phrase
        return data


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _hours(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return "one day" if hours == 24 else f"{hours:g} hours"


def iso_utc(instant: datetime) -> str:
    """ISO 8601 in UTC with a Z, milliseconds when present: 2026-03-14T14:03:02.500Z."""
    instant = instant.astimezone(UTC)
    text = instant.isoformat(timespec="milliseconds" if instant.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def resolve_time_range(
    question: str | None,
    now: datetime,
    tz: str | ZoneInfo = "UTC",
    start: datetime | None = None,
    end: datetime | None = None,
    config: TimeParseConfig | None = None,
) -> TimeRange:
    """The range a query is about. Naive explicit times are read in `tz`; `now` must be tz-aware.
    Raises InvalidTimeRange, and nothing else, for a range that is reversed, unreadable or out of bounds."""
    config = config or TimeParseConfig()
    zone = _zone(tz)
    if now.tzinfo is None:
        raise InvalidTimeRange("`now` must be timezone-aware")
    now = now.astimezone(UTC)
    try:
        found = _find_range(question, now, zone, start, end, config)
    except InvalidTimeRange:
        raise
    except OverflowError:  # a date near year 1 or 9999, or a window of 1e400 days
        raise InvalidTimeRange(
            f"the time asked about is out of range: times must lie {config.bounds.describe()}"
        ) from None
    except ValueError as error:  # e.g. an ISO timestamp on February 30
        raise InvalidTimeRange(f"could not read the time asked about: {error}") from None
    return _checked(found, now, config.bounds)


def _find_range(
    question: str | None,
    now: datetime,
    zone: ZoneInfo,
    start: datetime | None,
    end: datetime | None,
    config: TimeParseConfig,
) -> TimeRange:
    if start is not None or end is not None:
        start_utc = None if start is None else _explicit(start, zone)
        end_utc = None if end is None else _explicit(end, zone)
        if start_utc is None:
            start_utc = end_utc - config.open_window
        if end_utc is None:
            end_utc = max(now, start_utc + timedelta(seconds=1))
        return TimeRange(start_utc, end_utc, "explicit", str(zone))
    found = parse_question_time(question or "", now, zone, config)
    if found is not None:
        return found
    return TimeRange(now - config.default_window, now, "default", str(zone))


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    if isinstance(tz, ZoneInfo):
        return tz
    if not is_timezone_name(tz):
        raise InvalidTimeRange(f"unknown timezone {str(tz)[:64]!r}; use an IANA name like 'Europe/Berlin'")
    return ZoneInfo(tz)


def _explicit(value: datetime, zone: ZoneInfo) -> datetime:
    return (value if value.tzinfo is not None else value.replace(tzinfo=zone)).astimezone(UTC)


def _checked(found: TimeRange, now: datetime, bounds: TimeBounds) -> TimeRange:
    if found.end <= found.start:
        raise InvalidTimeRange(f"time range ends ({_iso(found.end)}) at or before it starts ({_iso(found.start)})")
    bounds.check(found.start, now, "the range's start")
    bounds.check(found.end, now, "the range's end")
    return found


# ---- the grammar -----------------------------------------------------------------------------------------

_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_WEEKDAY = r"(?:mon|tues|wednes|thurs|fri|satur|sun)day"
_DATE = (
    rf"(?:\d{{4}}-\d{{2}}-\d{{2}}(?![t\d:])|(?:the\s+)?day\s+before\s+yesterday|yesterday|today"
    rf"|(?:last\s+|this\s+)?{_WEEKDAY}"
    rf"|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:,?\s+\d{{4}})?)"
)
_ISO_DATETIME = r"\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:z|[+-]\d{2}(?::?\d{2})?)?"
_MERIDIEM = r"(?:\s*[ap]\.?\s?m\b\.?)"
_CLOCK = (
    rf"(?:noon|midnight|\d{{1,2}}h[0-5]\d|\d{{1,2}}:[0-5]\d(?::[0-5]\d)?{_MERIDIEM}?"
    rf"|\d{{1,2}}{_MERIDIEM}|\d{{1,2}}(?![\d:]))"
)
_CUE = r"(?:at|around|about|by|since|after|before|from|between|and|to|until|till|-)"
_POINT = rf"(?:{_ISO_DATETIME}|(?:(?:on\s+)?{_DATE},?\s+(?:at\s+)?)?{_CLOCK}(?:,?\s+(?:on\s+)?{_DATE})?)"
_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "fifteen": 15, "twenty": 20, "thirty": 30, "forty-five": 45, "few": 3, "couple of": 2,
}  # fmt: skip
_UNITS = {"sec": "seconds", "second": "seconds", "min": "minutes", "minute": "minutes", "hr": "hours",
          "hour": "hours", "day": "days"}  # fmt: skip
_AMOUNT = rf"(?:\d+(?:\.\d+)?|{'|'.join(sorted(_NUMBER_WORDS, key=len, reverse=True))})"
_UNIT = r"(?P<unit>sec(?:ond)?|min(?:ute)?|h(?:ou)?r|day)s?"

_RE_ISO_DATETIME = re.compile(rf"(?<![\w-]){_ISO_DATETIME}(?![\w:])")
_RE_DATE = re.compile(rf"(?<![\w-]){_DATE}\b")
_RE_CLOCK = re.compile(rf"(?<![\w:.\-/]){_CLOCK}")
_RE_RANGE = re.compile(
    rf"\b(?:between|from)\s+(?P<a>{_POINT})\s+(?:and|to|until|till|through|-)\s+(?P<b>{_POINT})"
    rf"|(?<![\w:])(?P<c>{_ISO_DATETIME}|\d{{1,2}}:[0-5]\d(?::[0-5]\d)?{_MERIDIEM}?)\s*(?:-|to|until|till)\s*"
    rf"(?P<d>{_ISO_DATETIME}|\d{{1,2}}:[0-5]\d(?::[0-5]\d)?{_MERIDIEM}?)(?![\w:])"
)
_RE_WINDOW = re.compile(
    rf"\b(?:(?:in|during|over|within|for)\s+)?(?:the\s+)?(?:last|past|previous)\s+"
    rf"(?:(?P<half>half\s+(?:an\s+)?hour)|(?:(?P<amount>{_AMOUNT})\s+)?{_UNIT})\b"
)
_RE_AGO = re.compile(rf"\b(?:(?P<half>half\s+an\s+hour)|(?P<amount>{_AMOUNT})\s+{_UNIT})\s+ago\b")
_RE_OPEN = re.compile(rf"\b(?P<word>since|after|before)\s+(?P<point>{_POINT})")


@dataclass(frozen=True)
class _Clock:
    at: time
    step: timedelta  # precision: an hour, a minute or a second
    meridiem: bool


@dataclass(frozen=True)
class _Point:
    """A point named in the question: an absolute instant, or a local date and/or clock time."""

    absolute: datetime | None = None
    step: timedelta = timedelta(minutes=1)
    day: date | None = None
    clock: _Clock | None = None


def parse_question_time(question: str, now: datetime, zone: ZoneInfo, config: TimeParseConfig) -> TimeRange | None:
    """The range a question names, or None when it names no time (see the module docstring for the grammar)."""
    text = _normalize(question)
    now = now.astimezone(UTC)
    local_today = now.astimezone(zone).date()

    def found(
        start: datetime, end: datetime, phrase: str, instant: datetime | None = None, clock: time | None = None
    ) -> TimeRange:
        return TimeRange(start, end, "question", str(zone), instant, phrase.strip(), clock)

    if match := _RE_WINDOW.search(text):
        return found(now - _amount(match), now, match.group(0))
    if match := _RE_AGO.search(text):
        ago = _amount(match)
        step = timedelta(minutes=30) if match.group("half") else timedelta(**{_UNITS[_unit_key(match)]: 1})
        instant = now - ago
        return found(instant, instant + step, match.group(0), instant)
    if match := _RE_RANGE.search(text):
        a, b = match.group("a") or match.group("c"), match.group("b") or match.group("d")
        first, second = _read_point(a, config, now, zone), _read_point(b, config, now, zone)
        if first.day is None and second.day is not None and first.absolute is None:
            first = _Point(day=second.day, clock=first.clock)
        if first.clock and second.clock and not first.clock.meridiem and second.clock.meridiem:
            first = _shared_meridiem(first, second)  # "between 2 and 3 pm"
        start = _resolve(first, now, zone, local_today)
        end = _resolve(second, now, zone, local_today, after=start, same_day_as=first)
        return found(start, end, match.group(0))
    if match := _RE_OPEN.search(text):
        point = _read_point(match.group("point"), config, now, zone)
        instant = _resolve(point, now, zone, local_today)
        if match.group("word") == "before":
            return found(instant - config.open_window, instant, match.group(0))
        return found(instant, max(now, instant + timedelta(seconds=1)), match.group(0))
    if match := _RE_ISO_DATETIME.search(text):
        point = _read_point(match.group(0), config, now, zone)
        return found(point.absolute, point.absolute + point.step, match.group(0), point.absolute)
    clock = _find_clock(text)
    day_match = _RE_DATE.search(text)
    day = _read_date(day_match.group(0), config, now, zone) if day_match else None
    if clock is not None:
        clock_match, parsed = clock
        instant = _resolve(_Point(day=day, clock=parsed), now, zone, local_today)
        spans = [clock_match.span()] + ([day_match.span()] if day_match else [])
        phrase = text[min(a for a, _ in spans) : max(b for _, b in spans)]
        return found(instant, instant + parsed.step, phrase, instant, parsed.at if day is None else None)
    if day is not None:
        start = localize(datetime.combine(day, time()), zone, now)
        end = localize(datetime.combine(day + timedelta(days=1), time()), zone, now)
        return found(start, min(end, now) if day == local_today else end, day_match.group(0))
    return None


def _normalize(question: str) -> str:
    text = question.lower().replace("\u2013", "-").replace("\u2014", "-").replace("\u2212", "-")
    return re.sub(r"\s+", " ", text)


def _unit_key(match: re.Match) -> str:
    unit = match.group("unit")
    return unit.rstrip("s") if unit not in _UNITS else unit


def _amount(match: re.Match) -> timedelta:
    if match.group("half"):
        return timedelta(minutes=30)
    raw = match.group("amount")
    count = 1.0 if raw is None else float(_NUMBER_WORDS.get(raw, raw))
    return timedelta(**{_UNITS[_unit_key(match)]: count})


def _read_point(text: str, config: TimeParseConfig, now: datetime, zone: ZoneInfo) -> _Point:
    text = text.strip()
    if iso := _RE_ISO_DATETIME.fullmatch(text):
        value = datetime.fromisoformat(iso.group(0).upper().replace(" ", "T"))
        has_seconds = re.match(r"\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}:\d{2}", text) is not None
        step = timedelta(seconds=1) if has_seconds else timedelta(minutes=1)
        if value.tzinfo is None:
            value = localize(value, zone, now)
        return _Point(absolute=value.astimezone(UTC), step=step)
    day = None
    if day_match := _RE_DATE.search(text):
        day = _read_date(day_match.group(0), config, now, zone)
        text = text[: day_match.start()] + " " * len(day_match.group(0)) + text[day_match.end() :]
    clock_match = _RE_CLOCK.search(text)
    clock = _read_clock(clock_match.group(0)) if clock_match else None
    return _Point(day=day, clock=clock)


def _find_clock(text: str) -> tuple[re.Match, _Clock] | None:
    """The first clock time in the question; a bare number only counts after a cue word ("at 9")."""
    blanked = _RE_DATE.sub(lambda m: " " * len(m.group(0)), text)
    for match in _RE_CLOCK.finditer(blanked):
        raw = match.group(0)
        if raw.isdigit() and not re.search(rf"\b{_CUE}\s+$", blanked[: match.start()]):
            continue
        clock = _read_clock(raw)
        if clock is not None:
            return match, clock
    return None


def _read_clock(raw: str) -> _Clock | None:
    raw = raw.strip()
    if raw == "noon":
        return _Clock(time(12), timedelta(minutes=1), True)
    if raw == "midnight":
        return _Clock(time(0), timedelta(minutes=1), True)
    match = re.fullmatch(r"(\d{1,2})(?:(?::|h)(\d{2})(?::(\d{2}))?)?\s*(?:([ap])\.?\s?m\.?)?", raw)
    if match is None:
        return None
    hour, minute, second = int(match.group(1)), int(match.group(2) or 0), int(match.group(3) or 0)
    meridiem = match.group(4)
    if meridiem:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if meridiem == "p" else 0)
    if hour > 23:
        return None
    step = timedelta(seconds=1) if match.group(3) else timedelta(minutes=1) if match.group(2) else timedelta(hours=1)
    return _Clock(time(hour, minute, second), step, bool(meridiem))


def _shared_meridiem(first: _Point, second: _Point) -> _Point:
    """'between 2 and 3 pm': the first time takes the second's half of the day."""
    hour = first.clock.at.hour
    if hour <= 12 and second.clock.at.hour >= 12 and hour % 12 + 12 <= second.clock.at.hour:
        at = first.clock.at.replace(hour=hour % 12 + 12)
        return _Point(day=first.day, clock=_Clock(at, first.clock.step, True))
    return first


def _read_date(text: str, config: TimeParseConfig, now: datetime, zone: ZoneInfo) -> date:
    base = now.astimezone(zone).replace(tzinfo=None)
    settings = {"RELATIVE_BASE": base, "PREFER_DATES_FROM": "past", "RETURN_AS_TIMEZONE_AWARE": False}
    parsed = dateparser.parse(text.strip().removeprefix("on "), languages=list(config.languages), settings=settings)
    if parsed is None:
        raise InvalidTimeRange(f"could not read the date {text.strip()!r}; try an ISO date like 2026-03-14")
    return parsed.date()


def _resolve(
    point: _Point,
    now: datetime,
    zone: ZoneInfo,
    local_today: date,
    after: datetime | None = None,
    same_day_as: _Point | None = None,
) -> datetime:
    """The UTC instant of a point. Without a date: the most recent such local time not after now, or, for
    a range end (`after` set), the first such time after the range start."""
    if point.absolute is not None:
        return point.absolute
    clock = point.clock.at if point.clock else time()
    if point.day is not None:
        instant = localize(datetime.combine(point.day, clock), zone, now)
        if after is not None and instant <= after and (same_day_as is None or same_day_as.day == point.day):
            instant = localize(datetime.combine(point.day + timedelta(days=1), clock), zone, now)
        return instant
    if after is not None:
        start_day = after.astimezone(zone).date()
        for offset in (0, 1):
            instant = localize(datetime.combine(start_day + timedelta(days=offset), clock), zone, now)
            if instant > after:
                return instant
        return instant
    for offset in (0, 1, 2):
        instant = localize(datetime.combine(local_today - timedelta(days=offset), clock), zone, now)
        if instant <= now:
            return instant
    return instant


def localize(naive: datetime, zone: ZoneInfo, now: datetime) -> datetime:
    """A local wall-clock time as UTC: skipped times move forward by the gap; repeated times resolve to the
    most recent occurrence not after now (else the earlier)."""
    early = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    late = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if early == late:
        return early
    if early.astimezone(zone).replace(tzinfo=None) != naive:  # in a spring-forward gap
        return early  # fold=0 reads it with the offset before the change: the same instant as gap later
    return late if late <= now else early
