"""Live sources against real servers on 127.0.0.1: RTSP pull from gst-rtsp-server (killed, restarted,
frozen) and push mode with ffmpeg publishing to us. Clip times are checked against the clock."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from pipeline.clips import SAMPLE_RATE, ClipWindow, Gap
from pipeline.ingest.sample_media import SceneEvent, write_sample_video
from pipeline.ingest.sources import ClipSource, SourceSpec
from tests.fixtures.network import free_port

DEADLINE_S = 40.0
pytestmark = pytest.mark.e2e  # real RTSP servers and publishers, in real time


def live_policy(library, **overrides):
    values = dict(
        connect_timeout_s=2.0,
        read_timeout_s=2.0,
        stall_timeout_s=4.0,
        backoff_initial_s=0.2,
        backoff_max_s=1.0,
        listen_poll_s=1,
    )
    return library.policy(**(values | overrides))


class Recorder:
    """Reads a source, noting when each record arrived; waits only up to a deadline."""

    def __init__(self, source: ClipSource) -> None:
        self.source = source.start()
        self.items: list[tuple[ClipWindow | Gap, datetime]] = []

    def until(self, predicate, deadline_s: float = DEADLINE_S) -> ClipWindow | Gap:
        deadline = time.monotonic() + deadline_s
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"nothing matching within {deadline_s} s; status {self.source.status()}"
            item = self.source.get(timeout=remaining)
            if item is not None:
                self.items.append((item, datetime.now(timezone.utc)))
                if predicate(item):
                    return item

    def clip(self) -> ClipWindow:
        return self.until(lambda i: isinstance(i, ClipWindow))

    def gap(self) -> Gap:
        return self.until(lambda i: isinstance(i, Gap))

    def clips(self) -> list[tuple[ClipWindow, datetime]]:
        return [(i, at) for i, at in self.items if isinstance(i, ClipWindow)]


@pytest.fixture
def live(media_library):
    """Start live sources for a test: `live(url, camera_id, **spec)` returns a Recorder of a started source
    (2-second clips, the short timeouts of `live_policy`); every source is closed when the test ends."""
    sources: list[ClipSource] = []

    def start(url: str, camera_id: str = "door", queue_size: int = 2, **spec) -> Recorder:
        spec = {"clip_seconds": 2} | spec
        source = ClipSource(SourceSpec(camera_id, url, **spec), live_policy(media_library), queue_size=queue_size)
        sources.append(source)
        return Recorder(source)

    yield start
    for source in sources:
        source.close(timeout=10)


def wait_for(condition, what: str, deadline_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def frame_walls(clip: ClipWindow) -> list[datetime]:
    return [clip.start + timedelta(seconds=float(t)) for t in clip.frame_times]


def assert_clips_are_live_and_in_order(recorder: Recorder, not_before: datetime) -> None:
    """Each frame's wall time lies between `not_before` and the moment its clip reached us; ids never repeat."""
    starts = []
    for clip, received in recorder.clips():
        assert clip.start_ms % 2000 == 0 and clip.end - clip.start == timedelta(seconds=2)
        walls = frame_walls(clip)
        assert not_before <= walls[0] and walls[-1] <= received
        assert clip.start <= walls[0] and walls[-1] < clip.end
        starts.append(clip.start_ms)
    assert starts == sorted(set(starts))


def test_rtsp_pull_gives_aligned_live_clips_with_frames_and_audio(live, rtsp_camera):
    camera = rtsp_camera(audio=True)
    began = datetime.now(timezone.utc)
    recorder = live(camera.url)
    source = recorder.source
    recorder.clip()
    full = recorder.clip()  # the first clip is partial: it began before we connected
    assert full.frames.shape == (4, 240, 320, 3)
    assert np.all(np.abs(full.frame_times - np.arange(4) * 0.5) < 0.1)  # on the 2 fps grid, to a frame
    assert full.has_audio and full.waveform.shape == (2 * SAMPLE_RATE,)
    tone = full.waveform[SAMPLE_RATE // 4 : SAMPLE_RATE]
    assert 0.1 < np.sqrt(np.mean(tone**2)) < 0.4  # the camera's 440 Hz tone at volume 0.3
    spectrum = np.abs(np.fft.rfft(tone))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / len(tone) - 440) < 5
    assert_clips_are_live_and_in_order(recorder, began)
    status = source.status()
    assert status.connected and status.state == "connected" and status.clips >= 2 and status.gaps == 0


