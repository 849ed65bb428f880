"""EncoderCompressor deployment: clips from every camera, batched -> encoder half -> compressor -> anchor store.

Stateless: a camera's running audio noise floor is read from its previous stored clip, so any replica (or
a restarted one) scores a clip the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from ray import serve

from omnisift_core.backbone import load_encoder
from pipeline.clips import ClipWindow
from pipeline.ingest.encoder_input import encode_windows
from pipeline.ingest.scoring import record_for_window
from pipeline.store.anchor_store import AnchorStore
from pipeline.store.connection import connect
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


class EncoderCompressor:
    def __init__(self, settings: Settings):
        configure_tracing("encoder")
        use_cpu_threads(settings.encoder.num_cpus)
        setup = model_setup(settings)
        self.encoder = load_encoder(setup.checkpoint, setup.device, settings.frame_limits())
        self.compressor = setup.compressor
        self.fingerprint = setup.fingerprint
        self.store = AnchorStore.open(connect(settings.redis_config()), self.fingerprint, settings.store_config())
        self.activity = settings.activity_config()
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
            encoded = encode_windows(self.encoder, clips, self.compressor, self._noise_floor, self.activity)
        with continued(traces[0]), tracer.start_as_current_span("compress", attributes={"clips": len(clips)}):
            compressions = self.compressor.compress_batch([e.tokens for e in encoded])
        summaries = []
        for clip, window, compression, carrier in zip(clips, encoded, compressions, traces, strict=True):
            with continued(carrier), tracer.start_as_current_span("store", attributes={"clip_id": clip.clip_id}):
                record = record_for_window(clip, compression, self.fingerprint, window.measures, self.activity)
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

    def _noise_floor(self, clip: ClipWindow) -> float | None:
        """The audio noise floor the camera's previous stored clip left (None: no history)."""
        previous = self.store.previous_meta(clip.camera_id, clip.start)
        return None if previous is None else previous.noise_floor_dbfs
