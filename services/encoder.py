"""EncoderCompressor deployment: clips from every camera, batched -> encoder half -> compressor -> anchor store."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from ray import serve

from omnisift_core.backbone import ClipMedia, load_encoder
from pipeline.clips import ClipWindow
from pipeline.redis_connection import connect
from pipeline.store import AnchorStore
from pipeline.timeline import NoiseFloor, record_for_window
from services.models import model_setup, use_cpu_threads
from services.settings import Settings
from services.telemetry import configure_tracing, continued, tracer


@dataclass(frozen=True)
class ClipSummary:
    """What ingest hears back about a stored clip (the tokens themselves stay in the store)."""

    clip_id: str
    end: datetime
    kept_tokens: int
    source_tokens: int
    stored_bytes: int


def clip_media(clip: ClipWindow) -> ClipMedia:
    """What the encoder takes of a clip window: its frames on the sampling grid and its waveform."""
    return ClipMedia(frames_on_grid(clip), clip.waveform, clip.fps)


def frames_on_grid(clip: ClipWindow) -> np.ndarray:
    """(clip_seconds * fps, H, W, 3): one frame per sampling slot, each the nearest frame the source gave.

    Slots where the source had no video (a file starting mid-window, an outage) repeat their neighbour,
    so the model's frame k is always at k / fps seconds and the clip shows no motion where there was no data.
    """
    slots = np.arange(round(clip.clip_seconds * clip.fps)) / clip.fps
    index = np.searchsorted(clip.frame_times, slots).clip(0, len(clip.frame_times) - 1)
    before = (index - 1).clip(0)
    nearer_before = np.abs(clip.frame_times[before] - slots) < np.abs(clip.frame_times[index] - slots)
    return clip.frames[np.where(nearer_before, before, index)]


class EncoderCompressor:
    def __init__(self, settings: Settings):
        configure_tracing("encoder")
        use_cpu_threads(settings.encoder.num_cpus)
        setup = model_setup(settings)
        self.encoder = load_encoder(setup.checkpoint, setup.device, settings.frame_limits())
        self.compressor = setup.compressor
        self.fingerprint = setup.fingerprint
        self.store = AnchorStore.open(connect(settings.redis_config()), self.fingerprint, settings.store_config())
        self.timeline = settings.timeline_config()
        self.noise_floors: dict[str, NoiseFloor] = {}
        self.encode_clip.set_max_batch_size(settings.encoder.max_batch_size)
        self.encode_clip.set_batch_wait_timeout_s(settings.encoder.batch_wait_s)

    async def ingest(self, clip: ClipWindow, trace: Mapping[str, str] | None = None) -> ClipSummary:
        """Encode, compress and store one clip; clips arriving together are processed as one batch."""
        return await self.encode_clip(clip, trace or {})

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.05)
    async def encode_clip(self, clips: list[ClipWindow], traces: list[Mapping[str, str]]) -> list[ClipSummary]:
        return await asyncio.to_thread(self._process, clips, traces)

    def _process(self, clips: Sequence[ClipWindow], traces: Sequence[Mapping[str, str]]) -> list[ClipSummary]:
        with continued(traces[0]), tracer.start_as_current_span("encode", attributes={"clips": len(clips)}):
            media = [clip_media(c) for c in clips]
            tokens = self.encoder.encode_batch(media, audio_saliency=self.compressor.uses_audio_saliency)
        with continued(traces[0]), tracer.start_as_current_span("compress", attributes={"clips": len(clips)}):
            compressions = self.compressor.compress_batch(tokens)
        summaries = []
        for clip, compression, carrier in zip(clips, compressions, traces, strict=True):
            with continued(carrier), tracer.start_as_current_span("store", attributes={"clip_id": clip.clip_id}):
                floor = self.noise_floors.setdefault(clip.camera_id, NoiseFloor())
                record = record_for_window(clip, compression, self.fingerprint, self.timeline, floor)
                stored = self.store.put(record)
            summaries.append(
                ClipSummary(
                    clip_id=stored.clip_id,
                    end=clip.end,
                    kept_tokens=sum(compression.kept_counts),
                    source_tokens=sum(compression.source_counts),
                    stored_bytes=stored.stored_bytes,
                )
            )
        return summaries
