"""Scores stored with every clip, from what the window's pixels and waveform say, and the noise floor carried to
the camera's next clip through the store."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest

from omnisift_core.layout import VideoGrid
from pipeline.activity import ActivityConfig
from pipeline.clips import ClipWindow
from pipeline.ingest.measures import measure_window
from pipeline.ingest.scoring import chunk_scores, record_for_window
from pipeline.records import ChunkScores, ClipRecord
from pipeline.store.anchor_store import AnchorStore
from pipeline.store.config import RetentionPolicy, StoreConfig
from tests.fixtures.anchor_clips import FINGERPRINT, T0, compressed_record
from tests.pipeline.ingest.test_sound import room_tone, tone

CONFIG = ActivityConfig()
GRID = VideoGrid(frames=5, rows=4, cols=5)  # a 10-s clip at 1 fps: one token frame per 2-s chunk
RATE = 16_000


def window(
    start=T0, moving_frames: tuple[int, ...] = (), audio: np.ndarray | None = None, lead_in: bool = True
) -> ClipWindow:
    """A 10-s window at 1 fps of a still grey view; in each listed frame a dark block covers cell (1, 1)."""
    frames = np.full((10, GRID.rows * 28, GRID.cols * 28, 3), 120, np.uint8)
    for f in moving_frames:
        frames[f:, 28:56, 28:56] = 20
    waveform = audio if audio is not None else np.zeros(10 * RATE, np.float32)
    return ClipWindow(
        "lobby", start, start + timedelta(seconds=10), frames, np.arange(10, dtype=np.float64), 1.0,
        waveform, RATE, audio is not None, np.arange(10, dtype=np.float64),
        lead_in=frames[0].copy() if lead_in else None,
    )  # fmt: skip


def scores_of(clip: ClipWindow, floor: float | None = None) -> ChunkScores:
    return chunk_scores(measure_window(clip, GRID, floor, CONFIG), 5, CONFIG)


def test_activity_is_the_share_of_cells_that_changed_in_each_chunk():
    # 1 fps, temporal patches of 2 frames: token frame k holds frames 2k, 2k+1 and is chunk k
    assert scores_of(window(moving_frames=(4,))).activity == pytest.approx((0.0, 0.0, 1 / 20, 0.0, 0.0))
    # a change between the two frames of a patch shows in that token frame and the next (half in each)
    assert scores_of(window(moving_frames=(5,))).activity == pytest.approx((0.0, 0.0, 1 / 20, 1 / 20, 0.0))


def test_a_first_clip_has_nothing_to_compare_its_first_frame_with():
    scores = scores_of(window(moving_frames=(0,), lead_in=False))
    assert scores.activity == (0.0,) * 5  # no frame before the clip: not change, not an event


def test_sound_and_speech_are_scored_per_chunk_against_the_room_tone():
    audio = room_tone(10)
    audio[6 * RATE : 7 * RATE] += tone(1.0, 1000, -25)
    scores = scores_of(window(audio=audio))
    assert scores.audio_salience[3] >= CONFIG.audio_active
    assert max(scores.audio_salience[:3] + scores.audio_salience[4:]) < 0.15
    assert len(scores.speech) == 5 and max(scores.speech) < CONFIG.speech_active


def test_a_clip_without_audio_has_zero_salience_and_no_speech_measure():
    scores = scores_of(window())
    assert scores.audio_salience == (0.0,) * 5 and scores.speech == ()


def test_chunk_scores_must_match_the_clip_length():
    record, _ = compressed_record()
    with pytest.raises(ValueError, match="5 chunks"):
        ClipRecord(**{**record.__dict__, "scores": ChunkScores.quiet(4)})
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        ChunkScores((1.5,), (0.0,))
    with pytest.raises(ValueError, match="speech 2"):
        ChunkScores((0.0,), (0.0,), (0.0, 0.0))


def test_record_for_window_stores_the_scores_and_the_floor_after_the_clip():
    _, compression = compressed_record()
    clip = window(moving_frames=(5,), audio=room_tone(10, level_dbfs=-50, hum_dbfs=-70))
    measures = measure_window(clip, GRID, -30.0, CONFIG)
    stored = record_for_window(clip, compression, FINGERPRINT, measures, CONFIG)
    assert stored.scores == chunk_scores(measures, 5, CONFIG) and stored.has_audio
    assert stored.noise_floor_dbfs == pytest.approx(-50, abs=1.5)  # dropped to the quieter room at once
    mute = record_for_window(window(), compression, FINGERPRINT, measure_window(window(), GRID, None, CONFIG))
    assert not mute.has_audio and mute.noise_floor_dbfs is None


def test_the_noise_floor_carried_in_the_store_is_the_same_whichever_handle_scores_a_clip(redis_server):
    """Two encoder replicas are two store handles: scoring a camera's clips alternately through them gives
    the records one handle gives, because each clip's floor comes from the camera's previous stored clip."""
    config = StoreConfig(retention=RetentionPolicy(None, None))
    one = AnchorStore(redis_server.client(), FINGERPRINT, config)
    two = [AnchorStore(redis_server.client(), FINGERPRINT, replace(config, namespace="replicas")) for _ in "ab"]
    levels = (-60, -40, -40, -40, -40, -40)  # a quiet room, then a louder steady one
    sequences = {}
    for name, handles in (("one", [one] * 6), ("alternating", [two[0], two[1]] * 3)):
        records = []
        for i, (handle, level) in enumerate(zip(handles, levels, strict=True)):
            _, compression = compressed_record(start=T0 + timedelta(seconds=10 * i), seed=i)
            clip = window(T0 + timedelta(seconds=10 * i), audio=room_tone(10, level, level - 10, seed=i))
            previous = handle.previous_meta("lobby", clip.start)
            floor = None if previous is None else previous.noise_floor_dbfs
            records.append(record_for_window(clip, compression, FINGERPRINT, measure_window(clip, GRID, floor, CONFIG)))
            handle.put(records[-1])
        sequences[name] = [(r.scores, r.noise_floor_dbfs) for r in records]
    assert sequences["alternating"] == sequences["one"]
    floors = [floor for _, floor in sequences["one"]]
    assert floors[0] == pytest.approx(-60, abs=1.5)  # learned from the camera's first clip
    assert floors[1:] == pytest.approx([floors[0] + k for k in range(1, 6)], abs=0.01)  # then 1 dB per clip
