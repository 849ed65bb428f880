"""A CCTV-style sample video with a known event schedule, written with PyAV (H.264 + AAC in MP4 by default).

A mostly static scene (sky, building, road, fixed sensor noise) where coloured objects appear and
move, and tones or noise bursts sound, at given times. Tests decode it back and check the times;
`omnisift demo` ingests it and asks about the events it knows happened.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np


@dataclass(frozen=True)
class SceneEvent:
    """Something that happens in the sample video during [start, end) seconds from its first frame.

    An "object" is a filled rectangle whose centre moves in a straight line from `path[0]` to `path[1]`
    (fractions of the frame) with size `size` (fractions of width, height). A "sound" is a sine tone at
    `frequency` Hz, or a white-noise burst when `frequency` is None, with peak amplitude `level`.
    """

    kind: Literal["object", "sound"]
    label: str
    start: float
    end: float
    color: tuple[int, int, int] = (220, 30, 30)
    path: tuple[tuple[float, float], tuple[float, float]] = ((0.25, 0.7), (0.75, 0.7))
    size: tuple[float, float] = (0.12, 0.22)
    frequency: float | None = 1000.0
    level: float = 0.5

    def active_at(self, t: float) -> bool:
        return self.start <= t < self.end

    def box_at(self, t: float, width: int, height: int) -> tuple[int, int, int, int]:
        """Pixel box (x0, y0, x1, y1), end-exclusive, of an object at time t (clamped to the frame)."""
        a = 0.0 if self.end <= self.start else min(max((t - self.start) / (self.end - self.start), 0.0), 1.0)
        (x0, y0), (x1, y1) = self.path
        cx, cy = (x0 + a * (x1 - x0)) * width, (y0 + a * (y1 - y0)) * height
        hw, hh = self.size[0] * width / 2, self.size[1] * height / 2
        return (
            max(0, round(cx - hw)),
            max(0, round(cy - hh)),
            min(width, round(cx + hw)),
            min(height, round(cy + hh)),
        )


@dataclass(frozen=True)
class SampleMedia:
    """What `write_sample_video` wrote: where, its format, and the events that happen in it."""

    path: Path
    width: int
    height: int
    fps: float
    duration: float
    sample_rate: int
    has_video: bool
    has_audio: bool
    creation_time: datetime | None
    events: tuple[SceneEvent, ...]

    def objects(self) -> tuple[SceneEvent, ...]:
        return tuple(e for e in self.events if e.kind == "object")

    def sounds(self) -> tuple[SceneEvent, ...]:
        return tuple(e for e in self.events if e.kind == "sound")


def default_events(duration: float) -> tuple[SceneEvent, ...]:
    """A schedule that scales with `duration`: a person walks by, a car crosses, a door alarm, a bang."""

    def at(share: float) -> float:
        return round(share * duration, 2)

    return (
        SceneEvent("object", "red person walking right", at(0.15), at(0.45), (220, 30, 30),
                   ((0.15, 0.72), (0.6, 0.72))),
        SceneEvent("object", "blue car driving left", at(0.55), at(0.85), (30, 60, 220),
                   ((0.85, 0.82), (0.2, 0.82)), size=(0.22, 0.14)),
        SceneEvent("sound", "alarm tone 1 kHz", at(0.3), at(0.3) + 1.0, frequency=1000.0, level=0.5),
        SceneEvent("sound", "bang (noise burst)", at(0.7), at(0.7) + 0.4, frequency=None, level=0.6),
    )  # fmt: skip


def write_sample_video(
    path: str | Path,
    *,
    width: int = 640,
    height: int = 360,
    fps: float = 10.0,
    duration: float = 12.0,
    events: Sequence[SceneEvent] | None = None,
    creation_time: datetime | None = None,
    video: bool = True,
    audio: bool = True,
    sample_rate: int = 44_100,
    video_codec: str = "libx264",
    audio_codec: str = "aac",
    container_format: str | None = None,
    muxer_options: dict[str, str] | None = None,
    faststart: bool = True,
    gop_seconds: float = 2.0,
    grain: float = 0.0,
    seed: int = 0,
) -> SampleMedia:
    """Write the sample video to `path` and return its description.

    The format follows the suffix unless `container_format` is given (e.g. "hls" with
    `muxer_options={"hls_time": "2"}` writes a playlist and segments beside it). `grain` adds temporal
    sensor noise of that standard deviation (pixel levels), as a real camera has, especially at night.
    """
    if not (video or audio):
        raise ValueError("a sample needs video, audio or both")
    if width % 2 or height % 2:
        raise ValueError(f"width and height must be even for yuv420p, got {width}x{height}")
    path = Path(path)
    events = tuple(default_events(duration) if events is None else events)
    rng = np.random.default_rng(seed)
    options = {"movflags": "+faststart"} if faststart and path.suffix.lower() in (".mp4", ".mov", ".m4a") else {}
    options |= muxer_options or {}

    with av.open(str(path), "w", format=container_format, options=options) as out:
        if creation_time is not None:
            stamp = creation_time.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            out.metadata["creation_time"] = stamp
        vstream = astream = None
        if video:
            rate = Fraction(fps).limit_denominator(1001)
            vstream = out.add_stream(video_codec, rate=rate)
            vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
            vstream.time_base = 1 / rate
            vstream.codec_context.gop_size = max(1, round(gop_seconds * fps))
            if video_codec == "libx264":
                vstream.codec_context.options = {"preset": "veryfast", "crf": "23"}
        if audio:
            astream = out.add_stream(audio_codec, rate=sample_rate, layout="mono")
            astream.time_base = Fraction(1, sample_rate)

        background = _background(width, height, rng) if video else None
        noise = _grain_bank(width, height, grain, rng) if video and grain > 0 else None
        track = _soundtrack(events, duration, sample_rate, rng) if audio else None
        n_frames = math.ceil(duration * fps - 1e-9) if video else 0
        audio_chunk = 1024  # AAC frame size
        audio_written = 0
        n_samples = track.shape[0] if track is not None else 0

        for i in range(max(n_frames, 1)):
            t = i / fps
            if vstream is not None and i < n_frames:
                image = _render(background, events, t)
                if noise is not None:  # a different sensor-noise pattern every frame, as a real camera has
                    image = np.clip(image + noise[i % len(noise)], 0, 255).astype(np.uint8)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = i
                out.mux(vstream.encode(frame))
            # keep audio up to the video time, so the muxer interleaves evenly
            audio_until = n_samples if i == max(n_frames, 1) - 1 else min(n_samples, round((t + 1 / fps) * sample_rate))
            while astream is not None and audio_written < audio_until:
                chunk = track[audio_written : audio_written + audio_chunk]
                aframe = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
                aframe.sample_rate = sample_rate
                aframe.pts = audio_written
                out.mux(astream.encode(aframe))
                audio_written += chunk.shape[0]
        for stream in (vstream, astream):
            if stream is not None:
                out.mux(stream.encode(None))

    return SampleMedia(
        path=path,
        width=width if video else 0,
        height=height if video else 0,
        fps=fps if video else 0.0,
        duration=duration,
        sample_rate=sample_rate if audio else 0,
        has_video=video,
        has_audio=audio,
        creation_time=creation_time,
        events=events,
    )


def _background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A static street scene: sky gradient, a building with windows, a road; fixed sensor noise."""
    img = np.empty((height, width, 3), np.float32)
    horizon = int(0.55 * height)
    sky = np.linspace(0.0, 1.0, horizon, dtype=np.float32)[:, None, None]
    img[:horizon] = (90, 110, 140) + sky * (60, 50, 40)
    img[horizon:] = (85, 85, 80)  # ground
    road_top, road_bottom = int(0.76 * height), int(0.9 * height)
    img[road_top:road_bottom] = (55, 55, 58)
    img[int(0.83 * height) : int(0.84 * height), :: max(1, width // 16)] = (200, 200, 190)
    bx0, bx1, by0 = int(0.05 * width), int(0.35 * width), int(0.2 * height)
    img[by0:horizon, bx0:bx1] = (120, 100, 90)
    for wy in range(by0 + height // 20, horizon - height // 20, max(2, height // 10)):
        for wx in range(bx0 + width // 40, bx1 - width // 40, max(2, width // 20)):
            img[wy : wy + height // 30, wx : wx + width // 40] = (60, 70, 90)
    img += rng.normal(0.0, 3.0, size=(height, width, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _grain_bank(width: int, height: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """(7, H, W, 1) int16 sensor-noise patterns to cycle through: fresh noise per frame costs too much at 1080p."""
    return np.round(rng.normal(0.0, sigma, size=(7, height, width, 1))).astype(np.int16)


def _render(background: np.ndarray, events: Sequence[SceneEvent], t: float) -> np.ndarray:
    height, width = background.shape[:2]
    frame = background.copy()
    for event in events:
        if event.kind == "object" and event.active_at(t):
            x0, y0, x1, y1 = event.box_at(t, width, height)
            frame[y0:y1, x0:x1] = event.color
    return frame


def _soundtrack(events: Sequence[SceneEvent], duration: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """(duration * rate,) float32: faint room noise plus each sound event with 5 ms fades."""
    n = round(duration * rate)
    track = rng.normal(0.0, 0.003, n).astype(np.float32)
    for event in events:
        if event.kind != "sound":
            continue
        i0, i1 = max(0, round(event.start * rate)), min(n, round(event.end * rate))
        if i1 <= i0:
            continue
        k = np.arange(i1 - i0, dtype=np.float32)
        if event.frequency is None:
            burst = rng.uniform(-1.0, 1.0, i1 - i0).astype(np.float32)
        else:
            burst = np.sin(2 * np.pi * event.frequency * k / rate).astype(np.float32)
        fade = min(len(k) // 2, round(0.005 * rate))
        envelope = np.ones_like(k)
        if fade:
            ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
            envelope[:fade], envelope[-fade:] = ramp, ramp[::-1]
        track[i0:i1] += event.level * burst * envelope
    return np.clip(track, -1.0, 1.0)