def test_a_camera_without_audio_gives_silent_clips_flagged_as_such(live, rtsp_camera):
    camera = rtsp_camera(audio=False)
    recorder = live(camera.url, "yard")
    clip = recorder.clip()
    assert not clip.has_audio and not clip.waveform.any() and len(clip.frames) >= 1


def test_rtsp_server_killed_and_restarted_reconnects_with_a_gap_covering_the_outage(live, rtsp_camera):
    camera = rtsp_camera(audio=True)
    began = datetime.now(timezone.utc)
    recorder = live(camera.url)
    source = recorder.source
    recorder.clip()
    recorder.clip()
    killed_at = datetime.now(timezone.utc)
    camera.kill()
    wait_for(lambda: not source.status().connected, "the source to notice the outage")
    noticed_at = datetime.now(timezone.utc)
    restarted_at = datetime.now(timezone.utc)
    camera.start()
    gap = recorder.gap()
    after = [recorder.clip(), recorder.clip()]

    # named after what started the outage (status shows the latest error: by now "connection refused")
    assert gap.camera_id == "door" and gap.reason.startswith("disconnected") and "ended" in gap.reason
    # from the last frame read (data sent before the kill can still be in flight)...
    assert killed_at - timedelta(seconds=1) <= gap.start <= noticed_at
    assert gap.end >= restarted_at  # ...to the first frame after the restart
    for clip, _ in recorder.clips():  # no frame inside the outage; a clip may hold frames from both sides
        assert all(wall <= gap.start or wall >= gap.end for wall in frame_walls(clip))
    assert all(wall >= gap.end for wall in frame_walls(after[-1]))
    assert_clips_are_live_and_in_order(recorder, began)
    status = source.status()
    assert status.reconnects == 1 and status.gaps == 1 and status.connected


STALLS = [
    # (camera with audio, how the stream stalls, how it recovers, what the source reports)
    pytest.param(False, "pause", "resume", "no data for 2 s", id="frozen server: the read timeout"),
    pytest.param(True, "cut_video", "restore_video", "no video frame for 4 s", id="video stops, audio flows: watchdog"),
]


@pytest.mark.parametrize(("audio", "stall", "recover", "reported"), STALLS)
def test_a_stalled_stream_is_detected_recorded_as_a_gap_and_recovered(
    live, rtsp_camera, audio, stall, recover, reported
):
    """A frozen server keeps the TCP connection open and sends nothing; a camera whose video stops while its
    audio flows keeps packets coming, so only the frame-age watchdog can tell."""
    camera = rtsp_camera(audio=audio)
    began = datetime.now(timezone.utc)
    recorder = live(camera.url)
    recorder.clip()
    stalled_at = datetime.now(timezone.utc)
    getattr(camera, stall)()
    wait_for(lambda: reported in (recorder.source.status().last_error or ""), "the stall to be noticed")
    noticed_at = datetime.now(timezone.utc)
    getattr(camera, recover)()
    gap = recorder.gap()
    recorder.clip()
    assert gap.reason.startswith("stalled")
    assert stalled_at - timedelta(seconds=1) <= gap.start <= noticed_at and gap.end >= noticed_at
    assert_clips_are_live_and_in_order(recorder, began)


