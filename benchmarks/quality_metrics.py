"""The quality benchmark's measures, as plain functions of kept tokens and truth (docs/architecture.md,
"Quality benchmark"). Counts are returned, not ratios, so scenes and clips add up before dividing."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from omnisift_core.layout import AUDIO_TOKENS_PER_SECOND

Span = tuple[float, float]  # [start, end) seconds
_UTC_SPAN = re.compile(r"(\d\d:\d\d:\d\d) to (\d\d:\d\d:\d\d) UTC")


@dataclass
class Ratio:
    """hits / total, summed over frames, clips or scenes; None when there was nothing to find."""

    hits: float = 0.0
    total: float = 0.0

    def add(self, hits: float, total: float) -> None:
        self.hits += hits
        self.total += total

    @property
    def value(self) -> float | None:
        return self.hits / self.total if self.total else None


def kept_cells(video_keep: np.ndarray, frames: int, rows: int, cols: int) -> np.ndarray:
    """(frames, rows, cols) bool from the kept indices into a clip's video tokens (raster order per frame)."""
    mask = np.zeros(frames * rows * cols, bool)
    mask[np.asarray(video_keep, np.int64)] = True
    return mask.reshape(frames, rows, cols)


def changed_cell_recall(kept: np.ndarray, changed: np.ndarray, allowed: int) -> tuple[int, int]:
    """(hits, ceiling) over token-frames with a change: per frame, kept changed cells capped at the ceiling,
    and the ceiling min(changed cells, `allowed` tokens per frame at the fixed preset)."""
    changed_n = changed.reshape(len(changed), -1).sum(axis=1)
    hit_n = (kept & changed).reshape(len(changed), -1).sum(axis=1)
    ceiling = np.minimum(changed_n, allowed)
    return int(np.minimum(hit_n, ceiling).sum()), int(ceiling.sum())


def audio_token_spans(n_tokens: int, offset_s: float) -> np.ndarray:
    """(n, 2) [start, end) seconds of a clip's audio tokens (25 a second) from `offset_s`."""
    first = offset_s + np.arange(n_tokens) / AUDIO_TOKENS_PER_SECOND
    return np.stack([first, first + 1 / AUDIO_TOKENS_PER_SECOND], axis=1)


def tokens_inside(spans: np.ndarray, events: Iterable[Span]) -> np.ndarray:
    """(n,) bool: tokens whose centre lies inside any of the events."""
    centres = spans.mean(axis=1)
    inside = np.zeros(len(spans), bool)
    for start, end in events:
        inside |= (centres >= start) & (centres < end)
    return inside


def sound_token_recall(audio_keep: np.ndarray, inside: np.ndarray) -> tuple[int, int]:
    """(kept tokens inside sound events, tokens inside sound events) of one clip."""
    kept = np.zeros(len(inside), bool)
    kept[np.asarray(audio_keep, np.int64)] = True
    return int((kept & inside).sum()), int(inside.sum())


def overlaps(a: Span, b: Span, tolerance: float = 0.0) -> bool:
    return a[0] < b[1] + tolerance and b[0] < a[1] + tolerance


def is_quiet(span: Span, events: Iterable[Span]) -> bool:
    """No event overlaps `span`."""
    return not any(overlaps(span, e) for e in events)


@dataclass(frozen=True)
class Matching:
    found: int  # truth events some reported event overlaps
    truth: int
    correct: int  # reported events overlapping some truth event
    reported: int


def match_events(truth: Sequence[Span], reported: Sequence[Span], tolerance: float) -> Matching:
    """Recall (truth events overlapped by a reported one) and precision (reported events overlapping a
    truth event), both within `tolerance` seconds: a timeline event is whole 2-second chunks."""
    found = sum(any(overlaps(t, r, tolerance) for r in reported) for t in truth)
    correct = sum(any(overlaps(t, r, tolerance) for t in truth) for r in reported)
    return Matching(found, len(truth), correct, len(reported))


def seconds_on_truth(truth: Sequence[Span], reported: Sequence[Span], tolerance: float) -> tuple[float, float]:
    """(reported seconds within `tolerance` of a truth event, reported seconds): precision in time, which a
    timeline cannot game by merging everything into one long event."""
    merged: list[list[float]] = []
    for start, end in sorted((s - tolerance, e + tolerance) for s, e in truth):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    on = sum(max(0.0, min(e, te) - max(s, ts)) for s, e in reported for ts, te in merged)
    return on, sum(e - s for s, e in reported)


def quiet_ranges(events: Sequence[Span], duration: float, margin: float = 3.0, min_length: float = 2.0) -> list[Span]:
    """Stretches of [0, duration) at least `margin` seconds from every event, each at least `min_length` long."""
    cuts = sorted((max(0.0, s - margin), e + margin) for s, e in events)
    ranges, at = [], 0.0
    for start, end in [*cuts, (duration, duration)]:
        if start - at >= min_length:
            ranges.append((at, start))
        at = max(at, end)
    return ranges


def activity_spans(answer: str) -> list[tuple[str, str]]:
    """The UTC clock times of the activity a timeline answer reports, line by line ("cam: activity from
    14:00:12 to 14:00:14 UTC ..."; a camera in another zone adds ", 14:00:12 to 14:00:14 UTC"); lines
    saying "no activity" report none."""
    return [span for line in answer.splitlines() if "no activity" not in line for span in _UTC_SPAN.findall(line)]
