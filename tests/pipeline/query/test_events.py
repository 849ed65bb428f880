"""The event timeline: active chunks merged into events across clips, from stored metadata."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipeline.activity import ActivityConfig
from pipeline.query.events import Event, build_events
from pipeline.query.wording import describe_event
from pipeline.store.anchor_store import AnchorStore
from pipeline.store.config import RetentionPolicy, StoreConfig
from tests.fixtures.anchor_clips import FINGERPRINT, T0, compressed_record, meta_at

CONFIG = ActivityConfig()


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def test_adjacent_active_chunks_merge_into_events_across_clip_boundaries():
    clips = [
        meta_at("lobby", 0, activity=(0, 0, 0, 0.05, 0.3)),  # active in its last two chunks ...
        meta_at("lobby", 10, activity=(0.1, 0, 0, 0, 0), salience=(0, 0, 0.9, 0, 0)),  # ... and the first: one event
        meta_at("lobby", 20),  # quiet
        meta_at("lobby", 40, salience=(0.5, 0, 0, 0, 0)),  # after a gap
        meta_at("garage", 10, activity=(0, 0.01, 0, 0, 0)),  # below active_share
        meta_at("garage", 20, speech=(0, 0, 0.4, 0.9, 0), salience=(0, 0, 0, 0.2, 0)),  # speech below room tone's 1/3
    ]
    events = build_events(reversed(clips), CONFIG)
    assert events == [
        Event("lobby", at(6), at(12), 0.3, 0.0, 0.0, ("motion",), (clips[0].clip_id, clips[1].clip_id)),
        Event("lobby", at(14), at(16), 0.0, 0.9, 0.0, ("sound",), (clips[1].clip_id,)),
        Event("garage", at(26), at(28), 0.0, 0.2, 0.9, ("speech",), (clips[5].clip_id,)),
        Event("lobby", at(40), at(42), 0.0, 0.5, 0.0, ("sound",), (clips[3].clip_id,)),
    ]
    assert events[0].to_json()["start"] == "2026-03-14T14:00:06Z"
    assert events[0].to_json()["triggers"] == ["motion"]
    assert describe_event(events[2]).endswith("(no visible motion, speech).")


def test_an_event_names_every_trigger_of_its_chunks():
    clip = meta_at("lobby", 0, activity=(0.3, 0, 0, 0, 0), salience=(0, 0.8, 0, 0, 0), speech=(0, 0.95, 0, 0, 0))
    [event] = build_events([clip], CONFIG)
    assert event.triggers == ("motion", "sound", "speech")
    assert describe_event(event).endswith("(strong motion, loud sound, speech).")


def test_a_gap_between_clips_splits_events_unless_merge_gap_allows_it():
    clips = [meta_at("lobby", 0, activity=(0, 0, 0, 0, 0.5)), meta_at("lobby", 11, activity=(0.5, 0, 0, 0, 0))]
    assert len(build_events(clips, CONFIG)) == 2
    merged = build_events(clips, ActivityConfig(merge_gap=timedelta(seconds=1)))
    assert [(e.start, e.end) for e in merged] == [(at(8), at(13))]


def test_events_limited_to_a_range_keep_their_chunk_times():
    clips = [meta_at("lobby", 0, activity=(0.5,) * 5)]
    events = build_events(clips, CONFIG, start=at(3), end=at(5))
    assert [(e.start, e.end) for e in events] == [(at(2), at(6))]


def test_a_moving_block_becomes_an_event_at_the_right_times_through_the_store(redis_server):
    client = redis_server.client()
    store = AnchorStore(client, FINGERPRINT, StoreConfig(retention=RetentionPolicy(None, None)))
    # clip 0 static; clip 1: the block moves in frames 7 and 9 (chunks 3, 4); clip 2: in frame 1 (chunk 0)
    plans = [frozenset(), frozenset({7, 9}), frozenset({1}), frozenset()]
    records = [compressed_record("lobby", at(10 * i), moving_frames=m, seed=i)[0] for i, m in enumerate(plans)]
    for record in records:
        store.put(record)
    events = build_events(store.clips("lobby", at(0), at(40)), CONFIG)
    assert [(e.start, e.end) for e in events] == [(at(16), at(22))]
    assert events[0].clip_ids == (records[1].clip_id, records[2].clip_id)
    assert events[0].activity == pytest.approx(8 / 80)


def test_an_alarm_in_a_static_scene_is_an_event_too():
    record, _ = compressed_record(loud_chunks=(1,))
    meta = meta_at("lobby", 0, activity=record.scores.activity, salience=record.scores.audio_salience)
    events = build_events([meta], CONFIG)
    assert [(e.start, e.end, e.activity) for e in events] == [(at(2), at(4), 0.0)]
    assert describe_event(events[0]).endswith("(no visible motion, loud sound).")
