"""Words built from stored times: clip headers the model reads, and the timeline's sentences (events and quiet
cameras, in each camera's timezone and in UTC). Times never come from the model's text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from pipeline.activity import ActivityConfig
from pipeline.clips import ClipWindow
from pipeline.query.events import Event
from pipeline.records import ClipMeta


def clip_header(meta: ClipMeta | ClipWindow, tz: ZoneInfo) -> str:
    """'[lobby, 2026-11-23 14:03:00-14:03:10 Europe/Berlin]': what the model reads before a clip's tokens."""
    start, end = meta.start.astimezone(tz), meta.end.astimezone(tz)
    return f"[{meta.camera_id}, {start:%Y-%m-%d %H:%M:%S}-{end:%H:%M:%S} {tz.key}]"


def motion_words(activity: float, config: ActivityConfig) -> str:
    if activity >= config.strong_share:
        return "strong motion"
    if activity >= 2 * config.active_share:
        return "motion"
    if activity >= config.active_share:
        return "slight motion"
    return "no visible motion"


def sound_words(salience: float, config: ActivityConfig) -> str | None:
    if salience >= config.loud_salience:
        return "loud sound"
    if salience >= config.audio_active:
        return "sound"
    return None


def _clock(instant: datetime, tz: ZoneInfo, with_date: bool) -> str:
    local = instant.astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def _span(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    """'14:03:02 to 14:03:08' with the date after it, or full dates when the span crosses midnight."""
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    if local_start.date() == local_end.date():
        return f"{_clock(start, tz, False)} to {_clock(end, tz, False)} {_zone(tz)} on {local_start.date()}"
    return f"{_clock(start, tz, True)} to {_clock(end, tz, True)} {_zone(tz)}"


def _zone(tz: ZoneInfo) -> str:
    return "UTC" if str(tz) in ("UTC", "Etc/UTC") else str(tz)


def describe_span(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    """A time span in the camera's zone, and in UTC when that zone is not UTC."""
    utc = ZoneInfo("UTC")
    if _zone(tz) == "UTC":
        return _span(start, end, utc)
    same_dates = (start.astimezone(tz).date(), end.astimezone(tz).date()) == (
        start.astimezone(utc).date(),
        end.astimezone(utc).date(),
    )
    in_utc = f"{_clock(start, utc, False)} to {_clock(end, utc, False)} UTC" if same_dates else _span(start, end, utc)
    return f"{_span(start, end, tz)}, {in_utc}"


def describe_event(event: Event, tz: ZoneInfo | None = None, config: ActivityConfig | None = None) -> str:
    """'lobby: activity from 14:03:02 to 14:03:08 UTC on 2026-03-14 (strong motion, loud sound, speech).'

    The words name what triggered the event; an event without motion says so."""
    config = config or ActivityConfig()
    words = [motion_words(event.activity, config)]
    sound = sound_words(event.audio_salience, config)
    if sound and "sound" in event.triggers:
        words.append(sound)
    if "speech" in event.triggers:
        words.append("speech")
    span = describe_span(event.start, event.end, tz or ZoneInfo("UTC"))
    return f"{event.camera_id}: activity from {span} ({', '.join(words)})."


def describe_timeline(
    events: Sequence[Event],
    start: datetime,
    end: datetime,
    clips_checked: Mapping[str, int],
    timezones: Mapping[str, ZoneInfo] | None = None,
    config: ActivityConfig | None = None,
) -> str:
    """The plain-text answer built from the timeline alone: every event in time order, and for each camera
    with none, whether it was quiet or had no stored footage in the range."""
    timezones = timezones or {}
    utc = ZoneInfo("UTC")
    lines = [describe_event(e, timezones.get(e.camera_id, utc), config) for e in events]
    with_events = {e.camera_id for e in events}
    for camera_id, checked in sorted(clips_checked.items()):
        if camera_id in with_events:
            continue
        span = describe_span(start, end, timezones.get(camera_id, utc))
        if checked:
            lines.append(f"{camera_id}: no activity from {span} ({checked} clip{'s' * (checked != 1)} checked).")
        else:
            lines.append(f"{camera_id}: no stored footage from {span}.")
    return "\n".join(lines)
