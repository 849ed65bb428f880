"""What a stored clip kept, token by token, read without its embeddings: the video cells as (frame, row, col),
the audio token indices, their times and the scores the compressor ranked them by (GET /v1/clips/{id}?detail=tokens).

Positions are the kept tokens' own TMRoPE positions (docs/architecture.md, "Token positions"): a video token's
(h, w) is its merged-grid cell and its time puts it in a frame; an audio token's t is its index in the clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.errors import SchemaMismatch
from pipeline.records import ClipMeta

DETAIL_FIELDS = ("v.pos", "v.time", "v.score", "a.pos", "a.time", "a.score")


@dataclass(frozen=True)
class KeptVideo:
    cells: tuple[tuple[int, int, int], ...]  # (frame, row, col) in the merged grid, in stored order
    times: tuple[float, ...]  # seconds from the clip start
    scores: tuple[float | None, ...] | None  # None: stored before scores were kept; None inside: not finite


@dataclass(frozen=True)
class KeptAudio:
    indices: tuple[int, ...]  # index of the token among the clip's source audio tokens (25 per second)
    times: tuple[float, ...]  # seconds from the clip start
    scores: tuple[float | None, ...] | None


@dataclass(frozen=True)
class TokenDetail:
    meta: ClipMeta
    frame_offsets: tuple[float, ...]  # seconds from the clip start of each merged-grid frame
    video: KeptVideo
    audio: KeptAudio

    @property
    def scores_known(self) -> bool:
        return self.video.scores is not None and self.audio.scores is not None


def seconds_per_frame(meta: ClipMeta) -> float:
    """Seconds between merged-grid frames: the encoder samples the whole clip on a fixed grid, so the grid's
    frames divide the clip's duration evenly."""
    return (meta.end_ms - meta.start_ms) / 1000 / max(meta.grid.frames, 1)


def decode_token_detail(meta: ClipMeta, raw: dict[str, bytes | None]) -> TokenDetail:
    """`raw` maps DETAIL_FIELDS to the clip hash's values (None where a field is absent)."""
    n_v, n_a = meta.kept_counts
    v_pos = _array(raw, "v.pos", "<i4", n_v * 3).reshape(3, n_v)
    v_time = _array(raw, "v.time", "<f4", n_v)
    a_pos = _array(raw, "a.pos", "<i4", n_a * 3).reshape(3, n_a)
    step = seconds_per_frame(meta)
    frames = np.rint(v_time / step).astype(np.int64).clip(0, max(meta.grid.frames - 1, 0))
    cells = tuple(zip(frames.tolist(), v_pos[1].tolist(), v_pos[2].tolist(), strict=True))
    return TokenDetail(
        meta=meta,
        frame_offsets=tuple(round(f * step, 4) for f in range(meta.grid.frames)),
        video=KeptVideo(cells, _rounded(v_time), _scores(raw, "v.score", n_v)),
        audio=KeptAudio(
            tuple(a_pos[0].tolist()), _rounded(_array(raw, "a.time", "<f4", n_a)), _scores(raw, "a.score", n_a)
        ),
    )


def _array(raw: dict[str, bytes | None], name: str, dtype: str, count: int) -> np.ndarray:
    data = raw.get(name)
    if data is None:
        raise SchemaMismatch(f"stored clip lacks the field {name}")
    array = np.frombuffer(data, dtype=np.dtype(dtype))
    if array.size != count:
        raise SchemaMismatch(f"stored field {name} holds {array.size} values, the metadata says {count}")
    return array


def _scores(raw: dict[str, bytes | None], name: str, count: int) -> tuple[float | None, ...] | None:
    if raw.get(name) is None:
        return None
    return tuple(float(s) if math.isfinite(s) else None for s in _array(raw, name, "<f4", count).tolist())


def _rounded(times: np.ndarray) -> tuple[float, ...]:
    return tuple(round(t, 4) for t in times.tolist())
