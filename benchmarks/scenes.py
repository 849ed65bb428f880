"""Monitoring scenes with ground truth for the quality benchmark (docs/architecture.md, "Quality benchmark").

A scene is a still camera: a textured background under slow lighting drift, with per-frame sensor noise,
written as H.264 (given CRF and keyframe interval) + AAC. Room tone (pink noise and 50 Hz mains hum, about
-40 dBFS) runs throughout. Events: objects entering a region, full-frame flashes, scene cuts, tones, noise
bursts and espeak-ng speech, each sound on screen (it coincides with a visible event) or off screen.

The truth is computed from the clean rendered pixels (before noise and compression) on the model's merged
token grid: a cell of token-frame g (sampled frames 2g and 2g+1 at the clip fps) changed when enough of
its 28 x 28 pixels differ from the sampled frame before. Long scenes may use a low source frame rate.
"""

from __future__ import annotations

import functools
import math
import subprocess
import tempfile
import wave
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np

from omnisift_core.config import MERGED_PATCH_PIXELS, FrameLimits
from omnisift_core.media import TEMPORAL_PATCH_SIZE, smart_resize

AUDIO_RATE = 48_000
ROOM_TONE_DBFS = -46.0  # pink noise; with the hum the room sits near -40 dBFS
HUM_DBFS = -42.0
CHANGED_LEVEL = 10  # a pixel changed when a channel moved by more than this (of 255): a dim figure in the dark
CHANGED_SHARE = 0.05  # a cell changed when this share of its pixels changed
SCENE_START = datetime(2024, 5, 1, 14, 0, tzinfo=timezone.utc)  # on the 10 s clip grid

EventKind = Literal["object", "flash", "cut", "tone", "noise", "speech"]
VISUAL_KINDS = ("object", "flash", "cut")
SOUND_KINDS = ("tone", "noise", "speech")


@dataclass(frozen=True)
class Event:
    """Something that happens during [start, end) seconds of a scene.

    Objects move from `path[0]` to `path[1]` (centre, fractions of the frame) with `size` (fractions);
    `region` is the pixel box (x0, y0, x1, y1) they sweep. Flashes and cuts cover the whole frame. Sounds
    say whether a visible event causes them (`on_screen`); speech carries its `text`.
    """

    kind: EventKind
    label: str
    start: float
    end: float
    on_screen: bool = True
    region: tuple[int, int, int, int] | None = None
    path: tuple[tuple[float, float], tuple[float, float]] | None = None
    size: tuple[float, float] | None = None
    color: tuple[int, int, int] | None = None
    frequency: float | None = None
    level_dbfs: float | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", round(self.start, 3))  # scene times are written to the millisecond
        object.__setattr__(self, "end", round(self.end, 3))

    @property
    def is_sound(self) -> bool:
        return self.kind in SOUND_KINDS

    def box_at(self, t: float, width: int, height: int) -> tuple[int, int, int, int]:
        """Pixel box of an object at time t, end-exclusive, clamped to the frame."""
        a = min(max((t - self.start) / max(self.end - self.start, 1e-9), 0.0), 1.0)
        (x0, y0), (x1, y1) = self.path
        cx, cy = (x0 + a * (x1 - x0)) * width, (y0 + a * (y1 - y0)) * height
        hw, hh = self.size[0] * width / 2, self.size[1] * height / 2
        return max(0, round(cx - hw)), max(0, round(cy - hh)), min(width, round(cx + hw)), min(height, round(cy + hh))


@dataclass(frozen=True)
class SceneSpec:
    """How to render a scene; `events` are its truth (sound ends follow the rendered speech)."""

    name: str
    duration: float
    events: tuple[Event, ...]
    fps: float = 10.0  # source frame rate
    width: int = 448
    height: int = 252
    crf: int = 23
    keyframe_s: float = 2.0
    brightness: float = 1.0  # 0.15: a dark scene
    noise_sigma: float = 3.0  # sensor noise, pixel levels
    drift: float = 0.04  # lighting drift amplitude (share of brightness), period `drift_period_s`
    drift_period_s: float = 240.0
    seed: int = 0

    @property
    def start_time(self) -> datetime:
        return SCENE_START


