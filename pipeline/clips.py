"""The records a source yields: ClipWindow (a wall-clock-aligned clip of frames and audio) and Gap."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from pipeline.identifiers import clip_id_of

SAMPLE_RATE = 16_000  # Hz, what the audio encoder expects


@dataclass(frozen=True, eq=False)
class ClipWindow:
    """One camera's media for [start, end): frames sampled at `fps` and 16 kHz mono audio, all on wall-clock time.

    `start` is a multiple of the clip length since the epoch, so clip ids line up across cameras and a
    re-ingested file yields the same ids. Frames exist only where the source had video: a clip at the edge
    of a file or an outage holds fewer than clip_seconds * fps frames (see `frame_times`).
    """

    camera_id: str
    start: datetime  # UTC, tz-aware
    end: datetime  # start + clip_seconds
    frames: np.ndarray = field(repr=False)  # (N, H, W, 3) uint8 RGB
    frame_times: np.ndarray = field(repr=False)  # (N,) float64 seconds from `start`
    fps: float
    waveform: np.ndarray = field(repr=False)  # (clip_seconds * 16000,) float32 mono, silence where none
    sample_rate: int
    has_audio: bool  # False when the source has no audio stream
    source_pts: np.ndarray = field(repr=False)  # (N,) float64 source timestamps (s) of the frames
    lead_in: np.ndarray | None = field(default=None, repr=False)  # (H, W, 3) the previous clip's last frame

    @property
    def start_ms(self) -> int:
        return round(self.start.timestamp() * 1000)

    @property
    def clip_id(self) -> str:
        return clip_id_of(self.camera_id, self.start_ms)

    @property
    def clip_seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def frames_on_grid(self) -> np.ndarray:
        """(clip_seconds * fps, H, W, 3): one frame per sampling slot, each the nearest frame the source gave.

        Slots where the source had no video (a file starting mid-window, an outage) repeat their neighbour,
        so the model's frame k is always at k / fps seconds and the clip shows no motion where there was no data.
        """
        slots = np.arange(round(self.clip_seconds * self.fps)) / self.fps
        index = np.searchsorted(self.frame_times, slots).clip(0, len(self.frame_times) - 1)
        before = (index - 1).clip(0)
        nearer_before = np.abs(self.frame_times[before] - slots) < np.abs(self.frame_times[index] - slots)
        return self.frames[np.where(nearer_before, before, index)]

    def __repr__(self) -> str:
        n, h, w = self.frames.shape[:3]
        return (
            f"ClipWindow({self.clip_id}, {self.start.isoformat()}..{self.end.isoformat()}, "
            f"frames={n}x{w}x{h}@{self.fps:g}fps, audio={'yes' if self.has_audio else 'silence'})"
        )


@dataclass(frozen=True)
class Gap:
    """Time with no data from a camera, with why: an outage, a stall, dropped clips or a truncated file."""

    camera_id: str
    start: datetime  # UTC: wall-clock time of the last frame before the gap
    end: datetime  # UTC: wall-clock time of the first frame after it (or when the source gave up)
    reason: str

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()
