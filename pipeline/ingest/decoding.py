"""Opening a source with FFmpeg as its OpenPlan says, and decoding it into timed video frames and 16 kHz audio.

FFmpeg failures become the error types of pipeline.errors with a message a user can act on;
FFmpeg's own log lines (which may quote the URL) are captured, redacted and folded into them.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

import av
import av.error
import numpy as np

from pipeline.clips import SAMPLE_RATE
from pipeline.errors import (
    ForbiddenSource,
    InvalidMedia,
    PipelineError,
    SourceTimeout,
    SourceUnavailable,
    StreamStalled,
)
from pipeline.ingest.media_policy import MediaPolicy, OpenPlan, SourceKind, check_address
from pipeline.ingest.timestamps import TimestampRepair
from pipeline.redaction import redact_text

logger = logging.getLogger(__name__)

_TEXT_SNIFF_BYTES = 4096
_HLS_SEGMENT = re.compile(r"(?:segment|URL) '?([a-zA-Z][\w+.,-]*:[^' ]*)")

MAX_CONSECUTIVE_DECODE_ERRORS = 50
MAX_TRACKED_PACKETS = 512  # corrupt packets are skipped; this many in a row means the media is broken


@dataclass(frozen=True)
class MediaInfo:
    """What a source holds, read once at open."""

    width: int
    height: int
    frame_rate: float | None  # frames per second, None when the stream does not say
    video_codec: str
    has_audio: bool
    audio_codec: str | None
    duration_s: float | None  # None for live streams
    start_s: float | None  # stream time of the first sample, when the container knows it
    creation_time: datetime | None  # from container metadata, UTC


class VideoAt(NamedTuple):
    t: float  # repaired stream time (s), strictly increasing
    frame: av.VideoFrame
    pts: float | None  # the source's own timestamp (s), as decoded
    received: float  # epoch s when its packet was read (the decoder may hold frames back a while)


class AudioAt(NamedTuple):
    t: float | None  # stream time (s) of the first sample, None when the source gave none
    samples: np.ndarray  # (n,) float32 mono at SAMPLE_RATE
    received: float  # epoch s when its packet was read


class _FFmpegErrorReporting:
    """FFmpeg's error lines reach PyAV (and so our messages) only while some source is opening.

    PyAV's log callback takes the GIL. A frame-threaded decoder freed by the garbage collector waits for
    its threads with the GIL held; if one of them is logging at that moment, the process deadlocks.
    Opening is when the messages matter ("not on whitelist", "moov atom not found") and it decodes with
    one thread only, so reporting is switched on around opens and back off (PyAV's default) after.
    PyAV also swallows a line that repeats the previous one, which would cost the second refused
    upload its reason, so that is off while reporting is on.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._switched_on = False
        self._skipped_repeats = True

    def __enter__(self) -> None:
        with self._lock:
            if self._users == 0 and av.logging.get_level() is None:
                self._skipped_repeats = av.logging.get_skip_repeated()
                av.logging.set_skip_repeated(False)
                av.logging.set_level(av.logging.ERROR)
                self._switched_on = True
            self._users += 1

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._switched_on:
                av.logging.set_level(None)
                av.logging.set_skip_repeated(self._skipped_repeats)
                self._switched_on = False


_ffmpeg_errors_reported = _FFmpegErrorReporting()


def open_media(plan: OpenPlan, policy: MediaPolicy) -> tuple[av.container.InputContainer, MediaInfo]:
    """Open `plan` within its timeouts and check it against the policy; the caller closes the container.
    A network source's host is checked against the address policy first, on every open (ForbiddenSource;
    SourceUnavailable when it does not resolve, so a live source retries)."""
    if plan.kind in (SourceKind.HTTP, SourceKind.RTSP):
        check_address(plan.target, policy)
    began = time.monotonic()
    with _ffmpeg_errors_reported, av.logging.Capture(local=True) as logs:
        try:
            container = av.open(
                plan.target,
                mode="r",
                format=plan.format,
                container_options=dict(plan.options),
                timeout=(plan.open_timeout_s, plan.read_timeout_s),
            )
        except Exception as exc:  # PyAV raises FFmpegError subclasses and plain OSErrors
            # an interrupted RTSP handshake surfaces as "invalid data": the clock tells what really happened
            timed_out = time.monotonic() - began >= 0.98 * plan.open_timeout_s
            raise translate_error(exc, logs, plan, opening=True, timed_out=timed_out) from None
    try:
        info = _inspect(container, plan, policy)
    except BaseException:
        container.close()
        raise
    container.streams.video[0].thread_type = "AUTO"  # frame + slice threads: decoding is the ingest's cost
    return container, info


class MediaDecoder:
    """Demuxes and decodes an open container: video frames with repaired times, audio resampled to 16 kHz mono.

    Frames are handed out as decoded (no pixel conversion here): the windowing samples them first.
    """

    def __init__(self, container: av.container.InputContainer, info: MediaInfo, plan: OpenPlan) -> None:
        self.container, self.info, self.plan = container, info, plan
        self.video = container.streams.video[0]
        self.audio = container.streams.audio[0] if info.has_audio else None
        step = 1.0 / info.frame_rate if info.frame_rate else 0.04
        self.video_times = TimestampRepair(step)
        self._video_time_base = float(self.video.time_base)
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE) if self.audio else None
        self.skipped_packets = 0
        self._bad_in_a_row = 0
        # when each video packet was read, by pts (decoded frames come out later, and reordered)
        self._arrivals: dict[int, float] = {}
        self._untimed_arrivals: deque[float] = deque(maxlen=MAX_TRACKED_PACKETS)

    def __iter__(self) -> Iterator[VideoAt | AudioAt]:
        streams = [s for s in (self.video, self.audio) if s is not None]
        with av.logging.Capture(local=True) as logs:
            packets = self.container.demux(*streams)
            while True:
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except Exception as exc:
                    raise translate_error(exc, logs, self.plan, opening=False) from None
                received = time.time()
                if len(logs) > 64:
                    del logs[:-8]
                if packet.stream is self.video and packet.size:
                    self._note_arrival(packet.pts, received)
                yield from self._decode(packet, logs, received)
        if self.resampler is not None:
            for out in self.resampler.resample(None):
                yield _audio_at(out, time.time())

    def close(self) -> None:
        """Drain the video decoder, so its threads are idle (not logging) when the GC frees it holding the GIL."""
        with contextlib.suppress(Exception):  # a broken stream may fail to flush; its threads are idle either way
            self.video.codec_context.decode(None)

    def _note_arrival(self, pts: int | None, received: float) -> None:
        if pts is None:
            self._untimed_arrivals.append(received)
            return
        if len(self._arrivals) >= MAX_TRACKED_PACKETS:
            del self._arrivals[next(iter(self._arrivals))]
        self._arrivals[pts] = received

    def _arrival_of(self, pts: int | None, fallback: float) -> float:
        if pts is not None and pts in self._arrivals:
            return self._arrivals.pop(pts)
        if pts is None and self._untimed_arrivals:
            return self._untimed_arrivals.popleft()
        return fallback

    def _decode(self, packet: av.Packet, logs: list, received: float) -> Iterator[VideoAt | AudioAt]:
        try:
            frames = packet.decode()
        except (av.error.InvalidDataError, av.error.UndefinedError, av.error.PatchWelcomeError) as exc:
            self.skipped_packets += 1
            self._bad_in_a_row += 1
            if self._bad_in_a_row > MAX_CONSECUTIVE_DECODE_ERRORS:
                detail = _ffmpeg_detail(logs) or str(exc)
                raise InvalidMedia(f"{self.plan.display}: the stream is corrupt, nothing decodes ({detail})") from None
            return
        self._bad_in_a_row = 0
        if packet.stream is self.video:
            tb = self._video_time_base  # float arithmetic: Fractions per frame cost more than the sampling
            for frame in frames:
                ts = frame.pts if frame.pts is not None else frame.dts
                raw = None if ts is None else ts * tb
                step = frame.duration * tb if frame.duration else None
                yield VideoAt(self.video_times(raw, step), frame, raw, self._arrival_of(frame.pts, received))
        else:
            for frame in frames:
                for out in self.resampler.resample(frame):
                    yield _audio_at(out, received)


