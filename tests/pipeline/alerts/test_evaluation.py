"""Where a rule's condition holds in stored clip metadata: chunk runs, minimum durations across clips, the
schedule in the camera's timezone, and the timeline's own definition of an active chunk."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from pipeline.activity import ActivityConfig
from pipeline.alerts.evaluation import find_matches, question_match
from pipeline.alerts.rules import AlertRule, Condition, Schedule, Webhook
from pipeline.errors import InvalidRule
from pipeline.records import ChunkScores
from tests.fixtures.anchor_clips import T0, meta_at

UTC = ZoneInfo("UTC")
ACTIVITY = ActivityConfig()
QUIET = (0.0,) * 5


def rule(kind="motion", **condition) -> AlertRule:
    return AlertRule("r1", "test", Condition(kind, **condition))


def ms(offset_s: float) -> int:
    return round(T0.timestamp() * 1000 + offset_s * 1000)


def test_motion_fires_at_the_first_active_chunk_with_the_timelines_threshold():
    meta = meta_at("lobby", 0, activity=(0.0, 0.0, 0.3, 0.3, 0.0))
    [match] = find_matches(rule(), meta, [], UTC, ACTIVITY)
    assert (match.start_ms, match.end_ms, match.reached_ms) == (ms(4), ms(8), ms(4))
    assert match.clip_ids == (meta.clip_id,) and match.scores["activity"] == 0.3


def test_a_level_below_the_timelines_active_share_is_quiet_and_two_runs_fire_twice():
    assert find_matches(rule(), meta_at("lobby", 0, activity=(0.01,) * 5), [], UTC, ACTIVITY) == []
    runs = find_matches(rule(), meta_at("lobby", 0, activity=(0.5, 0.0, 0.5, 0.0, 0.5)), [], UTC, ACTIVITY)
    assert [m.start_ms for m in runs] == [ms(0), ms(4), ms(8)]


def test_min_level_overrides_the_timeline_definition():
    meta = meta_at("lobby", 0, activity=(0.1, 0.1, 0.3, 0.0, 0.0))
    assert [m.start_ms for m in find_matches(rule(min_level=0.25), meta, [], UTC, ACTIVITY)] == [ms(4)]


def test_sound_reads_audio_salience_and_never_fires_on_a_clip_without_audio():
    meta = meta_at("lobby", 0, salience=(0.0, 0.9, 0.0, 0.0, 0.0))
    assert [m.start_ms for m in find_matches(rule("sound"), meta, [], UTC, ACTIVITY)] == [ms(2)]
    assert find_matches(rule("sound"), replace(meta, has_audio=False), [], UTC, ACTIVITY) == []


def test_speech_reads_the_voice_activity_probability_and_is_quiet_where_it_was_not_measured():
    meta = meta_at("lobby", 0)
    speaking = replace(meta, scores=ChunkScores(QUIET, QUIET, (0.1, 0.2, 0.8, 0.9, 0.1)))
    [match] = find_matches(rule("speech"), speaking, [], UTC, ACTIVITY)
    assert (match.start_ms, match.end_ms, match.scores["speech"]) == (ms(4), ms(8), 0.9)
    assert find_matches(rule("speech"), meta, [], UTC, ACTIVITY) == []  # speech == (): not measured


def test_a_minimum_duration_fires_once_when_reached_even_across_clips():
    need_6s = rule(min_duration_s=6)
    first = meta_at("lobby", 0, activity=(0.0, 0.0, 0.0, 0.5, 0.5))  # 4 s of motion at its end
    second = meta_at("lobby", 10, activity=(0.5, 0.5, 0.0, 0.0, 0.0))  # continues for 4 s more
    third = meta_at("lobby", 20, activity=(0.5,) * 5)
    assert find_matches(need_6s, first, [], UTC, ACTIVITY) == []
    [match] = find_matches(need_6s, second, [first], UTC, ACTIVITY)
    assert (match.start_ms, match.reached_ms, match.end_ms) == (ms(6), ms(12), ms(14))
    assert match.clip_ids == (first.clip_id, second.clip_id)
    # the run that started in the third clip reaches 6 s there, and only there
    assert [m.start_ms for m in find_matches(need_6s, third, [first, second], UTC, ACTIVITY)] == [ms(20)]
    continuing = meta_at("lobby", 30, activity=(0.5,) * 5)
    assert find_matches(need_6s, continuing, [second, third], UTC, ACTIVITY) == []


def test_motion_across_a_clip_boundary_is_one_event_that_fires_once():
    first = meta_at("lobby", 0, activity=(0.0, 0.0, 0.0, 0.0, 0.5))
    second = meta_at("lobby", 10, activity=(0.5, 0.5, 0.0, 0.5, 0.0))
    assert [m.start_ms for m in find_matches(rule(), first, [], UTC, ACTIVITY)] == [ms(8)]
    assert [m.start_ms for m in find_matches(rule(), second, [first], UTC, ACTIVITY)] == [ms(16)]  # not at 10


def test_a_run_does_not_continue_across_a_gap_between_clips():
    first = meta_at("lobby", 0, activity=(0.0, 0.0, 0.0, 0.5, 0.5))
    after_gap = meta_at("lobby", 20, activity=(0.5, 0.0, 0.0, 0.0, 0.0))
    assert find_matches(rule(min_duration_s=4), after_gap, [first], UTC, ACTIVITY) == []
    assert [m.start_ms for m in find_matches(rule(), after_gap, [first], UTC, ACTIVITY)] == [ms(20)]


def test_the_schedule_is_read_in_the_cameras_timezone():
    # T0 is 2026-03-14 14:00 UTC, a Saturday: 15:00 in Berlin, 10:00 in New York
    meta = meta_at("lobby", 0, activity=(0.5,) * 5)
    afternoons = replace(rule(), schedule=Schedule(("sat",), time(14, 30), time(18, 0)))
    assert len(find_matches(afternoons, meta, [], ZoneInfo("Europe/Berlin"), ACTIVITY)) == 1
    assert find_matches(afternoons, meta, [], ZoneInfo("America/New_York"), ACTIVITY) == []
    weekdays = replace(rule(), schedule=Schedule(("mon", "tue", "wed", "thu", "fri")))
    assert find_matches(weekdays, meta, [], ZoneInfo("Europe/Berlin"), ACTIVITY) == []


def test_a_window_ending_before_it_starts_crosses_midnight_from_its_day():
    night = Schedule(("fri",), time(22, 0), time(6, 0))
    berlin = ZoneInfo("Europe/Berlin")
    assert night.holds(datetime(2026, 3, 13, 23, 0, tzinfo=berlin))  # Friday 23:00
    assert night.holds(datetime(2026, 3, 14, 3, 0, tzinfo=berlin))  # Saturday 03:00, Friday's night
    assert not night.holds(datetime(2026, 3, 14, 23, 0, tzinfo=berlin))  # Saturday 23:00
    assert not night.holds(datetime(2026, 3, 13, 3, 0, tzinfo=berlin))  # Friday 03:00, Thursday's night


def test_a_question_fires_for_the_clip_when_yes_is_likely_enough():
    meta = meta_at("lobby", 0)
    asked = rule("question", question="is a person at the door?", min_level=0.7)
    assert question_match(asked, meta, 0.69, UTC) is None
    match = question_match(asked, meta, 0.8, UTC)
    assert (match.start_ms, match.end_ms, match.scores) == (meta.start_ms, meta.end_ms, {"probability": 0.8})


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda: Condition("question"), "needs a question"),
        (lambda: Condition("motion", question="why?"), "only a question condition"),
        (lambda: Condition("question", question="q", min_duration_s=4), "min_duration_s applies"),
        (lambda: Schedule(("someday",)), "schedule days"),
        (lambda: Schedule(()), "schedule days"),
        (lambda: Webhook("http://127.0.0.1/", body_template="${nope}"), "unknown fields ['nope']"),
        (lambda: Webhook("http://127.0.0.1/", body_template="cost: $5"), "not a ${field} placeholder"),
    ],
)
def test_rules_that_cannot_hold_are_refused_with_the_reason(build, reason):
    with pytest.raises(InvalidRule, match=reason.replace("[", r"\[").replace("$", r"\$")):
        build()


def test_a_rule_survives_its_json_with_credentials_sealed():
    webhook = Webhook(
        "https://hooks.example/t0ken", bearer_token="tok-9f3", headers=(("X-Key", "key-77a"),), secret="s"
    )
    original = replace(rule(min_duration_s=4), webhook=webhook, cameras=("lobby",), cooldown_s=60)
    raw = original.to_json(lambda text: "sealed:" + text[::-1])
    assert not any(secret in raw for secret in ("t0ken", "tok-9f3", "key-77a"))
    assert AlertRule.from_json(raw, lambda text: text.removeprefix("sealed:")[::-1]) == original
    shown = webhook.describe()
    assert shown["url"] == "https://hooks.example/…" and shown["header_names"] == ["X-Key"]
    assert not any(secret in str(shown) for secret in ("t0ken", "tok-9f3", "key-77a"))
