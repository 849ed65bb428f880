"""`omnisift train`: a manifest of captioned videos -> encoded examples -> a trained selector file.

The manifest is JSON Lines, one video per line: {"video": "lobby-0012.mp4", "answer": "A man in a red
coat enters, ...", "question": "..."} (question optional; paths relative to the manifest). Each video
is cut into clips and encoded exactly as the service ingests it, once: the encoders are frozen.
The result is a safetensors file under the published `thinker.compressor.*` names; point the
`selector_weights` setting at it and the encoder service compresses with it.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import torch

from omnisift_core.backbone import ClipContext, load_encoder, load_language
from omnisift_core.train import StepReport, TrainingConfig, TrainingExample, save_selector, train_selector
from omnisift_core.vgas import VisionGuidedAudioSelector
from pipeline.clips import ClipWindow
from pipeline.ingest.encoder_input import clip_media
from pipeline.ingest.media_policy import MediaPolicy
from pipeline.ingest.sources import ClipSource, SourceSpec
from pipeline.query.wording import clip_header
from services.errors import InvalidManifest
from services.models import model_setup
from services.settings import Settings

DEFAULT_QUESTION = "Describe what happens in these clips."
_CAMERA = "train"
_UTC = ZoneInfo("UTC")
_START = datetime(2000, 1, 1, tzinfo=timezone.utc)  # training clips need a time for their headers only


@dataclass(frozen=True)
class ManifestEntry:
    video: Path
    question: str
    answer: str


def read_manifest(path: Path) -> list[ManifestEntry]:
    """Every line checked up front, so a typo on line 900 fails before an hour of encoding."""
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise InvalidManifest(f"{path}:{number}: not JSON ({error.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("video"), str):
            raise InvalidManifest(f'{path}:{number}: needs a "video" path')
        answer, question = record.get("answer"), record.get("question", DEFAULT_QUESTION)
        if not isinstance(answer, str) or not answer.strip():
            raise InvalidManifest(f'{path}:{number}: needs a non-empty "answer" (the text to learn)')
        if not isinstance(question, str) or not question.strip():
            raise InvalidManifest(f'{path}:{number}: "question" must be non-empty text')
        video = (path.parent / record["video"]).resolve()
        if not video.is_file():
            raise InvalidManifest(f"{path}:{number}: no such video file: {video}")
        entries.append(ManifestEntry(video, question, answer))
    if not entries:
        raise InvalidManifest(f"{path}: no examples")
    return entries


def train_from_manifest(
    settings: Settings,
    manifest: Path,
    output: Path,
    config: TrainingConfig,
    max_clips: int,
    on_step: Callable[[StepReport], None] | None = None,
) -> list[StepReport]:
    """Encode the manifest's videos, train the selector (the configured one, else a fresh one), save it."""
    if settings.compression_method != "omnisift":
        raise InvalidManifest(f"compression_method is {settings.compression_method!r}: only omnisift uses a selector")
    entries = read_manifest(manifest)
    setup = model_setup(settings)
    checkpoint = setup.checkpoint
    encoder = load_encoder(checkpoint, setup.device, settings.frame_limits())
    examples = [
        TrainingExample(_encode_video(encoder, entry.video, settings, max_clips), entry.question, entry.answer)
        for entry in entries
    ]
    del encoder  # frozen and done: free its memory before the language model loads
    language = load_language(checkpoint, setup.device)
    selector = setup.compressor.selector or _fresh_selector(  # model_setup loaded the configured one
        checkpoint.config.text_config.hidden_size, setup.device, config.seed
    )
    reports = train_selector(language, selector, examples, config, on_step)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")  # the file being served may be the one replaced
    save_selector(selector, partial)
    os.replace(partial, output)
    return reports


def _encode_video(encoder, video: Path, settings: Settings, max_clips: int) -> tuple[ClipContext, ...]:
    policy = MediaPolicy(media_roots=(video.parent,), max_duration_s=settings.max_duration_hours * 3600)
    spec = SourceSpec(
        _CAMERA,
        str(video),
        clip_seconds=settings.clip_seconds,
        fps=settings.fps,
        start_time=_START,
        max_pixels=settings.max_frame_pixels,  # as ingest cuts them
    )
    source = ClipSource(spec, policy)
    try:  # only the clips used are decoded and held
        windows = list(itertools.islice((item for item in source if isinstance(item, ClipWindow)), max_clips))
    finally:
        source.close(timeout=10)
    if not windows:
        raise InvalidManifest(f"{video}: no video frames to train on")
    encoded = encoder.encode_batch([clip_media(w) for w in windows])
    return tuple(  # on the CPU: a large set would not fit the GPU; each step moves its own example there
        ClipContext(clip_header(window, _UTC), tokens.to(torch.device("cpu")), len(tokens.video) + len(tokens.audio))
        for window, tokens in zip(windows, encoded, strict=True)
    )


def _fresh_selector(hidden_size: int, device: torch.device, seed: int) -> VisionGuidedAudioSelector:
    with torch.random.fork_rng(devices=[]):  # seeded initial weights, without reseeding the caller's RNG
        torch.manual_seed(seed)
        return VisionGuidedAudioSelector(hidden_size).to(device)
