"""The pieces that put media on the wall clock, each on its own: timestamp repair, the live clock, frame
sampling and audio placement in clip windows, reconnect backoff, redaction and spec validation."""

from __future__ import annotations

import random
from datetime import datetime

import av
import numpy as np
import pytest

from pipeline.clips import SAMPLE_RATE
from pipeline.ingest.sources import Backoff, SourceSpec
from pipeline.ingest.timestamps import REPEAT_STEP_S, FollowingClock, LiveClock, TimestampRepair
from pipeline.ingest.windowing import ClipAssembler, output_size
from pipeline.redaction import redact_text

T0 = 1_714_572_180.0  # 2024-05-01T14:03:00Z, a multiple of 10 s


def at(seconds: float):
    """Wall time T0 + seconds, to the microsecond (pytest.approx's relative default is minutes at epoch scale)."""
    return pytest.approx(T0 + seconds, abs=1e-6)


def frame(value: int = 0, width: int = 32, height: int = 16) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(np.full((height, width, 3), value, np.uint8), format="rgb24")


# -- timestamp repair -----------------------------------------------------------------------------


def test_missing_timestamps_continue_one_step_after_the_previous():
    repair = TimestampRepair(step_s=0.1)
    assert [repair(t) for t in (0.0, None, None, 0.3)] == pytest.approx([0.0, 0.1, 0.2, 0.3])


def test_repeated_and_slightly_earlier_timestamps_stay_strictly_increasing():
    repair = TimestampRepair(step_s=0.1)
    out = [repair(t) for t in (1.0, 1.0, 1.0, 0.95, 1.1)]
    assert out == pytest.approx([1.0, 1.0 + REPEAT_STEP_S, 1.0 + 2 * REPEAT_STEP_S, 1.0 + 3 * REPEAT_STEP_S, 1.1])
    assert repair.repaired == 3


def test_a_timestamp_reset_continues_the_timeline_instead_of_jumping_back():
    repair = TimestampRepair(step_s=0.1)
    out = [repair(t) for t in (50.0, 50.1, 0.0, 0.1, 0.2)]
    assert out == pytest.approx([50.0, 50.1, 50.2, 50.3, 50.4])


# -- live clock -----------------------------------------------------------------------------------


def test_the_live_clock_starts_at_the_receive_time_of_the_first_frame():
    clock = LiveClock()
    assert clock.wall(7.0, received_at=T0 + 0.5) == T0 + 0.5
    assert clock.wall(7.1, received_at=T0 + 0.63) == at(0.6)  # jitter: stream time wins


def test_a_frame_received_before_its_computed_time_pulls_the_clock_earlier():
    clock = LiveClock()
    clock.wall(0.0, received_at=T0 + 1.0)  # held back by probing: arrived late
    assert clock.wall(1.0, received_at=T0 + 1.4) == at(1.4)  # cannot be captured after arrival
    assert clock.wall(2.0, received_at=T0 + 2.5) == at(2.4)


def test_audio_follows_the_video_clock_while_their_timestamps_agree():
    video = LiveClock()
    audio = FollowingClock(video, max_skew_s=1.0)
    assert audio.wall(0.0, T0 + 0.2) == T0 + 0.2  # no video yet: its own arrival clock
    video.wall(0.0, T0 + 0.1)
    video.wall(1.0, T0 + 1.1)
    assert audio.wall(0.6, T0 + 1.5) == at(0.7)  # delivered 0.8 s late, placed by the video
    assert audio.wall(2.5, T0 + 1.6) == at(2.6)  # 1.5 s off: still following (hysteresis)
    assert audio.wall(3.5, T0 + 1.7) == at(1.7)  # 2.5 s off the video's time: own clock
    assert audio.wall(2.5, T0 + 1.8) == at(0.7)  # 1.5 s off: not close enough to follow again


def test_the_live_clock_re_anchors_when_stream_time_falls_far_behind():
    clock = LiveClock(resync_s=2.0)
    clock.wall(100.0, received_at=T0)
    assert clock.wall(100.1, received_at=T0 + 1.9) == at(0.1)  # within tolerance: kept
    assert clock.wall(0.0, received_at=T0 + 5.0) == at(5.0)  # reset stream time
    assert clock.resyncs == 1


