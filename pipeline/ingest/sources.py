"""A source: one camera or file turned into ClipWindow and Gap records by a worker thread that survives faults.

The worker opens, decodes and windows; on a live source it reconnects with bounded, jittered
exponential backoff and records the time it lost as a Gap. The consumer side (`get`, iteration)
waits only in short polls, so `stop()` from any thread ends it promptly; the worker itself never
blocks longer than one FFmpeg timeout.
"""

from __future__ import annotations

import logging
import math
import queue
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import av

from pipeline.clips import ClipWindow, Gap
from pipeline.errors import (
    ForbiddenSource,
    InvalidMedia,
    PipelineError,
    SourceTimeout,
    SourceUnavailable,
    StreamStalled,
)
from pipeline.identifiers import check_camera_id
from pipeline.ingest.connect_slots import ConnectSlots
from pipeline.ingest.decoding import AudioAt, MediaDecoder, MediaInfo, open_media
from pipeline.ingest.media_policy import MediaPolicy, OpenPlan, SourceKind, plan_source
from pipeline.ingest.timestamps import FileClock, FollowingClock, LiveClock, WallClock
from pipeline.ingest.windowing import ClipAssembler, wall_datetime
from pipeline.redaction import redact_url

logger = logging.getLogger(__name__)

POLL_S = 0.1  # how often waiting code re-checks stop()


@dataclass(frozen=True)
class SourceSpec:
    """What to ingest and how to cut it. `url` is a file path, file://, http(s)://, rtsp(s)://, or with
    `push=True` the rtsp://ip:port/path address we listen on for a camera to publish to."""

    camera_id: str
    url: str
    push: bool = False
    clip_seconds: int = 10  # a multiple of 2: the model works in 2-second chunks
    fps: float = 2.0
    start_time: datetime | None = None  # files: wall time of the first frame (else creation_time, else now)
    max_pixels: int | None = None  # downscale kept frames to at most this many pixels (None: source size)
    live: bool | None = None  # None: rtsp and push are live, files and http are not

    def __post_init__(self) -> None:
        check_camera_id(self.camera_id)
        if not isinstance(self.clip_seconds, int) or self.clip_seconds <= 0 or self.clip_seconds % 2:
            raise ValueError(f"clip_seconds must be a positive multiple of 2, got {self.clip_seconds!r}")
        if not (self.fps > 0 and self.fps * self.clip_seconds >= 1 and math.isfinite(self.fps)):
            raise ValueError(f"fps must be positive with at least one frame per clip, got {self.fps!r}")
        if self.start_time is not None and self.start_time.tzinfo is None:
            raise ValueError("start_time must carry a timezone (e.g. 2024-05-01T14:03:00+02:00)")
        if self.max_pixels is not None and self.max_pixels < 64:
            raise ValueError("max_pixels must be at least 64")

    def __repr__(self) -> str:
        return (
            f"SourceSpec(camera_id={self.camera_id!r}, url={redact_url(self.url)!r}, push={self.push}, "
            f"clip_seconds={self.clip_seconds}, fps={self.fps:g})"
        )

    __str__ = __repr__


@dataclass(frozen=True)
class SourceStatus:
    """A snapshot for GET /v1/streams/{camera_id}."""

    camera_id: str
    url: str  # redacted
    state: str  # starting | connecting | waiting | connected | reconnecting | finished | failed | stopped
    connected: bool
    clips: int
    gaps: int
    reconnects: int
    dropped_clips: int  # live clips dropped because the consumer fell behind
    last_error: str | None
    last_frame_at: datetime | None
    lag_s: float | None  # live: now - wall time of the newest frame
    progress: float | None  # files: share of the media decoded so far, when the duration is known


class Backoff:
    """Exponential reconnect delays, bounded, each scaled down by a random factor so cameras don't stampede."""

    def __init__(self, initial_s: float, max_s: float, jitter: float, rng: random.Random | None = None) -> None:
        self.initial_s, self.max_s, self.jitter = initial_s, max_s, jitter
        self.rng = rng or random.Random()
        self.attempt = 0

    def next_delay(self) -> float:
        base = min(self.max_s, self.initial_s * 2.0**self.attempt)
        self.attempt += 1
        return base * (1.0 - self.jitter * self.rng.random())

    def reset(self) -> None:
        self.attempt = 0


class _End:
    """Queue marker: the worker is done; `error` is what ended it, if anything."""

    def __init__(self, error: PipelineError | None = None) -> None:
        self.error = error


