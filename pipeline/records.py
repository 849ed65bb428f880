"""What the anchor store keeps per clip: the record written at ingest, and the metadata read back without tokens."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from omnisift_core.layout import SECONDS_PER_CHUNK, VideoGrid
from pipeline.errors import InvalidRecord
from pipeline.identifiers import check_camera_id, clip_id_of

if TYPE_CHECKING:
    from torch import Tensor

    from omnisift_core.tokens import ClipTokens

SCHEMA_VERSION = 1


def to_ms(instant: datetime) -> int:
    """Milliseconds since the epoch of a tz-aware datetime (the store's time key)."""
    if instant.tzinfo is None:
        raise InvalidRecord(f"time {instant.isoformat()} has no timezone; the store only takes tz-aware times")
    return round(instant.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def chunk_count(start: datetime, end: datetime) -> int:
    """Number of 2-second chunks a clip spans (a short tail counts as a chunk)."""
    return max(1, math.ceil((end - start).total_seconds() / SECONDS_PER_CHUNK - 1e-9))


@dataclass(frozen=True)
class ChunkScores:
    """Per 2-second chunk, each in [0, 1]: share of video cells that changed, audio salience, and the
    voice-activity model's speech probability (empty when not measured: clips without audio, older records)."""

    activity: tuple[float, ...]
    audio_salience: tuple[float, ...]
    speech: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if len(self.activity) != len(self.audio_salience):
            raise InvalidRecord(
                f"activity has {len(self.activity)} chunks but audio_salience {len(self.audio_salience)}"
            )
        if self.speech and len(self.speech) != len(self.activity):
            raise InvalidRecord(f"activity has {len(self.activity)} chunks but speech {len(self.speech)}")
        for name, values in (
            ("activity", self.activity),
            ("audio_salience", self.audio_salience),
            ("speech", self.speech),
        ):
            if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values):
                raise InvalidRecord(f"{name} scores must be finite and in [0, 1], got {list(values)}")

    @classmethod
    def quiet(cls, num_chunks: int) -> ChunkScores:
        return cls((0.0,) * num_chunks, (0.0,) * num_chunks)

    def peaks(self) -> tuple[float, float]:
        """The clip's strongest chunk by activity and by audio salience, rounded as the API reports them."""
        return round(max(self.activity, default=0.0), 4), round(max(self.audio_salience, default=0.0), 4)

    def speech_at(self, chunk: int) -> float:
        return self.speech[chunk] if self.speech else 0.0


@dataclass(frozen=True)
class StillInfo:
    """A clip's still: the merged-grid video frame it shows (so its kept cells can be drawn over it), that
    frame's offset from the clip start, and the JPEG's size in pixels."""

    frame: int
    offset_s: float
    width: int
    height: int

    def to_json(self) -> dict:
        return {"frame": self.frame, "offset_s": self.offset_s, "width": self.width, "height": self.height}

    @classmethod
    def from_json(cls, data: dict) -> StillInfo:
        return cls(int(data["frame"]), float(data["offset_s"]), int(data["width"]), int(data["height"]))


@dataclass(frozen=True)
class ClipStill:
    """A small JPEG of one frame of the clip, stored with its record (docs/architecture.md, "Store schema")."""

    info: StillInfo
    jpeg: bytes = field(repr=False)


@dataclass(frozen=True)
class ClipRecord:
    """One compressed clip as ingest hands it to the store: kept tokens (original positions) and their context."""

    camera_id: str
    start: datetime  # tz-aware; stored as UTC milliseconds
    end: datetime
    tokens: ClipTokens  # the kept tokens of a Compression
    fingerprint: str  # model + compressor; tokens of different fingerprints are never mixed
    source_counts: tuple[int, int]  # (video, audio) tokens before compression
    scores: ChunkScores
    has_audio: bool = True
    noise_floor_dbfs: float | None = None  # the camera's audio noise floor after this clip (None: unmeasured)
    video_scores: Tensor | None = None  # (K_v,) the score the compressor ranked each kept video token by
    audio_scores: Tensor | None = None  # (K_a,) the same for each kept audio token
    still: ClipStill | None = None

    def __post_init__(self) -> None:
        check_camera_id(self.camera_id)
        for name, scores, stream in (
            ("video", self.video_scores, self.tokens.video),
            ("audio", self.audio_scores, self.tokens.audio),
        ):
            if scores is not None and tuple(scores.shape) != (len(stream),):
                raise InvalidRecord(f"{name} scores have shape {tuple(scores.shape)}, {len(stream)} tokens were kept")
        if to_ms(self.end) <= to_ms(self.start):
            raise InvalidRecord(f"clip end {self.end.isoformat()} is not after its start {self.start.isoformat()}")
        if not self.fingerprint:
            raise InvalidRecord("a clip record needs the model+compressor fingerprint")
        kept = (len(self.tokens.video), len(self.tokens.audio))
        if any(k > s for k, s in zip(kept, self.source_counts, strict=True)):
            raise InvalidRecord(f"kept counts {kept} exceed the source counts {self.source_counts}")
        if len(self.scores.activity) != self.num_chunks:
            raise InvalidRecord(
                f"a {self.duration.total_seconds():g} s clip has {self.num_chunks} chunks, "
                f"but {len(self.scores.activity)} chunk scores were given"
            )

    @property
    def start_ms(self) -> int:
        return to_ms(self.start)

    @property
    def end_ms(self) -> int:
        return to_ms(self.end)

    @property
    def clip_id(self) -> str:
        return clip_id_of(self.camera_id, self.start_ms)

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def num_chunks(self) -> int:
        return chunk_count(self.start, self.end)


@dataclass(frozen=True)
class ClipMeta:
    """A stored clip without its tokens: what the planner, the timeline and GET /v1/clips read."""

    camera_id: str
    start_ms: int
    end_ms: int
    fingerprint: str
    encoding: str  # "float16" | "int8"
    hidden_size: int
    grid: VideoGrid
    source_counts: tuple[int, int]  # (video, audio) before compression
    kept_counts: tuple[int, int]  # (video, audio) stored
    scores: ChunkScores
    has_audio: bool
    stored_bytes: int  # payload bytes of the record (embeddings, scales, positions, times, chunk ids, metadata)
    noise_floor_dbfs: float | None = None  # the camera's audio noise floor after this clip
    still: StillInfo | None = None  # None: stored without a still (no video, or before stills were made)
    schema: int = SCHEMA_VERSION
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def clip_id(self) -> str:
        return clip_id_of(self.camera_id, self.start_ms)

    @property
    def start(self) -> datetime:
        return from_ms(self.start_ms)

    @property
    def end(self) -> datetime:
        return from_ms(self.end_ms)

    @property
    def num_chunks(self) -> int:
        return len(self.scores.activity)

    @property
    def kept_tokens(self) -> int:
        return sum(self.kept_counts)

    @property
    def source_tokens(self) -> int:
        return sum(self.source_counts)

    def chunk_span(self, chunk: int) -> tuple[datetime, datetime]:
        """UTC start and end of one 2-second chunk (the last one ends with the clip)."""
        start = self.start_ms + chunk * SECONDS_PER_CHUNK * 1000
        return from_ms(start), from_ms(min(start + SECONDS_PER_CHUNK * 1000, self.end_ms))

    def contains(self, instant: datetime) -> bool:
        return self.start_ms <= to_ms(instant) < self.end_ms

    def to_json(self) -> dict:
        return {
            "schema": self.schema,
            "clip_id": self.clip_id,
            "camera_id": self.camera_id,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "fingerprint": self.fingerprint,
            "encoding": self.encoding,
            "hidden_size": self.hidden_size,
            "grid": [self.grid.frames, self.grid.rows, self.grid.cols],
            "source_counts": list(self.source_counts),
            "kept_counts": list(self.kept_counts),
            "activity": list(self.scores.activity),
            "audio_salience": list(self.scores.audio_salience),
            "speech": list(self.scores.speech),
            "has_audio": self.has_audio,
            "stored_bytes": self.stored_bytes,
            "noise_floor_dbfs": self.noise_floor_dbfs,
            "still": None if self.still is None else self.still.to_json(),
            **self.extra,
        }

    @classmethod
    def from_json(cls, data: dict) -> ClipMeta:
        known = {
            "schema", "clip_id", "camera_id", "start_ms", "end_ms", "fingerprint", "encoding", "hidden_size",
            "grid", "source_counts", "kept_counts", "activity", "audio_salience", "speech", "has_audio",
            "stored_bytes", "noise_floor_dbfs", "still",
        }  # fmt: skip
        still = data.get("still")
        return cls(
            camera_id=data["camera_id"],
            start_ms=int(data["start_ms"]),
            end_ms=int(data["end_ms"]),
            fingerprint=data["fingerprint"],
            encoding=data["encoding"],
            hidden_size=int(data["hidden_size"]),
            grid=VideoGrid(*data["grid"]),
            source_counts=tuple(data["source_counts"]),
            kept_counts=tuple(data["kept_counts"]),
            scores=ChunkScores(tuple(data["activity"]), tuple(data["audio_salience"]), tuple(data.get("speech", ()))),
            has_audio=bool(data["has_audio"]),
            stored_bytes=int(data["stored_bytes"]),
            noise_floor_dbfs=data.get("noise_floor_dbfs"),
            still=None if still is None else StillInfo.from_json(still),
            schema=int(data["schema"]),
            extra={k: v for k, v in data.items() if k not in known},
        )


@dataclass(frozen=True)
class StoredClip:
    """A clip read back from the store: its metadata and the kept tokens (CPU tensors, original positions)."""

    meta: ClipMeta
    tokens: ClipTokens
