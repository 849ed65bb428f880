"""Cuts wall-clock-timed video frames and audio into ClipWindows aligned on the wall-clock grid.

Frames are sampled here, before any pixel conversion, so only the kept frames (2 per second by
default) pay for RGB conversion and scaling.
"""

from __future__ import annotations

import math
import mmap
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np

from pipeline.clips import SAMPLE_RATE, ClipWindow

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MAP_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux only
AUDIO_SNAP_S = 0.05  # audio within this of where the previous chunk ended is taken as continuous


def wall_datetime(ms: int) -> datetime:
    """Epoch milliseconds -> tz-aware UTC datetime, exactly (no float rounding)."""
    return EPOCH + timedelta(milliseconds=ms)


def output_size(width: int, height: int, max_pixels: int | None) -> tuple[int, int]:
    """Frame size after downscaling to at most `max_pixels` (aspect kept, even sides), or the source size."""
    if not max_pixels or width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


@dataclass
class _Window:
    start_ms: int
    frames: np.ndarray | None = None  # (ticks, H, W, 3) uint8, sized by the first frame; filled in order
    count: int = 0  # frames written so far
    times: list[float] = field(default_factory=list)
    pts: list[float] = field(default_factory=list)
    next_tick: int = 0
    waveform: np.ndarray | None = None  # (clip_seconds * SAMPLE_RATE,) float32, made on first audio


