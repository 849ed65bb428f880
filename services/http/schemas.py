"""The REST contract (v1): request and response models. Times are ISO 8601; responses are UTC with a Z.

Request models are built from the bounded, strict, normalising field types of services.http.validation;
response models describe what the service holds. Torch-free: the CLI's client parses responses with these."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, model_validator

from pipeline.query.timeparse import iso_utc
from services.http.validation import (
    MAX_QUERY_CAMERAS,
    CameraId,
    ClipSeconds,
    Flag,
    LocalOrUtcTime,
    Question,
    RequestTime,
    RetentionBytes,
    RetentionHours,
    SourceUrl,
    Timezone,
    TokenCount,
)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("time must carry a timezone offset, e.g. 2026-11-23T14:03:00Z or +01:00")
    return value.astimezone(timezone.utc)


UtcTime = Annotated[datetime, AfterValidator(_aware), PlainSerializer(iso_utc, return_type=str)]  # responses
QueryTime = Annotated[RequestTime, PlainSerializer(iso_utc, return_type=str)]  # requests: bounded too


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(Strict):
    code: str
    message: str


class ErrorResponse(Strict):
    error: ErrorDetail


class RetentionLimits(Strict):
    """A camera's own retention; an axis left out keeps the service default."""

    max_age_hours: RetentionHours | None = None
    max_bytes: RetentionBytes | None = None


class Retention(Strict):
    """The retention a camera has (its own, else the service default); None: no limit on that axis."""

    max_age_hours: float | None = None
    max_bytes: int | None = None


class StreamCreate(Strict):
    camera_id: CameraId
    url: SourceUrl | None = None
    push: Flag = Field(False, description="listen for the camera to publish to us (RTSP ANNOUNCE/RECORD)")
    timezone: Timezone | None = Field(None, description="IANA name; times in questions are read in it")
    clip_seconds: ClipSeconds | None = None
    retention: RetentionLimits | None = None

    @model_validator(mode="after")
    def _url_or_push(self) -> StreamCreate:
        if (self.url is None) == (not self.push):
            raise ValueError("give either url or push: true")
        return self


class Stream(Strict):
    camera_id: str
    url: str | None = Field(None, description="the source URL with credentials redacted")
    push_url: str | None = Field(None, description="where the camera should publish, in push mode")
    timezone: str
    clip_seconds: int
    retention: Retention


class Gap(Strict):
    start: UtcTime
    end: UtcTime
    reason: str


class StreamStatus(Strict):
    camera_id: str
    state: str
    connected: bool
    lag_s: float | None = Field(None, description="seconds the newest stored clip is behind live")
    clips: int = Field(description="clips stored for this camera")
    dropped_clips: int
    reconnects: int
    gaps: list[Gap]
    last_error: str | None


class UploadForm(Strict):
    """The form fields beside the file of `POST /v1/files` (multipart/form-data)."""

    camera_id: CameraId
    start_time: LocalOrUtcTime | None = Field(None, description="first frame's wall time; naive = camera's timezone")
    timezone: Timezone | None = None


class JobAccepted(Strict):
    job_id: str
    camera_id: str


class Job(Strict):
    job_id: str
    camera_id: str
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: float = Field(ge=0, le=1)
    clips: int
    error: str | None = None


class QueryRequest(Strict):
    question: Question
    cameras: list[CameraId] | None = Field(None, max_length=MAX_QUERY_CAMERAS, description="default: every camera")
    start: QueryTime | None = None
    end: QueryTime | None = None
    max_new_tokens: TokenCount | None = None
    stream: Flag = Field(False, description="answer as Server-Sent Events: evidence, token..., done")


class TimeRangeUsed(Strict):
    start: UtcTime
    end: UtcTime
    source: Literal["explicit", "question", "default"]
    timezone: str
    instant: UtcTime | None = None
    asked_day: date | None = Field(
        None,
        description="the local day asked, when it had no footage at that time: the range is then on the most "
        "recent day that has",
    )


class Evidence(Strict):
    camera_id: str
    clip_id: str
    start: UtcTime
    end: UtcTime
    activity: float
    audio_salience: float
    video_tokens_kept: int
    audio_tokens_kept: int
    seen_as: Literal["tokens", "summary"] = Field(
        "tokens",
        description="tokens: the clip's tokens are in the prompt (or planned, for timeline answers); "
        "summary: an event's clip the answer covers through the timeline or a batch summary",
    )
    tier: Literal["hot", "cold"] = "hot"
    thinned: Literal["whole", "fewer_tokens", "scores_only"] = "whole"