def _audio_at(out: av.AudioFrame, received: float) -> AudioAt:
    """A resampled chunk (packed float mono, time base 1/SAMPLE_RATE) as a view on the frame's buffer."""
    samples = np.frombuffer(out.planes[0], np.float32, count=out.samples)  # (n,)
    return AudioAt(None if out.pts is None else out.pts / SAMPLE_RATE, samples, received)


def translate_error(
    exc: BaseException, logs: list, plan: OpenPlan, *, opening: bool, timed_out: bool = False
) -> PipelineError:
    """One FFmpeg/OS failure -> the error type and message a user can act on."""
    if isinstance(exc, PipelineError):
        return exc
    where = plan.display
    detail = _ffmpeg_detail(logs) or redact_text(getattr(exc, "strerror", None) or str(exc)) or type(exc).__name__
    text = " ".join(m for _, _, m in logs)
    network = plan.kind is not SourceKind.FILE

    if "Format not on whitelist" in text:
        if plan.kind is SourceKind.FILE and not _starts_as_text(plan.target):
            return InvalidMedia(
                f"{where}: not a media file FFmpeg recognises, or its container is not accepted here "
                f"(allowed: {plan.options.get('format_whitelist', '').replace(',', ', ')})"
            )
        return ForbiddenSource(
            f"{where}: this kind of media (a playlist, or an unusual container) is not accepted from here; "
            f"allowed: {plan.options.get('format_whitelist', '').replace(',', ', ')}"
        )
    if "not on whitelist" in text:
        what = _quoted_after(text, "Protocol ") or "a resource"
        return ForbiddenSource(
            f"{where}: refused to open {what}; only the protocols of the media policy are allowed ({detail})"
        )
    segment = _HLS_SEGMENT.search(text)
    if segment and not segment.group(1).lower().startswith(("http://", "https://")):
        scheme = re.split(r"[,:]", segment.group(1), maxsplit=1)[0][:20]
        return ForbiddenSource(
            f"{where}: the playlist points to a {scheme!r} segment; only http(s) segments are allowed"
        )
    if timed_out or isinstance(exc, av.error.ExitError | av.error.TimeoutError | TimeoutError):
        limit = plan.open_timeout_s if opening else plan.read_timeout_s
        if opening:
            if plan.kind is SourceKind.PUSH:
                return SourceTimeout(f"{where}: no camera published to this address within {limit:g} s")
            return SourceTimeout(f"{where}: no answer within {limit:g} s; check the host, port and network")
        return StreamStalled(f"{where}: no data for {limit:g} s")
    if isinstance(exc, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError):
        return SourceUnavailable(f"{where}: the server refused access ({detail}); check the credentials")
    if isinstance(exc, av.error.HTTPNotFoundError):
        return SourceUnavailable(f"{where}: not found on the server ({detail}); check the path")
    if isinstance(exc, av.error.HTTPError):
        return SourceUnavailable(f"{where}: the server answered with an error ({detail})")
    if isinstance(exc, ConnectionRefusedError | av.error.ConnectionRefusedError):
        return SourceUnavailable(f"{where}: connection refused; is the camera or server running on that port?")
    if isinstance(exc, ConnectionError | av.error.ConnectionResetError | av.error.ConnectionAbortedError):
        return SourceUnavailable(f"{where}: the connection was lost ({detail})")
    if isinstance(exc, av.error.DecoderNotFoundError):
        return InvalidMedia(f"{where}: unsupported codec ({detail}); re-encode to H.264 or H.265")
    if isinstance(exc, av.error.EOFError | EOFError) and opening:
        return InvalidMedia(f"{where}: the media ends before its header does; the file is truncated or empty")
    if "moov atom not found" in text:
        return InvalidMedia(
            f"{where}: not a playable MP4: its index (moov atom) is missing; the file is truncated, "
            "still being written, or not an MP4"
        )
    if isinstance(exc, av.error.InvalidDataError):
        if network and plan.kind is not SourceKind.HTTP:
            return SourceUnavailable(f"{where}: the server's answer is not a stream FFmpeg understands ({detail})")
        return InvalidMedia(
            f"{where}: not a media file FFmpeg can read: corrupt, truncated or an unknown format ({detail})"
        )
    if isinstance(exc, OSError | av.error.FFmpegError) and network:
        return SourceUnavailable(f"{where}: {detail}")
    return InvalidMedia(f"{where}: cannot be decoded ({detail})")


