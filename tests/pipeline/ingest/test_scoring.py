"""Scores stored with every clip: activity from STVP's temporal scores, audio salience against the camera's
noise floor, and the floor carried to the camera's next clip."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest

from omnisift_core.compressor import OmniSiftCompressor
from omnisift_core.config import ChangeTest, RemovalRatios
from pipeline.activity import ActivityConfig
from pipeline.clips import ClipWindow
from pipeline.ingest.scoring import (
    chunk_activity,
    chunk_audio_salience,
    next_noise_floor,
    record_for_window,
    score_clip,
)
from pipeline.records import ChunkScores, ClipRecord
from pipeline.store.anchor_store import AnchorStore
from pipeline.store.config import RetentionPolicy, StoreConfig
from tests.fixtures.anchor_clips import FINGERPRINT, SAMPLE_RATE, T0, compressed_record, scene_clip, waveform

CONFIG = ActivityConfig()


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
    assert chunk_activity(compression, 5, ActivityConfig(change=ChangeTest(change_threshold=2.0))) == (0.0,) * 5


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
    hum = (np.sin(np.arange(160000) / 16000 * 2 * np.pi * 50) * 10 ** (-30 / 20) * np.sqrt(2)).astype(np.float32)
    first, floor = next_noise_floor(-50.0, waveform(10), SAMPLE_RATE, CONFIG)
    assert first == pytest.approx(-70, abs=1.5)  # drops to the quiet clip
    used = []
    for _ in range(5):
        scored_against, floor = next_noise_floor(floor, hum, SAMPLE_RATE, CONFIG)
        used.append(scored_against)
    assert used == pytest.approx([-70 + k for k in range(5)], abs=1.5)  # a steady hum raises it 1 dB per clip
    hum_salience = chunk_audio_salience(hum, SAMPLE_RATE, 5, CONFIG, noise_floor_dbfs=used[-1])
    assert min(hum_salience) > 0.9  # still well above the floor after five clips


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
    stored = record_for_window(loud, compression, FINGERPRINT, CONFIG, noise_floor_dbfs=-50.0)
    assert stored.clip_id == record.clip_id and stored.has_audio
    assert stored.scores.activity == record.scores.activity
    assert stored.scores.audio_salience[3] == 1.0 and max(stored.scores.audio_salience[:3]) < 0.1
    assert stored.noise_floor_dbfs < -60  # followed the quiet noise down, for the camera's next clip
    silent = window(record, np.zeros(160000, np.float32), False)
    mute = record_for_window(silent, compression, FINGERPRINT)
    assert not mute.has_audio and mute.scores.audio_salience == (0.0,) * 5


def test_the_noise_floor_carried_in_the_store_is_the_same_whichever_handle_scores_a_clip(redis_server):
    """Two encoder replicas are two store handles: scoring a camera's clips alternately through them gives
    the records one handle gives, because each clip's floor comes from the camera's previous stored clip."""
    config = StoreConfig(retention=RetentionPolicy(None, None))
    one = AnchorStore(redis_server.client(), FINGERPRINT, config)
    two = [AnchorStore(redis_server.client(), FINGERPRINT, replace(config, namespace="replicas")) for _ in "ab"]
    levels = (-70, -40, -40, -20, -40, -40)  # quiet, then room tone, a loud clip, room tone again
    sequences = {}
    for name, handles in (("one", [one] * 6), ("alternating", [two[0], two[1]] * 3)):
        records = []
        for i, (handle, level) in enumerate(zip(handles, levels, strict=True)):
            record, compression = compressed_record(start=T0 + timedelta(seconds=10 * i), seed=i)
            clip = window(record, waveform(10, level_dbfs=level, loud_chunks=(0, 1, 2, 3, 4)), True)
            previous = handle.previous_meta("lobby", clip.start)
            floor = None if previous is None else previous.noise_floor_dbfs
            records.append(record_for_window(clip, compression, FINGERPRINT, CONFIG, floor))
            handle.put(records[-1])
        sequences[name] = [(r.scores, r.noise_floor_dbfs) for r in records]
    assert sequences["alternating"] == sequences["one"]
    floors = [floor for _, floor in sequences["one"]]
    assert floors == pytest.approx([floors[0] + k for k in range(6)])  # from the quiet clip up, 1 dB per clip
    assert floors[0] == pytest.approx(-67, abs=1)