class ClipSource:
    """Iterate to get ClipWindow | Gap records from one source; `stop()` from any thread ends it promptly.

    Bad specs fail in the constructor (ForbiddenSource, InvalidMedia). Media errors found while reading
    are raised from `get()` / iteration with their own type. A live source retries until
    `policy.retry_for_s` of consecutive failure (forever by default), then raises SourceUnavailable.
    """

    def __init__(
        self,
        spec: SourceSpec,
        policy: MediaPolicy | None = None,
        *,
        queue_size: int = 2,
        connect_slots: ConnectSlots | None = None,
    ) -> None:
        """`connect_slots`, shared by many sources, bounds how many pull cameras connect at once: a storm of
        failing cameras then waits its turn instead of loading the machine (push listeners take none)."""
        self.spec = spec
        self._connect_slots = connect_slots
        self.policy = policy or MediaPolicy()
        self.plan: OpenPlan = plan_source(spec.url, self.policy, push=spec.push, live=spec.live)
        # clips wait in the queue holding one of `queue_size` slots; gaps and the end marker take none,
        # so a full queue of clips never holds back the record of what was dropped
        self._queue: queue.Queue = queue.Queue()
        self._slots = threading.Semaphore(max(1, queue_size))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"omnisift-source-{spec.camera_id}", daemon=True)
        self._started = self._finished = False
        self._lock = threading.Lock()
        self._state = "starting"
        self._connected = False
        self._clips = self._gaps = self._reconnects = self._dropped = 0
        self._last_error: str | None = None
        self._last_video_wall: float | None = None
        self._progress: float | None = None
        self._pending_drop: tuple[float, float] | None = None  # live clips dropped, not yet reported as a Gap

    def __repr__(self) -> str:
        return f"ClipSource({self.spec!r}, state={self._state})"

    # -- consumer side ----------------------------------------------------------------------------

    def start(self) -> ClipSource:
        with self._lock:
            if not self._started:
                self._started = True
                self._thread.start()
        return self

    def get(self, timeout: float | None = None) -> ClipWindow | Gap | None:
        """The next record; None if none came within `timeout` s, the source ended, or stop() was called."""
        self.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._finished and not self._stop.is_set():
            wait = POLL_S if deadline is None else min(POLL_S, deadline - time.monotonic())
            if wait <= 0:
                return None
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                continue
            if isinstance(item, _End):
                self._finished = True
                if item.error is not None:
                    raise item.error
                return None
            if isinstance(item, ClipWindow):
                self._slots.release()
            return item
        return None

    def __iter__(self) -> Iterator[ClipWindow | Gap]:
        while True:
            item = self.get()
            if item is None:
                return
            yield item

    @property
    def finished(self) -> bool:
        """True once the source has ended (end of file, fatal error) or was stopped."""
        return self._finished or self._stop.is_set()

    def stop(self) -> None:
        """Ask the source to end; returns at once. Iteration ends within POLL_S, the worker within a timeout."""
        self._stop.set()
        self._set(state="stopped", connected=False)

    def close(self, timeout: float | None = None) -> bool:
        """stop() and wait for the worker (at most `timeout` s); True if it has exited."""
        self.stop()
        if self._started:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def __enter__(self) -> ClipSource:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def status(self) -> SourceStatus:
        with self._lock:
            last = self._last_video_wall
            return SourceStatus(
                camera_id=self.spec.camera_id,
                url=self.plan.display,
                state=self._state,
                connected=self._connected,
                clips=self._clips,
                gaps=self._gaps,
                reconnects=self._reconnects,
                dropped_clips=self._dropped,
                last_error=self._last_error,
                last_frame_at=None if last is None else wall_datetime(round(last * 1000)),
                lag_s=None if last is None or not self.plan.live else max(0.0, time.time() - last),
                progress=self._progress,
            )

    # -- worker side ------------------------------------------------------------------------------

    def _run(self) -> None:
        end = _End()
        try:
            # FFmpeg's messages may quote the URL with its password: capture them off the log, per thread
            with av.logging.Capture(local=True) as ffmpeg_logs:
                self._ffmpeg_logs = ffmpeg_logs
                if self.plan.live:
                    self._run_live()
                else:
                    self._run_file()
            self._set(state="stopped" if self._stop.is_set() else "finished", connected=False)
        except PipelineError as exc:
            self._set(state="failed", connected=False, last_error=str(exc))
            logger.warning("source %s failed: %s", self.spec.camera_id, exc)
            end = _End(exc)
        except Exception as exc:  # a bug or an FFmpeg surprise: report it as this source's failure
            logger.exception("source %s crashed", self.spec.camera_id)
            error = PipelineError(f"{self.plan.display}: unexpected {type(exc).__name__}: {exc}")
            self._set(state="failed", connected=False, last_error=str(error))
            end = _End(error)
        self._queue.put(end)

    def _run_file(self) -> None:
        self._set(state="connecting")
        container, info = open_media(self.plan, self.policy)
        with container:
            self._set(state="connected", connected=True)
            start = self.spec.start_time or info.creation_time or datetime.now(timezone.utc)
            origin = info.start_s if info.start_s is not None else 0.0
            clock = FileClock(start.timestamp(), origin)
            assembler = self._assembler(info)
            last_t = self._read(container, info, assembler, clock, clock, gap_reason=None)
            if self._stop.is_set():
                return
            for clip in assembler.finish():
                self._emit(clip)
            self._report_truncation(info, clock, last_t)
            self._set(progress=1.0)

    def _run_live(self) -> None:
        policy = self.policy
        backoff = Backoff(policy.backoff_initial_s, policy.backoff_max_s, policy.backoff_jitter)
        assembler: ClipAssembler | None = None
        ever_connected = False
        failing_since: float | None = None
        gap_reason: str | None = None
        while not self._stop.is_set():
            waiting = self.plan.kind is SourceKind.PUSH
            self._set(state="waiting" if waiting else ("reconnecting" if ever_connected else "connecting"))
            try:
                container, info = self._open_live(waiting)
            except ForbiddenSource:
                raise
            except InvalidMedia as exc:
                if not ever_connected:
                    raise  # a camera that never gave usable video: tell the user now
                error: PipelineError = exc
            except SourceTimeout as exc:
                if waiting:
                    continue  # no publisher yet: listen again (this is where stop() is noticed)
                error = exc
            except SourceUnavailable as exc:
                error = exc
            else:
                if ever_connected:
                    self._reconnects_inc()
                ever_connected = True
                self._set(state="connected", connected=True, last_error=None)
                if assembler is None:
                    assembler = self._assembler(info)
                assembler.has_audio = info.has_audio
                frames_before = self._clips_and_frames()
                with container:
                    try:
                        video_clock = LiveClock()
                        audio_clock = FollowingClock(video_clock)
                        self._read(container, info, assembler, video_clock, audio_clock, gap_reason=gap_reason)
                        error = SourceUnavailable(f"{self.plan.display}: the stream ended (the sender closed it)")
                    except StreamStalled as exc:
                        error = exc
                    except (SourceUnavailable, InvalidMedia) as exc:
                        error = exc
                if self._stop.is_set():
                    return
                delivered = self._clips_and_frames() != frames_before
                if delivered:  # start backing off afresh
                    backoff.reset()
                    failing_since = None
                if delivered or gap_reason is None:  # an outage is named after what started it
                    kind = "stalled" if isinstance(error, StreamStalled) else "disconnected"
                    gap_reason = f"{kind}: {error}"
            self._set(connected=False, last_error=str(error))
            logger.warning("source %s: %s", self.spec.camera_id, error)
            now = time.monotonic()
            failing_since = failing_since or now
            if policy.retry_for_s is not None and now - failing_since >= policy.retry_for_s:
                if self._last_video_wall is not None and assembler is not None:
                    for clip in assembler.finish():
                        self._emit(clip)
                    self._emit_gap(self._last_video_wall, time.time(), f"source gave up: {error}")
                raise SourceUnavailable(f"gave up after {now - failing_since:.0f} s of failures: {error}")
            self._stop.wait(backoff.next_delay())

    def _open_live(self, waiting: bool):
        if waiting or self._connect_slots is None:
            return open_media(self.plan, self.policy)
        if not self._connect_slots.acquire(self._stop):
            raise SourceTimeout(f"{self.plan.display}: stopped while waiting to connect")
        try:
            return open_media(self.plan, self.policy)
        finally:
            self._connect_slots.release()

    def _read(
        self,
        container: av.container.InputContainer,
        info: MediaInfo,
        assembler: ClipAssembler,
        video_clock: WallClock,
        audio_clock: WallClock,
        *,
        gap_reason: str | None,
    ) -> float | None:
        """Decode until the end, an error or stop(); returns the stream time of the last frame."""
        decoder = MediaDecoder(container, info, self.plan)
        try:
            return self._decode_into(decoder, info, assembler, video_clock, audio_clock, gap_reason)
        finally:
            decoder.close()

    def _decode_into(
        self,
        decoder: MediaDecoder,
        info: MediaInfo,
        assembler: ClipAssembler,
        video_clock: WallClock,
        audio_clock: WallClock,
        gap_reason: str | None,
    ) -> float | None:
        live = self.plan.live
        policy = self.policy
        last_frame_rx = time.monotonic()
        last_t = None
        for item in decoder:
            if self._stop.is_set():
                return last_t
            received = item.received
            if isinstance(item, AudioAt):
                wall = None if item.t is None else audio_clock.wall(item.t, received)
                assembler.add_audio(wall, item.samples)
            else:
                last_t = item.t
                last_frame_rx = time.monotonic()
                wall = video_clock.wall(item.t, received)
                previous = self._last_video_wall
                if previous is not None:
                    wall = max(wall, previous + 1e-3)  # never back: clip ids must not repeat
                    if gap_reason or wall - previous > policy.min_gap_s:
                        for clip in assembler.flush_before(wall):
                            self._emit(clip)
                        self._emit_gap(previous, wall, gap_reason or f"no video for {wall - previous:.1f} s")
                        gap_reason = None
                with self._lock:
                    self._last_video_wall = wall
                    if info.duration_s:
                        self._progress = min(1.0, max(0.0, (item.t - (info.start_s or 0.0)) / info.duration_s))
                assembler.add_video(wall, item.frame, item.pts)
                if not live and item.t - (info.start_s or 0.0) > policy.max_duration_s:
                    policy.check_duration(item.t - (info.start_s or 0.0))
            if live and time.monotonic() - last_frame_rx > policy.stall_timeout_s:
                raise StreamStalled(f"{self.plan.display}: no video frame for {policy.stall_timeout_s:g} s")
            for clip in assembler.ready():
                if not self._emit(clip):
                    return last_t
            if len(self._ffmpeg_logs) > 64:
                del self._ffmpeg_logs[:-8]
        return last_t

    def _report_truncation(self, info: MediaInfo, clock: FileClock, last_t: float | None) -> None:
        """A file whose media stops well before its declared duration ends in a Gap saying so."""
        if info.duration_s is None or last_t is None:
            return
        origin = info.start_s or 0.0
        step = 1.0 / info.frame_rate if info.frame_rate else 0.04
        declared_end = origin + info.duration_s
        if declared_end - (last_t + step) > max(1.0, 2 * step):
            self._emit_gap(
                clock.wall(last_t),
                clock.wall(declared_end),
                f"truncated: media ends at {last_t - origin:.1f} s of a declared {info.duration_s:.1f} s",
            )

    # -- queue ------------------------------------------------------------------------------------

    def _assembler(self, info: MediaInfo) -> ClipAssembler:
        return ClipAssembler(
            self.spec.camera_id,
            self.spec.clip_seconds,
            self.spec.fps,
            has_audio=info.has_audio,
            frame_step_s=1.0 / info.frame_rate if info.frame_rate else 0.04,
            max_pixels=self.spec.max_pixels,
            live=self.plan.live,
        )

    def _emit(self, clip: ClipWindow) -> bool:
        """Queue a clip; False if stopped. A file waits for the consumer; a live source never does: it drops
        the clip and reports the dropped time as a Gap with the next clip that fits."""
        if self.plan.live:
            if not self._slots.acquire(blocking=False):
                start, end = clip.start.timestamp(), clip.end.timestamp()
                self._pending_drop = (start, end) if self._pending_drop is None else (self._pending_drop[0], end)
                with self._lock:
                    self._dropped += 1
                return True
            if self._pending_drop is not None:
                start, end = self._pending_drop
                self._pending_drop = None
                self._emit_gap(start, end, "dropped: the consumer fell behind this live stream")
        else:
            while not self._slots.acquire(timeout=POLL_S):
                if self._stop.is_set():
                    return False
        self._queue.put(clip)
        with self._lock:
            self._clips += 1
        return True

    def _emit_gap(self, start: float, end: float, reason: str) -> None:
        """The gap between the frames at `start` and `end`, in whole ms rounded inwards: it never covers them."""
        first_ms, last_ms = math.ceil(start * 1000), math.floor(end * 1000)
        gap = Gap(self.spec.camera_id, wall_datetime(first_ms), wall_datetime(max(first_ms, last_ms)), reason)
        self._queue.put(gap)
        with self._lock:
            self._gaps += 1

    # -- status -----------------------------------------------------------------------------------

    def _set(self, **changes) -> None:
        with self._lock:
            if self._stop.is_set() and changes.get("state") not in (None, "stopped", "failed"):
                changes.pop("state")
            for key, value in changes.items():
                setattr(self, f"_{key}", value)

    def _reconnects_inc(self) -> None:
        with self._lock:
            self._reconnects += 1

    def _clips_and_frames(self) -> tuple[int, float | None]:
        with self._lock:
            return self._clips, self._last_video_wall