def _inspect(container: av.container.InputContainer, plan: OpenPlan, policy: MediaPolicy) -> MediaInfo:
    where = plan.display
    if not container.streams.video:
        kinds = ", ".join(sorted({s.type for s in container.streams})) or "none"
        raise InvalidMedia(f"{where} has no video stream (streams: {kinds}); omnisift needs video")
    video = container.streams.video[0]
    ctx = video.codec_context
    if ctx is None or not ctx.name or ctx.name == "none" or ctx.codec is None:
        raise InvalidMedia(f"{where}: unsupported video codec (no decoder for it); re-encode to H.264 or H.265")
    width, height = ctx.width, ctx.height
    if not width or not height:
        raise InvalidMedia(f"{where}: the video size cannot be read; the stream may be corrupt")
    policy.check_resolution(width, height)

    duration = None
    if not plan.live and container.duration:
        duration = container.duration / 1_000_000
        policy.check_duration(duration)
    rate = video.guessed_rate or video.average_rate  # guessed: FFmpeg's pick, e.g. the codec's own rate for raw H.264
    frame_rate = float(rate) if rate and 0 < float(rate) < 1000 else None

    audio = _usable_audio(container, where)
    start = container.start_time / 1_000_000 if container.start_time is not None else None
    return MediaInfo(
        width=width,
        height=height,
        frame_rate=frame_rate,
        video_codec=ctx.name,
        has_audio=audio is not None,
        audio_codec=audio.codec_context.name if audio is not None else None,
        duration_s=duration,
        start_s=start,
        creation_time=_creation_time(container.metadata) or _creation_time(video.metadata),
    )