# -- clip windows ---------------------------------------------------------------------------------


def test_kept_frames_are_the_nearest_to_each_tick_of_the_wall_clock_grid():
    assembler = ClipAssembler("cam", 2, 2.0, has_audio=False, frame_step_s=0.1)
    kept = [t for t in np.arange(0.03, 4.5, 0.1) if assembler.add_video(T0 + t, frame())]
    assert np.round(kept, 2).tolist() == [0.03, 0.53, 1.03, 1.53, 2.03, 2.53, 3.03, 3.53, 4.03]
    clips = assembler.ready()
    assert [c.start.timestamp() for c in clips] == [T0, T0 + 2]
    assert np.allclose(clips[0].frame_times, [0.03, 0.53, 1.03, 1.53])
    assert clips[0].frames.shape == (4, 16, 32, 3)


def test_a_source_starting_between_ticks_leaves_the_missed_tick_empty():
    assembler = ClipAssembler("cam", 2, 2.0, has_audio=False, frame_step_s=0.1)
    kept = [round(t, 2) for t in np.arange(0.3, 2.05, 0.1) if assembler.add_video(T0 + t, frame())]
    assert kept == [0.5, 1.0, 1.5, 2.0]  # 0.3 is too far after tick 0 to stand for it


def test_audio_is_placed_by_sample_and_split_across_clip_boundaries():
    assembler = ClipAssembler("cam", 2, 2.0, has_audio=True)
    tone = np.linspace(-1, 1, SAMPLE_RATE, dtype=np.float32)  # 1 s
    assembler.add_video(T0 + 0.0, frame())
    assembler.add_audio(T0 + 1.5, tone)  # 1.5 .. 2.5 s
    assembler.add_video(T0 + 2.6, frame())
    [first] = assembler.ready()
    assert not first.waveform[: 3 * SAMPLE_RATE // 2].any()
    assert np.array_equal(first.waveform[3 * SAMPLE_RATE // 2 :], tone[: SAMPLE_RATE // 2])
    [second] = assembler.finish()
    assert np.array_equal(second.waveform[: SAMPLE_RATE // 2], tone[SAMPLE_RATE // 2 :])


def test_audio_chunks_that_nearly_touch_are_joined_without_a_click():
    assembler = ClipAssembler("cam", 2, 2.0, has_audio=True)
    assembler.add_video(T0, frame())
    ones = np.ones(1600, np.float32)
    assembler.add_audio(T0 + 0.1, ones)  # 0.1 .. 0.2 s
    assembler.add_audio(T0 + 0.203, ones)  # 3 ms late by its timestamp: still continuous
    [clip] = assembler.finish()
    assert clip.waveform[1600:4800].all()


def test_live_audio_held_back_by_probing_lines_up_with_video_once_packets_flow():
    """The first 0.5 s of a live stream arrive in one burst after probing, then packets arrive as sent.
    Each stream's clock moves earlier when live packets show the burst was late; audio placed late
    must move back with it, or it lags the video by the burst for the whole session."""
    assembler = ClipAssembler("cam", 2, 2.0, has_audio=True, frame_step_s=0.1, live=True)
    video_clock, audio_clock = LiveClock(), LiveClock()
    burst_s, latency_s, click_at = 0.5, 0.01, 1.5
    clips = []
    for step in range(40):  # 4 s of stream, a video frame and 0.1 s of audio per step
        t = step / 10
        received = T0 + max(burst_s, t + latency_s)
        samples = np.zeros(SAMPLE_RATE // 10, np.float32)
        if round(t, 1) == click_at:
            samples[0] = 1.0  # a click at stream time 1.5 s, with the frame of 1.5 s
        assembler.add_audio(audio_clock.wall(t, received), samples)
        assembler.add_video(video_clock.wall(t, received), frame())
        clips += assembler.ready()
    clips += assembler.finish()
    video_at_click = video_clock.wall(click_at, T0 + click_at + latency_s)
    [click_wall] = [c.start.timestamp() + i / SAMPLE_RATE for c in clips for i in np.flatnonzero(c.waveform)]
    assert abs(click_wall - video_at_click) < 0.02, f"audio is {click_wall - video_at_click:+.3f} s off the video"


def test_file_audio_whose_timestamps_restart_continues_instead_of_landing_in_closed_clips():
    assembler = ClipAssembler("cam", 2, 2.0, has_audio=True, frame_step_s=0.1)  # a file (not live)
    second = np.ones(SAMPLE_RATE, np.float32)
    clips = []
    for k in range(6):  # two 3-second segments joined, the second one's timestamps starting again at 0
        t = k % 3
        assembler.add_video(T0 + k, frame())
        assembler.add_audio(T0 + t, second)
        clips += assembler.ready()
    clips += assembler.finish()
    assert assembler.late_samples == 0
    assert all(c.waveform.any() for c in clips)


def test_a_clip_waits_for_its_audio_unless_the_audio_is_over_a_second_late():
    assembler = ClipAssembler("cam", 2, 2.0, has_audio=True, audio_grace_s=1.0)
    assembler.add_video(T0 + 0.0, frame())
    assembler.add_audio(T0, np.zeros(SAMPLE_RATE, np.float32))  # audio up to 1 s
    assembler.add_video(T0 + 2.5, frame())
    assert assembler.ready() == []  # video is past the end, audio is not
    assembler.add_video(T0 + 3.1, frame())
    assert len(assembler.ready()) == 1
    assembler.add_audio(T0 + 1.0, np.ones(SAMPLE_RATE, np.float32))  # for the clip already handed out
    assert assembler.late_samples == SAMPLE_RATE


def test_flush_before_closes_clips_an_outage_has_cut_short():
    assembler = ClipAssembler("cam", 2, 2.0, has_audio=True)
    assembler.add_video(T0 + 0.5, frame())
    assert assembler.ready() == []
    [clip] = assembler.flush_before(T0 + 7.0)
    assert clip.start.timestamp() == T0 and len(clip.frames) == 1


def test_frames_are_downscaled_to_max_pixels_keeping_even_sides():
    assert output_size(1920, 1080, None) == (1920, 1080)
    assert output_size(1920, 1080, 320 * 28 * 28) == (666, 374)
    assembler = ClipAssembler("cam", 2, 2.0, has_audio=False, max_pixels=16 * 8)
    assembler.add_video(T0, frame(width=64, height=32))
    assert assembler.finish()[0].frames.shape == (1, 8, 16, 3)


# -- backoff, redaction, specs --------------------------------------------------------------------


def test_backoff_doubles_up_to_its_bound_with_jitter_below_the_base():
    backoff = Backoff(0.5, 4.0, jitter=0.5, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(6)]
    for delay, base in zip(delays, [0.5, 1, 2, 4, 4, 4], strict=True):
        assert base * 0.5 <= delay <= base
    backoff.reset()
    assert backoff.next_delay() <= 0.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rtsp://admin:pa@ss/w0rd@10.0.0.5:554/live", "rtsp://***@10.0.0.5:554/live"),
        ("failed: rtsp://u:p@cam/a and http://x:y@h/b", "failed: rtsp://***@cam/a and http://***@h/b"),
        ("https://h/x.m3u8?token=abc&x=1&password=p", "https://h/x.m3u8?token=***&x=1&password=***"),
        ("rtsp://cam.local/live", "rtsp://cam.local/live"),
    ],
)
def test_credentials_are_redacted_wherever_they_appear_in_text(text, expected):
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"clip_seconds": 3},
        {"clip_seconds": 0},
        {"fps": 0},
        {"camera_id": "a@b"},
        {"camera_id": ""},
        {"start_time": datetime(2024, 5, 1, 14, 3)},  # no timezone
    ],
)
def test_source_specs_refuse_values_that_would_break_clip_ids_or_times(kwargs):
    values = {"camera_id": "cam", "url": "rtsp://cam/live"} | kwargs
    with pytest.raises(ValueError):
        SourceSpec(**values)