@dataclass(frozen=True)
class SceneTruth:
    """What a scene holds: its events and, per token-frame, the truly changed cells of the merged grid."""

    name: str
    duration: float
    rows: int
    cols: int
    token_fps: float  # token-frames per second (clip fps / 2)
    events: tuple[Event, ...]
    changed: np.ndarray = field(repr=False)  # (token_frames, rows, cols) bool

    def sounds(self, on_screen: bool | None = None) -> tuple[Event, ...]:
        return tuple(e for e in self.events if e.is_sound and (on_screen is None or e.on_screen == on_screen))

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "duration": self.duration,
            "grid": [self.rows, self.cols],
            "token_fps": self.token_fps,
            "events": [{k: v for k, v in asdict(e).items() if v is not None} for e in self.events],
            "changed_cells": np.argwhere(self.changed).tolist(),  # [token-frame, row, col], frame g at g / token_fps
        }


@dataclass(frozen=True)
class Scene:
    spec: SceneSpec
    path: Path
    truth: SceneTruth


# ---- sounds ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def speech_samples(text: str) -> np.ndarray:
    """espeak-ng saying `text`, at AUDIO_RATE, silence trimmed, peak 0.5 (float32)."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, capture_output=True)
        with wave.open(str(wav)) as reader:
            rate = reader.getframerate()
            pcm = np.frombuffer(reader.readframes(reader.getnframes()), np.int16).astype(np.float32) / 32768
    voiced = np.flatnonzero(np.abs(pcm) > 0.02)
    pcm = pcm[voiced[0] : voiced[-1] + 1]
    out = np.interp(np.arange(round(len(pcm) * AUDIO_RATE / rate)) * rate / AUDIO_RATE, np.arange(len(pcm)), pcm)
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def speech(text: str, start: float, on_screen: bool, label: str | None = None) -> Event:
    """A speech event whose end is where the rendered speech ends."""
    seconds = len(speech_samples(text)) / AUDIO_RATE
    return Event("speech", label or f"voice: {text}", start, round(start + seconds, 3), on_screen, text=text)


def _sound_samples(event: Event, seed: int) -> np.ndarray:
    if event.kind == "speech":
        return speech_samples(event.text)
    n = round((event.end - event.start) * AUDIO_RATE)
    k = np.arange(n, dtype=np.float32)
    amplitude = 10 ** ((event.level_dbfs or -15.0) / 20) * math.sqrt(2)
    if event.kind == "tone":
        wave_ = np.sin(2 * np.pi * event.frequency * k / AUDIO_RATE)
        envelope = np.minimum(1.0, np.minimum(k, n - k) / (0.01 * AUDIO_RATE))
    else:  # noise burst: a sharp attack and an exponential decay, like a door or a bang
        wave_ = np.random.default_rng(seed).normal(0.0, 1 / math.sqrt(2), n)
        envelope = np.minimum(1.0, k / (0.003 * AUDIO_RATE)) * np.exp(-3.0 * k / max(n, 1))
    return (amplitude * wave_ * envelope).astype(np.float32)


def _room_tone_loop(seed: int, seconds: int = 10) -> np.ndarray:
    """A seamless loop of pink noise at ROOM_TONE_DBFS (synthesised in the frequency domain: it wraps)."""
    rng = np.random.default_rng(seed + 1000)
    n = seconds * AUDIO_RATE
    freqs = np.fft.rfftfreq(n, 1 / AUDIO_RATE)
    spectrum = (rng.normal(size=freqs.size) + 1j * rng.normal(size=freqs.size)) / np.sqrt(np.maximum(freqs, 20.0))
    noise = np.fft.irfft(spectrum, n)
    return (noise / noise.std() * 10 ** (ROOM_TONE_DBFS / 20)).astype(np.float32)


class Soundtrack:
    """The scene's audio on demand (a 20-minute scene is not held in memory): room tone, hum and events."""

    def __init__(self, spec: SceneSpec) -> None:
        self.loop = _room_tone_loop(spec.seed)
        self.hum = 10 ** (HUM_DBFS / 20) * math.sqrt(2)
        sounds = [(i, e) for i, e in enumerate(spec.events) if e.is_sound]
        self.sounds = [(round(e.start * AUDIO_RATE), _sound_samples(e, spec.seed + i)) for i, e in sounds]

    def samples(self, first: int, n: int) -> np.ndarray:
        index = np.arange(first, first + n)
        t = index / AUDIO_RATE
        out = self.loop[index % len(self.loop)].astype(np.float64)
        out += self.hum * (np.sin(2 * np.pi * 50 * t) + 0.4 * np.sin(2 * np.pi * 100 * t + 0.3))
        for start, sound in self.sounds:
            lo, hi = max(first, start), min(first + n, start + len(sound))
            if lo < hi:
                out[lo - first : hi - first] += sound[lo - start : hi - start]
        return np.clip(out, -1.0, 1.0).astype(np.float32)