class ClipAssembler:
    """Collects one source's frames and audio into clips of `clip_seconds` starting on multiples of it since
    the epoch; a clip is handed out once video (and audio, or a grace period) has passed its end.

    Sampling: tick k of a clip is at start + k / fps; the first frame from half a source frame before the
    tick is kept for it, unless it comes later than half a tick period (or one source frame, if longer):
    then the tick has no frame. On a regular stream a kept frame is the one nearest its tick.
    """

    def __init__(
        self,
        camera_id: str,
        clip_seconds: int,
        fps: float,
        *,
        has_audio: bool,
        frame_step_s: float = 0.04,
        max_pixels: int | None = None,
        audio_grace_s: float = 1.0,
        live: bool = False,
    ) -> None:
        self.camera_id = camera_id
        self.clip_seconds = clip_seconds
        self.clip_ms = clip_seconds * 1000
        self.clip_samples = clip_seconds * SAMPLE_RATE
        self.fps = fps
        self.ticks = max(1, math.ceil(clip_seconds * fps - 1e-9))
        self.has_audio = has_audio
        self.frame_step_s = frame_step_s
        self.max_pixels = max_pixels
        self.audio_grace_s = audio_grace_s
        self.live = live  # live audio may be re-placed earlier when its clock moves; file audio only continues
        self._open: dict[int, _Window] = {}  # by start_ms
        self._closed_until_ms = -math.inf  # end of the last clip handed out; older media is late and dropped
        self._tail: tuple[int, np.ndarray] | None = None  # (end_ms, last frame) of the last clip handed out
        self._last_video: float | None = None
        self.video_until = -math.inf  # wall time (epoch s) of the newest frame
        self.audio_until = -math.inf  # wall time just after the newest audio sample
        self._audio_cursor: int | None = None  # epoch sample index where the next audio chunk continues
        self.late_frames = 0
        self.late_samples = 0

    # -- input ------------------------------------------------------------------------------------

    def add_video(self, wall: float, frame, pts: float | None = None) -> bool:
        """Offer one decoded frame (anything with PyAV's `to_ndarray`) at wall time `wall`; True if kept."""
        if self._last_video is not None and 0 < wall - self._last_video < 1.0:
            self.frame_step_s = 0.9 * self.frame_step_s + 0.1 * (wall - self._last_video)
        self._last_video = wall
        self.video_until = max(self.video_until, wall)
        start_ms = self._window_start(wall)
        if start_ms + self.clip_ms <= self._closed_until_ms:
            self.late_frames += 1
            return False
        window = self._window(start_ms)
        offset = wall - start_ms / 1000
        half = 0.5 * min(self.frame_step_s, 1.0 / self.fps)
        tick = math.floor((offset + half) * self.fps)
        late = offset - tick / self.fps
        if tick < window.next_tick or tick >= self.ticks or late >= max(self.frame_step_s, 0.5 / self.fps):
            return False  # tick taken, past the clip, or no frame came near it (the source starts after it)
        if window.frames is None:
            width, height = output_size(frame.width, frame.height, self.max_pixels)
            window.frames = _frame_buffer((self.ticks, height, width, 3))
        _write_rgb(frame, window.frames[window.count])
        window.count += 1
        window.times.append(offset)
        window.pts.append(math.nan if pts is None else pts)
        window.next_tick = tick + 1
        return True

    def add_audio(self, wall: float | None, samples: np.ndarray) -> None:
        """Place 16 kHz mono samples starting at wall time `wall` (None: right after the previous chunk)."""
        n = samples.shape[0]
        if n == 0:
            return
        if wall is None and self._audio_cursor is None:
            if self._last_video is None:
                return  # no time reference yet
            wall = self._last_video
        if self._audio_cursor is not None and (wall is None or self._continues_audio(wall)):
            first = self._audio_cursor  # keep the waveform gapless
        else:
            first = round(wall * SAMPLE_RATE)
        self._audio_cursor = first + n
        self.audio_until = max(self.audio_until, (first + n) / SAMPLE_RATE)
        at = 0
        while at < n:
            index = (first + at) // self.clip_samples
            start_ms = index * self.clip_ms
            lo = first + at - index * self.clip_samples
            take = min(n - at, self.clip_samples - lo)
            if start_ms + self.clip_ms <= self._closed_until_ms:
                self.late_samples += take
            else:
                window = self._window(start_ms)
                if window.waveform is None:
                    window.waveform = np.zeros(self.clip_samples, np.float32)
                window.waveform[lo : lo + take] = samples[at : at + take]
            at += take

    def _continues_audio(self, wall: float) -> bool:
        """Whether audio at `wall` continues the previous chunk: it starts within AUDIO_SNAP_S of where that
        ended, or anywhere before it in a file (an overlap, a timestamp reset). Live audio further back is
        re-placed instead: its clock moved earlier (the first audio arrived late, held by probing)."""
        behind = self._audio_cursor / SAMPLE_RATE - wall
        return -AUDIO_SNAP_S < behind < AUDIO_SNAP_S or (behind >= AUDIO_SNAP_S and not self.live)

    # -- output -----------------------------------------------------------------------------------

    def ready(self) -> list[ClipWindow]:
        """Clips whose time is over: video has passed the end and audio has too (or its grace has run out)."""
        out = []
        for start_ms in sorted(self._open):
            end = (start_ms + self.clip_ms) / 1000
            video_done = self.video_until >= end
            audio_done = not self.has_audio or self.audio_until >= end or self.video_until >= end + self.audio_grace_s
            overdue = max(self.video_until, self.audio_until) >= end + 2 * self.audio_grace_s
            if not ((video_done and audio_done) or overdue):
                break
            clip = self._close(start_ms)
            if clip is not None:
                out.append(clip)
        return out

    def flush_before(self, wall: float) -> list[ClipWindow]:
        """Close every clip that ends at or before `wall` (an outage: what they lack will not come)."""
        out = []
        for start_ms in sorted(self._open):
            if start_ms + self.clip_ms > wall * 1000:
                break
            clip = self._close(start_ms)
            if clip is not None:
                out.append(clip)
        return out

    def finish(self) -> list[ClipWindow]:
        """Close all clips (end of a file): the last one is usually partial."""
        return [c for c in (self._close(s) for s in sorted(self._open)) if c is not None]

    # -- helpers ----------------------------------------------------------------------------------

    def _window_start(self, wall: float) -> int:
        return math.floor(wall * 1000 / self.clip_ms) * self.clip_ms

    def _window(self, start_ms: int) -> _Window:
        window = self._open.get(start_ms)
        if window is None:
            window = self._open[start_ms] = _Window(start_ms)
        return window

    def _close(self, start_ms: int) -> ClipWindow | None:
        window = self._open.pop(start_ms)
        self._closed_until_ms = max(self._closed_until_ms, start_ms + self.clip_ms)
        if not window.count:
            return None  # no video in this window: it is part of a gap, not a clip
        lead_in = self._tail[1] if self._tail is not None and self._tail[0] == start_ms else None
        self._tail = (start_ms + self.clip_ms, window.frames[window.count - 1].copy())
        return ClipWindow(
            camera_id=self.camera_id,
            start=wall_datetime(start_ms),
            end=wall_datetime(start_ms + self.clip_ms),
            frames=window.frames[: window.count],  # (N, H, W, 3)
            frame_times=np.asarray(window.times, np.float64),
            fps=float(self.fps),
            waveform=window.waveform if window.waveform is not None else np.zeros(self.clip_samples, np.float32),
            sample_rate=SAMPLE_RATE,
            has_audio=self.has_audio,
            source_pts=np.asarray(window.pts, np.float64),
            lead_in=lead_in,
        )


def _frame_buffer(shape: tuple[int, ...]) -> np.ndarray:
    """A uint8 array on anonymous memory, its pages mapped up front.

    Page faults while filling a fresh 124 MB buffer (one 1080p clip) cost more than converting its frames.
    numpy advises transparent huge pages for large arrays, and where the kernel compacts memory on that
    advice (THP defrag=madvise, common) a clip buffer took 260 ms; plain pages 85 ms; pre-mapped 45 ms.
    """
    size = max(1, math.prod(shape))
    memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_POPULATE)
    return np.frombuffer(memory, np.uint8, count=math.prod(shape)).reshape(shape)


def _write_rgb(frame, out: np.ndarray) -> None:
    """Convert one decoded frame to RGB at out's size and write it into `out` (H, W, 3), copying once."""
    height, width = out.shape[:2]
    rgb = frame.reformat(width=width, height=height, format="rgb24")
    plane = rgb.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(height, plane.line_size)  # rows may be padded
    out[...] = rows[:, : width * 3].reshape(height, width, 3)
