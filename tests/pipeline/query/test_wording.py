"""The timeline in words: event sentences in the camera's timezone and UTC, quiet cameras, missing footage."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from pipeline.query.events import Event
from pipeline.query.wording import describe_event, describe_timeline
from tests.fixtures.anchor_clips import T0


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def test_event_sentences_give_utc_and_camera_local_times():
    event = Event("lobby", at(182), at(188.4), 0.3, 0.8, 0.0, ("motion", "sound"), ("lobby@1",))
    assert describe_event(event) == (
        "lobby: activity from 14:03:02 to 14:03:08 UTC on 2026-03-14 (strong motion, loud sound)."
    )
    assert describe_event(event, ZoneInfo("Europe/Berlin")) == (
        "lobby: activity from 15:03:02 to 15:03:08 Europe/Berlin on 2026-03-14, 14:03:02 to 14:03:08 UTC "
        "(strong motion, loud sound)."
    )
    tokyo = describe_event(Event("lobby", at(32400), at(32410), 0.3, 0.0, 0.0, ("motion",), ()), ZoneInfo("Asia/Tokyo"))
    assert "08:00:00 to 08:00:10 Asia/Tokyo on 2026-03-15, 23:00:00 to 23:00:10 UTC on 2026-03-14" in tokyo
    late = Event(
        "lobby",
        T0.replace(hour=23, minute=59, second=58),
        T0.replace(hour=23) + timedelta(hours=1),
        0.05,
        0,
        0,
        ("motion",),
        (),
    )
    assert "2026-03-14 23:59:58 to 2026-03-15 00:00:00 UTC" in describe_event(late)
    assert "(motion)" in describe_event(late)


def test_timeline_answer_names_events_quiet_cameras_and_missing_footage():
    event = Event("lobby", at(2), at(6), 0.03, 0.0, 0.0, ("motion",), ("lobby@1",))
    text = describe_timeline(
        [event], at(0), at(600), {"lobby": 60, "garage": 60, "yard": 0}, {"garage": ZoneInfo("Asia/Tokyo")}
    )
    lines = text.splitlines()
    assert lines[0] == "lobby: activity from 14:00:02 to 14:00:06 UTC on 2026-03-14 (slight motion)."
    assert lines[1].startswith("garage: no activity from 23:00:00 to 23:10:00 Asia/Tokyo on 2026-03-14")
    assert lines[1].endswith("(60 clips checked).")
    assert lines[2] == "yard: no stored footage from 14:00:00 to 14:10:00 UTC on 2026-03-14."