class ThinnedRange(Strict):
    camera_id: str
    start: UtcTime
    end: UtcTime
    level: Literal["fewer_tokens", "scores_only"]
    clips: int


class Coverage(Strict):
    clips_in_range: int = Field(description="clips stored in the range: clips_as_tokens + clips_summarised")
    clips_as_tokens: int = Field(description="clips whose tokens a prompt got (planned ones, for timeline answers)")
    clips_summarised: int = Field(description="the rest, covered by the event timeline or batch summaries")
    clips_cold: int = Field(description="clips as tokens whose tokens were on disk (cold tier)")
    summary_batches: int = Field(0, description="batches summarised first (map-reduce, LLM answers only)")
    thinned_ranges: list[ThinnedRange] = Field(description="stretches whose clips keep fewer tokens or only scores")


class LatencyBreakdown(Strict):
    plan_ms: float
    token_read_ms: float = Field(description="reading planned clips' tokens, hot and cold")
    cold_read_ms: float = Field(description="the part of token_read_ms spent reading segment files")
    answer_ms: float = Field(description="summaries, prompt and generation (or the timeline)")


class Usage(Strict):
    full_tokens: int = Field(description="prompt tokens had the clips been sent uncompressed")
    sent_tokens: int = Field(description="prompt tokens actually sent (or planned, for timeline answers)")


class QueryResponse(Strict):
    answer: str
    answer_source: Literal["llm", "timeline"]
    time_range: TimeRangeUsed
    evidence: list[Evidence]
    usage: Usage
    latency_ms: float
    coverage: Coverage | None = None
    latency_breakdown: LatencyBreakdown | None = None


class Event(Strict):
    camera_id: str
    start: UtcTime
    end: UtcTime
    activity: float = Field(description="peak share of video cells that changed")
    audio_salience: float = Field(description="peak sound salience above the camera's room tone")
    speech: float = Field(description="peak voice-activity probability")
    triggers: list[Literal["motion", "sound", "speech"]] = Field(description="what made the event's chunks active")
    clip_ids: list[str]


class Still(Strict):
    frame: int = Field(description="the merged-grid video frame the JPEG shows")
    offset_s: float = Field(description="that frame's offset from the clip start")
    width: int
    height: int


class Grid(Strict):
    frames: int
    rows: int
    cols: int


class GridFrame(Strict):
    frame: int
    offset_s: float
    time: UtcTime


class KeptVideo(Strict):
    cells: list[tuple[int, int, int]] = Field(description="kept cells as (frame, row, col) of the grid")
    offsets_s: list[float] = Field(description="each kept cell's time, seconds from the clip start")
    scores: list[float | None] | None = Field(description="the score each was ranked by; None: not stored")


class KeptAudio(Strict):
    indices: list[int] = Field(description="kept audio tokens' indices among the clip's (25 per second)")
    offsets_s: list[float]
    scores: list[float | None] | None


class TokenDetail(Strict):
    grid: Grid
    frames: list[GridFrame]
    video: KeptVideo
    audio: KeptAudio
    scores_known: bool = Field(description="false for clips stored before scores were kept")


class Clip(Strict):
    clip_id: str
    camera_id: str
    start: UtcTime
    end: UtcTime
    video_tokens_kept: int
    audio_tokens_kept: int
    video_tokens_source: int
    audio_tokens_source: int
    activity: list[float]
    audio_salience: list[float]
    speech: list[float] = Field(description="per chunk voice-activity probability; empty when not measured")
    has_audio: bool
    stored_bytes: int
    fingerprint: str
    still: Still | None = Field(None, description="the clip's still (GET /v1/clips/{clip_id}/still); None: none")
    tokens: TokenDetail | None = Field(None, description="what was kept, with detail=tokens")

    tier: Literal["hot", "cold"] = Field("hot", description="where the clip's tokens are: Redis or segment files")
    thinned: Literal["whole", "fewer_tokens", "scores_only"] = "whole"


class Camera(Strict):
    """A camera the store knows (configured or uploaded to) with what it holds."""

    camera_id: str
    timezone: str
    streaming: bool = Field(description="configured as a stream (GET /v1/streams/{camera_id})")
    clips: int
    stored_bytes: int
    oldest: UtcTime | None = Field(None, description="start of its oldest stored clip")
    newest: UtcTime | None = Field(None, description="end of its newest stored clip")


class ClipSummary(Strict):
    clip_id: str
    start: UtcTime
    end: UtcTime
    tokens_kept: int
    tokens_source: int
    activity: float = Field(description="the clip's highest chunk activity")
    audio_salience: float = Field(description="the clip's highest chunk audio salience")
    has_still: bool


class Purged(Strict):
    clips_removed: int
    namespace: str