def test_push_mode_receives_a_publishing_camera_and_survives_it_reconnecting(live, media_library, rtsp_publisher):
    url = f"rtsp://127.0.0.1:{free_port()}/live/door"
    began = datetime.now(timezone.utc)
    recorder = live(url, push=True)
    source = recorder.source
    wait_for(lambda: source.status().state == "waiting", "the listener")
    publisher = rtsp_publisher(media_library.sample.path, url)
    recorder.clip()
    clip = recorder.clip()
    sample = media_library.sample
    assert clip.frames.shape[1:] == (sample.height, sample.width, 3) and clip.has_audio
    assert_clips_are_live_and_in_order(recorder, began)
    launches = publisher.launches
    dropped_at = datetime.now(timezone.utc)
    publisher.kill()  # the camera drops the connection; its supervisor publishes again
    gap = recorder.gap()
    recorder.clip()
    assert publisher.launches > launches
    assert gap.reason.startswith("disconnected")
    assert dropped_at - timedelta(seconds=1) <= gap.start <= gap.end
    assert source.status().reconnects >= 1


def test_stop_ends_a_push_source_still_waiting_for_its_camera(media_library):
    url = f"rtsp://127.0.0.1:{free_port()}/live/idle"
    source = ClipSource(SourceSpec("idle", url, push=True, clip_seconds=2), live_policy(media_library)).start()
    wait_for(lambda: source.status().state == "waiting", "the listener")
    source.stop()
    assert list(source) == []
    assert source.close(timeout=10)  # the worker leaves within one listen poll


def test_a_slow_consumer_makes_a_live_source_drop_clips_and_say_so(live, rtsp_camera):
    camera = rtsp_camera(audio=False)
    recorder = live(camera.url, queue_size=1)  # started, but nobody reads at first
    wait_for(lambda: recorder.source.status().dropped_clips >= 1, "a dropped clip")
    gap = recorder.until(lambda i: isinstance(i, Gap))
    assert gap.reason.startswith("dropped")
    assert gap.end - gap.start >= timedelta(seconds=2)
    recorder.clip()


def test_a_pushed_cameras_sound_and_picture_of_one_event_land_at_the_same_wall_time(live, rtsp_publisher, tmp_path):
    """A light and a beep that start together in the camera's stream start together in our clips, although
    the sender delivers audio packets later than the video of the same instant (0.2-0.4 s, measured)."""
    flash = (SceneEvent("object", "light", 1.0, 2.0, (255, 255, 255), ((0.5, 0.5), (0.5, 0.5)), (0.5, 0.5)),
             SceneEvent("sound", "beep", 1.0, 2.0, frequency=1000.0, level=0.5))  # fmt: skip
    media = write_sample_video(tmp_path / "flash.mp4", width=160, height=96, fps=10, duration=3.0, events=flash)
    url = f"rtsp://127.0.0.1:{free_port()}/live/flash"
    recorder = live(url, "flash", push=True, fps=8)
    wait_for(lambda: recorder.source.status().state == "waiting", "the listener")
    rtsp_publisher(media.path, url)
    clips = [recorder.clip() for _ in range(5)]  # 10 s: three loops of the 3-second file
    frame_walls = np.concatenate([c.start.timestamp() + c.frame_times for c in clips])
    lit = np.concatenate([c.frames[:, 40:56, 70:90].mean(axis=(1, 2, 3)) > 200 for c in clips])
    light_on = frame_walls[1:][lit[1:] & ~lit[:-1]]
    waveform = np.concatenate([c.waveform for c in clips])
    loud = np.abs(waveform) > 0.2
    quiet_before = ~np.convolve(loud, np.ones(800), "full")[: len(loud) - 1].astype(bool)  # 50 ms of quiet
    sample_walls = clips[0].start.timestamp() + np.arange(len(waveform)) / SAMPLE_RATE
    beep_on = sample_walls[1:][loud[1:] & quiet_before]
    assert len(light_on) >= 2 and len(beep_on) >= 2, (light_on, beep_on)
    offsets = np.array([beep_on[np.argmin(np.abs(beep_on - t))] - t for t in light_on])
    # kept frames are 1/8 s apart (of a 10 fps source): a light is seen up to ~0.18 s after it starts
    assert np.all(np.abs(offsets) < 0.25), f"sound minus picture per event: {np.round(offsets, 3)} s"