# ---- pictures -------------------------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    coarse = rng.normal(size=(height // cell + 2, width // cell + 2))
    y, x = np.arange(height) / cell, np.arange(width) / cell
    y0, x0 = y.astype(int), x.astype(int)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    c = coarse
    return (
        c[y0][:, x0] * (1 - fy) * (1 - fx)
        + c[y0 + 1][:, x0] * fy * (1 - fx)
        + c[y0][:, x0 + 1] * (1 - fy) * fx
        + c[y0 + 1][:, x0 + 1] * fy * fx
    )


def background(width: int, height: int, seed: int) -> np.ndarray:
    """(H, W, 3) float32: a textured still view (sky, buildings with windows, a road), different per seed."""
    rng = np.random.default_rng(seed)
    img = np.empty((height, width, 3), np.float32)
    horizon = int((0.45 + 0.15 * rng.random()) * height)
    sky = np.linspace(0.0, 1.0, horizon, dtype=np.float32)[:, None, None]
    img[:horizon] = rng.uniform(70, 120, 3) + sky * rng.uniform(20, 70, 3)
    img[horizon:] = rng.uniform(60, 110, 3)
    for _ in range(rng.integers(2, 5)):  # buildings
        x0 = int(rng.uniform(0, 0.8) * width)
        x1, y0 = min(width, x0 + int(rng.uniform(0.12, 0.3) * width)), int(rng.uniform(0.1, 0.35) * height)
        img[y0:horizon, x0:x1] = rng.uniform(80, 160, 3)
        for wy in range(y0 + 6, horizon - 8, 14):
            for wx in range(x0 + 4, x1 - 8, 12):
                img[wy : wy + 7, wx : wx + 6] = rng.uniform(30, 200, 3) if rng.random() < 0.3 else (50, 60, 80)
    road = int(0.78 * height)
    img[road : road + int(0.1 * height)] = rng.uniform(40, 65)
    img += 14 * _smooth_noise(rng, height, width, 24)[..., None]  # stains, shade
    img += rng.normal(0.0, 6.0, (height, width, 1))  # fine texture (fixed: part of the view)
    return np.clip(img, 0, 255)