def _usable_audio(container: av.container.InputContainer, where: str):
    """The first audio stream we can decode; a missing or undecodable one means silence, not an error."""
    for stream in container.streams.audio:
        ctx = stream.codec_context
        if ctx is not None and ctx.codec is not None and ctx.sample_rate and ctx.name != "none":
            return stream
        logger.warning("%s: audio stream %d cannot be decoded; using silence", where, stream.index)
    return None


def _creation_time(metadata: dict[str, str]) -> datetime | None:
    value = metadata.get("creation_time")
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        when = (when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except (ValueError, OverflowError):  # 9999-12-31T23:00-05:00 is past the last representable year
        return None
    # MP4 writers put 1904/1970 for "unknown"; a date in the future is as wrong, and clip times past it overflow
    return when if when.year >= 1990 and when <= datetime.now(timezone.utc) + timedelta(days=1) else None


def _starts_as_text(path: str) -> bool:
    """Whether a local file begins as text: a playlist or list file rather than an (unaccepted) binary format."""
    try:
        with open(path, "rb") as file:
            head = file.read(_TEXT_SNIFF_BYTES)
    except OSError:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a multi-byte character cut at the end of the sniffed bytes is still text
        if exc.start < len(head) - 3:
            return False
        text = head[: exc.start].decode("utf-8")
    return all(c.isprintable() or c in "\t\r\n\ufeff" for c in text)


def _ffmpeg_detail(logs: list) -> str:
    """FFmpeg's last few error lines, shortened (a data: URL can be megabytes) and redacted."""
    lines = [_shorten(m.strip(), 160) for level, _, m in logs if level <= av.logging.ERROR and m.strip()]
    return redact_text("; ".join(dict.fromkeys(lines[-3:])))


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quoted_after(text: str, prefix: str) -> str | None:
    at = text.find(prefix + "'")
    if at < 0:
        return None
    start = at + len(prefix) + 1
    end = text.find("'", start)
    return f"{prefix.strip().lower()} {text[start:end]!r}" if end > start else None
