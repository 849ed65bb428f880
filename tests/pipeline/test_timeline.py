"""The event timeline: activity from STVP's temporal scores, audio salience from loudness, events across clips."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from omnisift_core.budget import RemovalRatios
from omnisift_core.compressor import OmniSiftCompressor
from pipeline.clips import ClipWindow
from pipeline.records import ChunkScores, ClipRecord
from pipeline.store import AnchorStore, RetentionPolicy, StoreConfig
from pipeline.timeline import (
    Event,
    NoiseFloor,
    TimelineConfig,
    build_events,
    chunk_activity,
    chunk_audio_salience,
    describe_event,
    describe_timeline,
    record_for_window,
    score_clip,
)
from tests.pipeline.anchor_clips import FINGERPRINT, SAMPLE_RATE, T0, compressed_record, meta_at, scene_clip, waveform

CONFIG = TimelineConfig()


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize("video_ratio", [0.0, 0.5, 0.77, 0.9])
def test_a_static_scene_has_no_activity_whatever_the_keep_ratio(video_ratio):
    compression = OmniSiftCompressor(RemovalRatios(video_ratio, 0.5)).compress(scene_clip())
    assert chunk_activity(compression, 5, CONFIG) == (0.0,) * 5
    assert len(compression.video_keep) > 0  # it still kept tokens: activity does not follow the budget


def test_activity_is_the_share_of_cells_that_changed_in_each_chunk():
    # frames 3 (chunk 1) and 5 (chunk 2) are the temporally scored second frames of their chunks;
    # frame 6 opens chunk 3, so its change is scored spatially, and frame 7 sees no further change.
    compression = OmniSiftCompressor(RemovalRatios(0.77, 0.5)).compress(scene_clip(frozenset({3, 5, 6})))
    activity = chunk_activity(compression, 5, CONFIG)
    assert activity == pytest.approx((0.0, 4 / 80, 8 / 80, 0.0, 0.0))


def test_the_change_threshold_decides_what_counts_as_change():
    compression = OmniSiftCompressor(RemovalRatios(0.77, 0.5)).compress(scene_clip(frozenset({3})))
    assert chunk_activity(compression, 5, TimelineConfig(change_threshold=2.0)) == (0.0,) * 5


def test_audio_salience_marks_the_loud_chunk_only():
    wave = waveform(10, loud_chunks=(2,), level_dbfs=-6)
    salience = chunk_audio_salience(wave, SAMPLE_RATE, 5, CONFIG)
    assert salience[2] == 1.0  # -6 dBFS peaks are 44 dB over the -50 dBFS floor: capped at 1
    assert max(salience[:2] + salience[3:]) == 0.0  # -70 dBFS noise is below the floor
    quieter = chunk_audio_salience(waveform(10, (2,), level_dbfs=-35), SAMPLE_RATE, 5, CONFIG)
    assert quieter[2] == pytest.approx((-35 + 50) / 30, abs=0.02)


def test_a_clip_without_audio_has_zero_salience():
    record, compression = compressed_record()
    scores = score_clip(compression, record.start, record.end, None)
    assert scores.audio_salience == (0.0,) * 5


def test_the_noise_floor_drops_at_once_and_rises_slowly():
    floor = NoiseFloor(initial_dbfs=-50, rise_db_per_clip=1.0)
    hum = (np.sin(np.arange(160000) / 16000 * 2 * np.pi * 50) * 10 ** (-30 / 20) * np.sqrt(2)).astype(np.float32)
    quiet = waveform(10)
    assert floor.update(quiet, SAMPLE_RATE) == pytest.approx(-70, abs=1.5)  # drops to the quiet clip
    used = [floor.update(hum, SAMPLE_RATE) for _ in range(5)]
    assert used == pytest.approx([-70 + k for k in range(5)], abs=1.5)  # a steady hum raises it 1 dB per clip
    hum_salience = chunk_audio_salience(hum, SAMPLE_RATE, 5, CONFIG, noise_floor_dbfs=used[-1])
    assert min(hum_salience) > 0.9  # still well above the floor after five clips


def test_adjacent_active_chunks_merge_into_events_across_clip_boundaries():
    clips = [
        meta_at("lobby", 0, activity=(0, 0, 0, 0.05, 0.3)),  # active in its last two chunks ...
        meta_at("lobby", 10, activity=(0.1, 0, 0, 0, 0), salience=(0, 0, 0.9, 0, 0)),  # ... and the first: one event
        meta_at("lobby", 20),  # quiet
        meta_at("lobby", 40, salience=(0.5, 0, 0, 0, 0)),  # after a gap
        meta_at("garage", 10, activity=(0, 0.01, 0, 0, 0)),  # below active_share
    ]
    events = build_events(reversed(clips), CONFIG)
    assert events == [
        Event("lobby", at(6), at(12), 0.3, 0.0, (clips[0].clip_id, clips[1].clip_id)),
        Event("lobby", at(14), at(16), 0.0, 0.9, (clips[1].clip_id,)),
        Event("lobby", at(40), at(42), 0.0, 0.5, (clips[3].clip_id,)),
    ]
    assert events[0].to_json()["start"] == "2026-03-14T14:00:06Z"


def test_a_gap_between_clips_splits_events_unless_merge_gap_allows_it():
    clips = [meta_at("lobby", 0, activity=(0, 0, 0, 0, 0.5)), meta_at("lobby", 11, activity=(0.5, 0, 0, 0, 0))]
    assert len(build_events(clips, CONFIG)) == 2
    merged = build_events(clips, TimelineConfig(merge_gap=timedelta(seconds=1)))
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


def test_event_sentences_give_utc_and_camera_local_times():
    event = Event("lobby", at(182), at(188.4), 0.3, 0.8, ("lobby@1",))
    assert describe_event(event) == (
        "lobby: activity from 14:03:02 to 14:03:08 UTC on 2026-03-14 (strong motion, loud sound)."
    )
    assert describe_event(event, ZoneInfo("Europe/Berlin")) == (
        "lobby: activity from 15:03:02 to 15:03:08 Europe/Berlin on 2026-03-14, 14:03:02 to 14:03:08 UTC "
        "(strong motion, loud sound)."
    )
    tokyo = describe_event(Event("lobby", at(32400), at(32410), 0.3, 0.0, ()), ZoneInfo("Asia/Tokyo"))
    assert "08:00:00 to 08:00:10 Asia/Tokyo on 2026-03-15, 23:00:00 to 23:00:10 UTC on 2026-03-14" in tokyo
    late = Event(
        "lobby", T0.replace(hour=23, minute=59, second=58), T0.replace(hour=23) + timedelta(hours=1), 0.05, 0, ()
    )
    assert "2026-03-14 23:59:58 to 2026-03-15 00:00:00 UTC" in describe_event(late)
    assert "(motion)" in describe_event(late)


def test_timeline_answer_names_events_quiet_cameras_and_missing_footage():
    event = Event("lobby", at(2), at(6), 0.03, 0.0, ("lobby@1",))
    text = describe_timeline(
        [event], at(0), at(600), {"lobby": 60, "garage": 60, "yard": 0}, {"garage": ZoneInfo("Asia/Tokyo")}
    )
    lines = text.splitlines()
    assert lines[0] == "lobby: activity from 14:00:02 to 14:00:06 UTC on 2026-03-14 (slight motion)."
    assert lines[1].startswith("garage: no activity from 23:00:00 to 23:10:00 Asia/Tokyo on 2026-03-14")
    assert lines[1].endswith("(60 clips checked).")
    assert lines[2] == "yard: no stored footage from 14:00:00 to 14:10:00 UTC on 2026-03-14."


def test_chunk_scores_must_match_the_clip_length():
    record, _ = compressed_record()
    with pytest.raises(ValueError, match="5 chunks"):
        ClipRecord(**{**record.__dict__, "scores": ChunkScores.quiet(4)})
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        ChunkScores((1.5,), (0.0,))


def window(record, audio: np.ndarray, has_audio: bool) -> ClipWindow:
    """The clip window ingest hands to record_for_window (frames are not read by it)."""
    empty = np.zeros(0)
    return ClipWindow(
        "lobby",
        record.start,
        record.end,
        np.zeros((0, 2, 2, 3), np.uint8),
        empty,
        2.0,
        audio,
        SAMPLE_RATE,
        has_audio,
        empty,
    )


def test_record_for_window_scores_the_window_and_adapts_the_noise_floor():
    record, compression = compressed_record(moving_frames=frozenset({3}))
    loud = window(record, waveform(10, (3,)), True)
    floor = NoiseFloor(initial_dbfs=-50)
    stored = record_for_window(loud, compression, FINGERPRINT, noise_floor=floor)
    assert stored.clip_id == record.clip_id and stored.has_audio
    assert stored.scores.activity == record.scores.activity
    assert stored.scores.audio_salience[3] == 1.0 and max(stored.scores.audio_salience[:3]) < 0.1
    assert floor.floor_dbfs < -60  # followed the quiet noise down
    silent = window(record, np.zeros(160000, np.float32), False)
    mute = record_for_window(silent, compression, FINGERPRINT)
    assert not mute.has_audio and mute.scores.audio_salience == (0.0,) * 5
