"""A generated CCTV sample, ingested as a file, comes back with its events at the right wall-clock times."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from pipeline.clips import SAMPLE_RATE, ClipWindow, Gap
from pipeline.ingest.sample_media import SceneEvent, write_sample_video
from pipeline.ingest.sources import ClipSource, SourceSpec
from tests.fixtures.media_files import SAMPLE_CREATED


def ingest(library, path, **spec) -> list[ClipWindow | Gap]:
    source = ClipSource(SourceSpec("lobby", str(path), **spec), library.policy())
    return list(source)


def object_visible(frame: np.ndarray, event: SceneEvent, t: float) -> bool:
    """Whether the middle of the event's box at time t has the event's colour."""
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = event.box_at(t, width, height)
    mx, my = (x1 - x0) // 4, (y1 - y0) // 4
    patch = frame[y0 + my : y1 - my, x0 + mx : x1 - mx].reshape(-1, 3).astype(np.float32)
    return bool(np.abs(patch.mean(axis=0) - np.asarray(event.color)).max() < 40)


def test_sample_file_is_h264_aac_mp4_with_its_schedule(media_library):
    import av

    sample = media_library.sample
    with av.open(str(sample.path)) as container:
        assert container.format.name.startswith("mov")
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "aac"
        assert container.metadata["creation_time"].startswith("2024-05-01T14:03:00")
    assert {e.label for e in sample.objects()} == {"red person", "blue car"}
    assert {e.label for e in sample.sounds()} == {"alarm", "bang"}


def test_every_frame_shows_the_scheduled_objects_at_its_decoded_time(media_library):
    sample = media_library.sample
    clips = ingest(media_library, sample.path, clip_seconds=4, fps=sample.fps)  # keep every source frame
    assert all(isinstance(c, ClipWindow) for c in clips)
    seen = {e.label: [] for e in sample.objects()}
    n_frames = 0
    for clip in clips:
        for frame, offset in zip(clip.frames, clip.frame_times, strict=True):
            t = (clip.start - SAMPLE_CREATED).total_seconds() + offset  # seconds from the file's first frame
            index = round(t * sample.fps)
            assert abs(t - index / sample.fps) < 0.5 / sample.fps, f"frame time {t} is between source frames"
            for event in sample.objects():
                visible = object_visible(frame, event, index / sample.fps)
                assert visible == event.active_at(index / sample.fps), (event.label, t)
                if visible:
                    seen[event.label].append(t)
            n_frames += 1
    assert n_frames == round(sample.duration * sample.fps)
    for event in sample.objects():
        assert abs(min(seen[event.label]) - event.start) < 1 / sample.fps
        assert abs(max(seen[event.label]) - (event.end - 1 / sample.fps)) < 1 / sample.fps


def test_two_fps_sampling_lands_on_the_clip_grid_within_half_a_source_frame(media_library):
    sample = media_library.sample
    source = ClipSource(SourceSpec("lobby", str(sample.path)), media_library.policy())  # 10 s clips, 2 fps
    first_item = source.get(timeout=30)
    # a file job can report how far it is: clip one is out once a frame past 10 s of 12 s was decoded
    assert 10 / 12 <= source.status().progress <= 1.0
    clips = [first_item, *source]
    status = source.status()
    assert status.progress == 1.0 and status.state == "finished" and status.clips == 2
    assert [c.start for c in clips] == [SAMPLE_CREATED, SAMPLE_CREATED + timedelta(seconds=10)]
    first = clips[0]
    assert first.frames.shape == (20, sample.height, sample.width, 3) and first.frames.dtype == np.uint8
    assert np.allclose(first.frame_times, np.arange(20) * 0.5, atol=0.5 / sample.fps)
    assert np.allclose(first.source_pts, first.frame_times, atol=1e-6)  # file starts at pts 0
    assert len(clips[1].frame_times) == 4  # 10..12 s: the file ends mid-clip
    for clip in clips:
        assert clip.end - clip.start == timedelta(seconds=10)
        assert clip.start_ms % 10_000 == 0
        assert clip.clip_id == f"lobby@{clip.start_ms}"
        assert clip.fps == 2.0 and clip.sample_rate == SAMPLE_RATE and clip.has_audio
        assert clip.waveform.shape == (10 * SAMPLE_RATE,) and clip.waveform.dtype == np.float32


def test_audio_onsets_and_ends_match_the_schedule(media_library):
    sample = media_library.sample
    clips = ingest(media_library, sample.path, clip_seconds=4)
    assert [c.start_ms for c in clips] == [round(SAMPLE_CREATED.timestamp() * 1000) + 4000 * i for i in range(3)]
    waveform = np.concatenate([c.waveform for c in clips])  # clips are contiguous from the first frame
    hop = SAMPLE_RATE // 200  # 5 ms
    rms = np.sqrt(np.mean(waveform[: len(waveform) // hop * hop].reshape(-1, hop) ** 2, axis=1))
    loud = rms > 0.1
    t = np.arange(len(rms)) / 200
    near_event = np.zeros(len(rms), bool)
    for event in sample.sounds():
        near_event |= (t > event.start - 0.05) & (t < event.end + 0.05)  # AAC smears edges a little
    assert rms[~near_event].max() < 0.02  # quiet between events: nothing spurious, nothing shifted
    for event in sample.sounds():
        lo, hi = int((event.start - 0.5) * 200), int((event.end + 0.5) * 200)
        on = np.flatnonzero(loud[lo:hi])
        onset, offset = (lo + on[0]) / 200, (lo + on[-1] + 1) / 200
        assert abs(onset - event.start) < 0.03, (event.label, onset)
        assert abs(offset - event.end) < 0.03, (event.label, offset)


def test_an_explicit_start_time_wins_over_the_creation_time(media_library):
    start = datetime(2025, 1, 2, 3, 4, 5, 250_000, tzinfo=timezone(timedelta(hours=1)))
    clips = ingest(media_library, media_library.sample.path, start_time=start)
    first = clips[0]
    assert first.start == datetime(2025, 1, 2, 2, 4, 0, tzinfo=timezone.utc)  # aligned down, in UTC
    assert first.start.tzinfo == timezone.utc
    # the file starts mid-clip, at 5.25 s; its first kept frame is the one nearest the 5.5 s tick
    assert first.frame_times[0] == pytest.approx(5.45, abs=1e-6)
    assert first.source_pts[0] == pytest.approx(0.2, abs=1e-6)
    origin = first.start + timedelta(seconds=first.frame_times[0] - first.source_pts[0])  # wall time of pts 0
    assert abs(origin - start) < timedelta(microseconds=10)
    assert not first.waveform[: int(5.25 * SAMPLE_RATE) - 80].any()  # silence before the file starts
    assert first.waveform[int(5.25 * SAMPLE_RATE) + 80 :].any()


def test_without_start_time_or_creation_time_the_clock_starts_at_ingest(media_library):
    before = datetime.now(timezone.utc)
    clips = ingest(media_library, media_library.no_audio.path, clip_seconds=2)
    after = datetime.now(timezone.utc)
    first = clips[0]
    first_frame = first.start + timedelta(seconds=first.frame_times[0])
    origin = first_frame - timedelta(seconds=first.source_pts[0])  # wall time of the file's first frame
    slack = timedelta(milliseconds=2)  # clip starts are whole milliseconds; frame times are floats
    assert before - slack <= origin <= after + slack
    offsets = np.concatenate([(c.start - first_frame).total_seconds() + c.frame_times for c in clips])
    assert np.allclose(offsets * 10, np.round(offsets * 10), atol=1e-3)  # every kept frame is a 10 fps frame
    assert offsets[-1] <= 4.0 - 0.1 + 1e-6  # and none past the file's last frame
    # the clock starts at an arbitrary phase of the wall-clock 2 fps ticks: each kept frame is the one
    # nearest its tick, at most half a frame early, and the first may be up to 0.25 s late (a frame
    # that came after its tick is still better than none); from then on the spacing is 2 fps
    walls = np.concatenate([c.start.timestamp() + c.frame_times for c in clips])
    lateness = walls - np.floor((walls + 0.05 + 1e-6) * 2) / 2
    assert np.all(lateness >= -0.05 - 1e-6) and np.all(lateness < 0.25)
    assert np.all(np.diff(offsets[1:]) > 0.35) and np.all(np.diff(offsets[1:]) < 0.65)


def test_max_pixels_downscales_kept_frames_keeping_the_aspect(media_library):
    clips = ingest(media_library, media_library.sample.path, max_pixels=160 * 90)
    assert clips[0].frames.shape[1:] == (90, 160, 3)


def test_a_raw_h264_stream_without_timestamps_gets_evenly_spaced_times(media_library):
    raw = media_library.raw_h264
    clips = ingest(media_library, raw.path, clip_seconds=2, fps=raw.fps, start_time=SAMPLE_CREATED)
    assert all(np.isnan(c.source_pts).all() for c in clips)  # the source gave no timestamps
    times = np.concatenate([(c.start - SAMPLE_CREATED).total_seconds() + c.frame_times for c in clips])
    assert len(times) == round(raw.duration * raw.fps)
    assert np.allclose(np.diff(times), 1 / raw.fps, atol=1e-6)
    red = raw.objects()[0]
    first_red = next(
        (c.start - SAMPLE_CREATED).total_seconds() + t
        for c in clips
        for f, t in zip(c.frames, c.frame_times, strict=True)
        if object_visible(f, red, red.start)
    )
    assert abs(first_red - red.start) < 1 / raw.fps


def test_a_file_without_audio_gives_silence_and_says_so(media_library):
    clips = ingest(media_library, media_library.no_audio.path, clip_seconds=2, start_time=SAMPLE_CREATED)
    assert clips and all(not c.has_audio for c in clips)
    assert all(c.waveform.shape == (2 * SAMPLE_RATE,) and not c.waveform.any() for c in clips)
    assert sum(len(c.frames) for c in clips) == 8


def test_sample_writer_rejects_odd_sizes_and_empty_media(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_sample_video(tmp_path / "x.mp4", width=641)
    with pytest.raises(ValueError, match="video, audio or both"):
        write_sample_video(tmp_path / "x.mp4", video=False, audio=False)


def test_a_creation_time_in_the_future_is_ignored_like_an_unknown_one(tmp_path, media_library):
    """A camera whose clock is years ahead writes a future creation_time: the clock starts at ingest instead."""
    future = write_sample_video(
        media_library.root / f"future-{tmp_path.name}.mp4",
        duration=2.0,
        width=160,
        height=120,
        creation_time=datetime(2035, 6, 1, 12, 0, tzinfo=timezone.utc),
    )
    try:
        before = datetime.now(timezone.utc)
        clips = ingest(media_library, future.path, clip_seconds=2)
        # the first clip is the grid window holding the first sampled frame: the one around ingest's start,
        # or the next when the first frame comes too late in it for any sampling tick (1 run in 8 here)
        assert before - timedelta(seconds=2) <= clips[0].start <= datetime.now(timezone.utc) + timedelta(seconds=2)
    finally:
        future.path.unlink()