def _object_texture(event: Event, height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    stripes = 0.75 + 0.25 * ((yy // 4 + xx // 6) % 2)
    return np.asarray(event.color, np.float32) * stripes[..., None]


class Renderer:
    """Clean frames of a scene at any time: the truth is computed from these, the file adds noise to them."""

    def __init__(self, spec: SceneSpec) -> None:
        self.spec = spec
        cuts = sorted(e.start for e in spec.events if e.kind == "cut")
        self.cuts = cuts
        self.views = [background(spec.width, spec.height, spec.seed + i) for i in range(len(cuts) + 1)]

    def frame(self, t: float) -> np.ndarray:
        """(H, W, 3) float32 in [0, 255]."""
        spec = self.spec
        view = self.views[sum(1 for c in self.cuts if c <= t)]
        img = view.copy()
        for event in spec.events:
            if event.kind == "object" and event.start <= t < event.end:
                x0, y0, x1, y1 = event.box_at(t, spec.width, spec.height)
                if x1 > x0 and y1 > y0:
                    img[y0:y1, x0:x1] = _object_texture(event, y1 - y0, x1 - x0)
        gain = spec.brightness * (1 + spec.drift * math.sin(2 * math.pi * t / spec.drift_period_s))
        img *= gain
        if any(e.kind == "flash" and e.start <= t < e.end for e in spec.events):
            img = img * 1.8 + 60
        return np.clip(img, 0, 255)


# ---- files and truth ------------------------------------------------------------------------------------


def token_grid(width: int, height: int, limits: FrameLimits | None = None) -> tuple[int, int]:
    """(rows, cols) of the merged token grid after the encoder's resize (omnisift_core.media.smart_resize)."""
    limits = limits or FrameLimits()
    h, w = smart_resize(height, width, limits.min_pixels, limits.max_pixels)
    return h // MERGED_PATCH_PIXELS, w // MERGED_PATCH_PIXELS


def changed_cells(before: np.ndarray, after: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(rows, cols) bool: cells where at least CHANGED_SHARE of the pixels moved by more than CHANGED_LEVEL.

    Frames are resized to the grid first when their size is not rows x cols cells of 28 px (nearest)."""
    diff = np.abs(after.astype(np.float32) - before.astype(np.float32)).max(axis=-1) > CHANGED_LEVEL
    height, width = rows * MERGED_PATCH_PIXELS, cols * MERGED_PATCH_PIXELS
    if diff.shape != (height, width):
        ys = (np.arange(height) * diff.shape[0] / height).astype(int)
        xs = (np.arange(width) * diff.shape[1] / width).astype(int)
        diff = diff[ys][:, xs]
    share = diff.reshape(rows, MERGED_PATCH_PIXELS, cols, MERGED_PATCH_PIXELS).mean(axis=(1, 3))
    return share >= CHANGED_SHARE


def scene_truth(spec: SceneSpec, clip_fps: float = 2.0, limits: FrameLimits | None = None) -> SceneTruth:
    """The truth of a scene sampled at `clip_fps`: token-frame g holds sampled frames 2g and 2g+1."""
    rows, cols = token_grid(spec.width, spec.height, limits)
    renderer = Renderer(spec)
    n_samples = round(spec.duration * clip_fps)
    n_samples -= n_samples % TEMPORAL_PATCH_SIZE
    changed = np.zeros((n_samples // TEMPORAL_PATCH_SIZE, rows, cols), bool)
    previous = renderer.frame(0.0)
    for s in range(1, n_samples):
        current = renderer.frame(s / clip_fps)
        changed[s // TEMPORAL_PATCH_SIZE] |= changed_cells(previous, current, rows, cols)
        previous = current
    return SceneTruth(spec.name, spec.duration, rows, cols, clip_fps / TEMPORAL_PATCH_SIZE, spec.events, changed)


def write_scene(spec: SceneSpec, directory: Path, clip_fps: float = 2.0) -> Scene:
    """Render `spec` to directory/<name>.mp4 (H.264 at its CRF and keyframe interval, AAC) and its truth."""
    path = Path(directory) / f"{spec.name}.mp4"
    renderer, track = Renderer(spec), Soundtrack(spec)
    rng = np.random.default_rng(spec.seed + 7)
    # fresh sensor noise per frame, drawn from a bank with random shifts (a 20-minute scene stays cheap)
    bank = rng.normal(0.0, spec.noise_sigma, (8, spec.height, spec.width, 1)).astype(np.float32)
    gop = max(1, round(spec.keyframe_s * spec.fps))
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as out:
        out.metadata["creation_time"] = spec.start_time.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        rate = Fraction(spec.fps).limit_denominator(1001)
        video = out.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = spec.width, spec.height, "yuv420p"
        video.time_base = 1 / rate
        video.codec_context.gop_size = gop
        video.codec_context.options = {
            "preset": "veryfast",
            "crf": str(spec.crf),
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0",  # a camera's fixed GOP
        }
        audio = out.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        audio.time_base = Fraction(1, AUDIO_RATE)
        n_frames = math.ceil(spec.duration * spec.fps - 1e-9)
        total_samples, written = round(spec.duration * AUDIO_RATE), 0
        for i in range(n_frames):
            noise = np.roll(bank[i % len(bank)], (rng.integers(spec.height), rng.integers(spec.width)), axis=(0, 1))
            image = np.clip(renderer.frame(i / spec.fps) + noise, 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
            until = total_samples if i == n_frames - 1 else min(total_samples, round((i + 1) / spec.fps * AUDIO_RATE))
            while written < until:
                n = min(1024, until - written)
                aframe = av.AudioFrame.from_ndarray(track.samples(written, n)[None, :], format="flt", layout="mono")
                aframe.sample_rate, aframe.pts = AUDIO_RATE, written
                out.mux(audio.encode(aframe))
                written += n
        out.mux(video.encode(None))
        out.mux(audio.encode(None))
    return Scene(spec, path, scene_truth(spec, clip_fps))


# ---- the benchmark's scenes -----------------------------------------------------------------------------


def object_event(label: str, start: float, end: float, path, size, color, width=448, height=252) -> Event:
    """An object moving along `path`; its region is the box it sweeps."""
    event = Event("object", label, start, end, path=path, size=size, color=color)
    boxes = [event.box_at(start + a * (end - start), width, height) for a in np.linspace(0, 1, 21)]
    region = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
    return Event("object", label, start, end, region=region, path=path, size=size, color=color)


def benchmark_scenes(quick: bool = False) -> tuple[SceneSpec, ...]:
    """The scenes `omnisift bench quality` measures; quick: short versions (and a 1-minute static scene)."""
    scale = 0.5 if quick else 1.0

    def at(seconds: float) -> float:
        return round(seconds * scale, 2)

    street = SceneSpec(
        "street",
        at(40),
        (
            object_event("person enters the doorway", at(4.3), at(9.6), ((0.12, 0.7), (0.32, 0.66)), (0.07, 0.3),
                    (200, 40, 40)),
            Event("noise", "door slams (on screen)", at(4.3), at(4.3) + 0.5, True, level_dbfs=-14),
            Event("tone", "phone rings off screen", at(12.2), at(12.2) + 1.6, False, frequency=880, level_dbfs=-20),
            object_event("car crosses", at(21.1), at(27.7), ((0.95, 0.84), (0.05, 0.84)), (0.2, 0.12), (30, 70, 200)),
            speech("Hello, is anyone there?", at(31.4), False),
        ),
        seed=1,
    )  # fmt: skip
    flash_cut = SceneSpec(
        "flash-and-cut",
        at(40),
        (
            Event("flash", "lights flash", at(5.2), at(5.2) + 0.6),
            Event("noise", "bang with the flash (on screen)", at(5.2), at(5.2) + 0.6, True, level_dbfs=-10),
            Event("cut", "camera switches view", at(18.0), at(18.0) + 0.5),
            object_event("person walks in and talks", at(26.3), at(33.0), ((0.7, 0.6), (0.5, 0.6)), (0.08, 0.3),
                    (220, 180, 40)),
            speech("Please wait here.", at(27.1), True),
        ),
        seed=11,
    )  # fmt: skip
    dark = SceneSpec(
        "dark",
        at(40),
        (
            object_event("dim figure crosses", at(6.2), at(14.8), ((0.1, 0.7), (0.6, 0.7)), (0.08, 0.3),
                         (230, 220, 210)),
            speech("Who turned off the lights?", at(19.3), False),
            Event("noise", "something falls in the dark (unseen)", at(28.7), at(28.7) + 0.4, False, level_dbfs=-16),
        ),
        brightness=0.18,
        noise_sigma=5.0,
        seed=21,
    )  # fmt: skip
    minutes = 1.0 if quick else 20.0

    def late(share: float) -> float:
        return round(share * 60 * minutes, 2)

    static = SceneSpec(
        f"static-{minutes:g}min",
        60 * minutes,
        (
            object_event("van parks", late(0.27), late(0.27) + 7, ((1.0, 0.8), (0.7, 0.8)), (0.24, 0.16),
                    (240, 240, 235)),
            Event("noise", "van door (on screen)", late(0.27), late(0.27) + 0.4, True,
                  level_dbfs=-16),
            speech("Delivery for unit four.", late(0.55), False),
            Event("tone", "alarm beeps off screen", late(0.85), late(0.85) + 2.0, False,
                  frequency=2000, level_dbfs=-18),
        ),
        fps=4.0 if not quick else 10.0,
        crf=30,
        keyframe_s=10.0,
        noise_sigma=6.0,  # an indoor camera with its gain up: about 3 Mbit/s at 1080p for this CRF
        drift=0.06,
        drift_period_s=300.0,
        seed=31,
    )  # fmt: skip
    return street, flash_cut, dark, static
