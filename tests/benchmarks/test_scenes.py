"""The quality benchmark's scenes: the truth they state is what their encoded files hold.

One short scene is written once (real H.264 + AAC) and decoded back with PyAV: the object's region changes
at its stated times and nowhere else, the flash changes the whole frame, the truth's changed cells sit in
the object's region, sounds are loud where the truth puts them and room tone elsewhere, and silero-vad
hears the espeak-ng speech in its span only.
"""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from silero_vad import get_speech_timestamps, load_silero_vad

from benchmarks.scenes import Event, SceneSpec, benchmark_scenes, object_event, speech, write_scene

OBJECT = object_event("box enters", 3.0, 6.0, ((0.2, 0.5), (0.4, 0.5)), (0.12, 0.3), (220, 40, 40))
FLASH = Event("flash", "flash", 8.2, 8.8)
TONE = Event("tone", "beep off screen", 1.0, 2.0, False, frequency=1000, level_dbfs=-18)
SPEECH = speech("Hello there.", 9.5, False)
SPEC = SceneSpec("truth-check", 12.0, (OBJECT, FLASH, TONE, SPEECH), fps=10.0, crf=26, keyframe_s=4.0, seed=3)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return write_scene(SPEC, tmp_path_factory.mktemp("scene"))


@pytest.fixture(scope="module")
def decoded(scene):
    """(times, frames float32) of every other video frame, and 16 kHz mono audio."""
    times, frames, audio = [], [], []
    resampler = av.AudioResampler(format="flt", layout="mono", rate=16_000)
    with av.open(str(scene.path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % 2 == 0:  # 5 frames a second are plenty, and keep the test fast
                times.append(float(frame.time))
                frames.append(frame.to_ndarray(format="rgb24"))
    with av.open(str(scene.path)) as container:
        for frame in container.decode(audio=0):
            audio.extend(out.to_ndarray()[0] for out in resampler.resample(frame))
        audio.extend(out.to_ndarray()[0] for out in resampler.resample(None))
    return np.asarray(times), np.stack(frames).astype(np.float32), np.concatenate(audio)


def test_the_file_is_h264_and_aac_at_the_stated_rate_and_keyframes(scene):
    with av.open(str(scene.path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.name, audio.codec_context.name) == ("h264", "aac")
        assert (video.width, video.height, float(video.average_rate)) == (448, 252, 10.0)
        keyframes = [float(p.pts * p.time_base) for p in container.demux(video) if p.size and p.is_keyframe]
    assert keyframes == [0.0, 4.0, 8.0]


def test_the_object_region_changes_at_its_times_and_nowhere_else(decoded):
    times, frames, _ = decoded
    x0, y0, x1, y1 = OBJECT.region
    inside = np.zeros(frames.shape[1:3], bool)
    inside[y0:y1, x0:x1] = True
    reference = frames[times < 0.5].mean(axis=0)  # the empty view (noise averaged out)
    diff = np.abs(frames - reference).mean(axis=-1)  # (N, H, W)
    in_region, outside = diff[:, inside].mean(axis=1), diff[:, ~inside].mean(axis=1)
    during = (times >= OBJECT.start + 0.2) & (times < OBJECT.end - 0.2)
    away = (times < OBJECT.start - 0.1) | (times >= OBJECT.end + 0.1)
    quiet = away & ((times < FLASH.start) | (times >= FLASH.end))
    assert in_region[during].min() > 15  # the object covers a good share of its region all along
    assert in_region[quiet].max() < 6 and outside[quiet | during].max() < 6  # only noise and compression
    flashed = (times >= FLASH.start) & (times < FLASH.end)
    assert outside[flashed].min() > 60 and in_region[flashed].min() > 60


def test_the_truth_changes_only_in_the_object_region_and_on_the_flash(scene):
    truth = scene.truth
    assert (truth.rows, truth.cols, truth.token_fps) == (9, 16, 1.0) and len(truth.changed) == 12
    counts = truth.changed.sum(axis=(1, 2))
    object_frames = {3, 4, 5, 6}  # token-frame f holds the frames at f and f + 0.5 s: in at 3.0, gone at 6.0
    flash_frame = int(FLASH.start)  # sampled frames 8.0 and 8.5: 8.5 is lit
    assert counts[flash_frame] == 9 * 16 and counts[flash_frame + 1] == 9 * 16  # lights on, lights off
    assert {int(f) for f in np.flatnonzero(counts)} == object_frames | {flash_frame, flash_frame + 1}
    cells = truth.to_json()["changed_cells"]
    assert len(cells) == truth.changed.sum() and all(truth.changed[f, r, c] for f, r, c in cells)
    x0, y0, x1, y1 = OBJECT.region
    rows, cols = np.nonzero(truth.changed[sorted(object_frames)].any(axis=0))
    assert rows.min() >= y0 // 28 and rows.max() <= (y1 - 1) // 28
    assert cols.min() >= x0 // 28 and cols.max() <= (x1 - 1) // 28


def levels(audio: np.ndarray, start: float, end: float) -> np.ndarray:
    """RMS dBFS of 50 ms frames in [start, end) seconds."""
    part = audio[round(start * 16_000) : round(end * 16_000)]
    frames = part[: len(part) // 800 * 800].reshape(-1, 800)
    return 20 * np.log10(np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)) + 1e-9)


def test_sounds_are_where_the_truth_says_over_room_tone_with_hum(decoded):
    audio = decoded[2]
    assert len(audio) == pytest.approx(12 * 16_000, abs=1600)
    room = levels(audio, 2.3, 9.3)  # no sound event in between
    assert -44 < np.median(room) < -37 and room.max() < -34  # room tone and mains hum near -40 dBFS
    assert levels(audio, TONE.start + 0.05, TONE.end - 0.05).min() > -21
    spectrum = np.abs(np.fft.rfft(audio[3 * 16_000 : 8 * 16_000]))
    hz = np.fft.rfftfreq(5 * 16_000, 1 / 16_000)
    assert hz[spectrum.argmax()] == pytest.approx(50, abs=1)  # the hum is the room's strongest line
    assert levels(audio, SPEECH.start, SPEECH.end).max() > -20


def test_silero_vad_hears_the_espeak_speech_in_its_span_only(decoded):
    audio = decoded[2]
    found = get_speech_timestamps(torch.from_numpy(audio.copy()), load_silero_vad(), return_seconds=True)
    assert found, "no speech detected"
    assert all(SPEECH.start - 0.3 <= f["start"] and f["end"] <= SPEECH.end + 0.3 for f in found)
    assert sum(f["end"] - f["start"] for f in found) > 0.6 * (SPEECH.end - SPEECH.start)


def test_the_benchmark_scenes_state_consistent_events():
    for quick in (True, False):
        specs = benchmark_scenes(quick)
        assert {(e.kind, e.on_screen) for spec in specs for e in spec.events if e.is_sound} == {
            (kind, flag) for kind in ("tone", "noise", "speech") for flag in (True, False)
        } - {("tone", True)}
        for spec in specs:
            assert any(e.is_sound for e in spec.events)
            assert all(0 <= e.start < e.end <= spec.duration for e in spec.events)
            for e in spec.events:
                if e.is_sound and e.on_screen:  # a visible event coincides with it
                    assert any(not v.is_sound and v.start <= e.start < v.end + 0.5 for v in spec.events), e
    static = benchmark_scenes(False)[-1]
    assert static.duration == 1200 and static.crf == 30 and static.keyframe_s == 10
