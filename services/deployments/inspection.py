"""What the gateway shows of the store for people looking at it (the console): cameras with their extent, clip
summaries along a timeline, one clip's metadata with what it kept (docs/architecture.md, "Console")."""

from __future__ import annotations

from datetime import datetime, timedelta

from pipeline.errors import InvalidTimeRange
from pipeline.query.coverage import LEVEL_NAMES
from pipeline.query.timeparse import iso_utc
from pipeline.records import ClipMeta, from_ms
from pipeline.store.anchor_store import AnchorStore
from pipeline.store.registry import Registry
from pipeline.store.tier_state import is_cold, thinned_level
from pipeline.store.token_detail import TokenDetail
from services.http import schemas

MAX_CLIP_LIST_RANGE = timedelta(hours=24)  # a day of 10-s clips is 8,640 summaries (about 1.5 MB of JSON)


def cameras(store: AnchorStore, registry: Registry) -> list[schemas.Camera]:
    """Every camera with clips or settings, and every configured stream, with its stored extent."""
    streaming = {record.camera_id for record in registry.streams()}
    out = []
    for camera_id in sorted(set(store.cameras()) | streaming):
        usage, settings = store.usage(camera_id), store.camera(camera_id)
        newest = None if usage.newest is None else store.previous_meta(camera_id, usage.newest + timedelta(seconds=1))
        out.append(
            schemas.Camera(
                camera_id=camera_id,
                timezone=settings.timezone,
                streaming=camera_id in streaming,
                clips=usage.clips,
                stored_bytes=usage.stored_bytes,
                oldest=usage.oldest,
                newest=None if newest is None else newest.end,
            )
        )
    return out


def clip_list(
    store: AnchorStore, registry: Registry, camera_id: str, start: datetime, end: datetime
) -> list[schemas.ClipSummary]:
    """Summaries of the camera's clips overlapping [start, end), oldest first: the timeline's density and clicks."""
    if end <= start:
        raise InvalidTimeRange(f"end {iso_utc(end)} is not after start {iso_utc(start)}")
    if end - start > MAX_CLIP_LIST_RANGE:
        raise InvalidTimeRange(f"list clips over at most {MAX_CLIP_LIST_RANGE.total_seconds() / 3600:g} h at once")
    if camera_id not in store.cameras():
        registry.stream(camera_id)  # UnknownStream (404) for a camera nobody configured or uploaded to
    return [clip_summary(meta) for meta in store.clips(camera_id, start, end)]


def clip_summary(meta: ClipMeta) -> schemas.ClipSummary:
    activity, salience = meta.scores.peaks()
    return schemas.ClipSummary(
        clip_id=meta.clip_id,
        start=meta.start,
        end=meta.end,
        tokens_kept=meta.kept_tokens,
        tokens_source=meta.source_tokens,
        activity=activity,
        audio_salience=salience,
        has_still=meta.still is not None,
    )


def clip_out(meta: ClipMeta, detail: TokenDetail | None = None) -> schemas.Clip:
    still = meta.still
    return schemas.Clip(
        clip_id=meta.clip_id,
        camera_id=meta.camera_id,
        start=meta.start,
        end=meta.end,
        video_tokens_kept=meta.kept_counts[0],
        audio_tokens_kept=meta.kept_counts[1],
        video_tokens_source=meta.source_counts[0],
        audio_tokens_source=meta.source_counts[1],
        activity=list(meta.scores.activity),
        audio_salience=list(meta.scores.audio_salience),
        speech=list(meta.scores.speech),
        has_audio=meta.has_audio,
        stored_bytes=meta.stored_bytes,
        fingerprint=meta.fingerprint,
        still=None if still is None else schemas.Still(**still.to_json()),
        tokens=None if detail is None else token_detail_out(detail),
        tier="cold" if is_cold(meta) else "hot",
        thinned=LEVEL_NAMES[thinned_level(meta)],
    )


def token_detail_out(detail: TokenDetail) -> schemas.TokenDetail:
    meta, video, audio = detail.meta, detail.video, detail.audio
    return schemas.TokenDetail(
        grid=schemas.Grid(frames=meta.grid.frames, rows=meta.grid.rows, cols=meta.grid.cols),
        frames=[
            schemas.GridFrame(frame=f, offset_s=o, time=from_ms(meta.start_ms + round(o * 1000)))
            for f, o in enumerate(detail.frame_offsets)
        ],
        video=schemas.KeptVideo(cells=list(video.cells), offsets_s=list(video.times), scores=_list(video.scores)),
        audio=schemas.KeptAudio(indices=list(audio.indices), offsets_s=list(audio.times), scores=_list(audio.scores)),
        scores_known=detail.scores_known,
    )


def _list(values: tuple | None) -> list | None:
    return None if values is None else list(values)
