"""The monitoring profile's targets on a real encoded scene through the real tiny encoder (issue: "Keep what
matters in monitoring footage"): a quiet clip keeps at most a tenth of fixed 25%, an off-screen sound keeps
at least 90% of its audio tokens, an object that appears keeps its changed cells, and the paper's fixed mode
gives the same tokens with or without the media evidence."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import pytest
import torch

from omnisift_core.backbone import Checkpoint, ModelSource, load_encoder
from omnisift_core.budget import kept_count
from omnisift_core.compressor import OmniSiftCompressor
from omnisift_core.config import PRESETS, FrameLimits, MonitoringBudget
from omnisift_core.layout import AUDIO_TOKENS_PER_SECOND
from pipeline.activity import ActivityConfig
from pipeline.clips import ClipWindow
from pipeline.ingest.encoder_input import encode_windows
from pipeline.ingest.media_policy import MediaPolicy
from pipeline.ingest.sample_media import SceneEvent, write_sample_video
from pipeline.ingest.sources import ClipSource, SourceSpec

START = datetime(2026, 5, 4, 9, 0, tzinfo=timezone.utc)
BOX = ((0.6, 0.5), (0.6, 0.5))  # a parcel put down at the right of the view, then still
EVENTS = (
    SceneEvent("object", "a parcel appears", 13.0, 40.0, (200, 60, 40), BOX, size=(0.25, 0.4)),
    SceneEvent("sound", "a bang off screen", 24.4, 25.4, frequency=None, level=0.5),
)
QUIET_CLIP = 3  # 30-40 s: nothing moves or sounds (0-10 s neither, but it is the camera's first clip)
PAPER = OmniSiftCompressor(PRESETS["25%"])
MONITORING = OmniSiftCompressor(PRESETS["25%"], monitoring=MonitoringBudget())


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("targets")
    media = write_sample_video(
        folder / "scene.mp4", width=448, height=252, duration=40.0, events=EVENTS, grain=3.0, gop_seconds=10.0
    )
    spec = SourceSpec("door", str(media.path), start_time=START)
    with ClipSource(spec, MediaPolicy(media_roots=(folder,))).start() as source:
        windows = [w for w in source if isinstance(w, ClipWindow)]
    encoder = load_encoder(Checkpoint(ModelSource.parse("tiny")), torch.device("cpu"), FrameLimits())
    encoded = encode_windows(encoder, windows, MONITORING, lambda window: None, ActivityConfig())
    return windows, encoded, encoder


def test_a_quiet_clip_keeps_at_most_a_tenth_of_fixed_25_percent(encoded):
    windows, items, _ = encoded
    assert (windows[QUIET_CLIP].start - START).total_seconds() == 30 and windows[QUIET_CLIP].lead_in is not None
    tokens = items[QUIET_CLIP].tokens
    monitoring, paper = MONITORING.compress(tokens), PAPER.compress(tokens)
    assert sum(monitoring.kept_counts) <= 0.1 * sum(paper.kept_counts)
    full = kept_count(tokens.grid.tokens_per_frame, PRESETS["25%"].video)
    still = math.ceil(full * MonitoringBudget().still_keep)
    assert monitoring.kept_counts[0] == tokens.grid.frames * still  # not one cell changed
    first = MONITORING.compress(items[0].tokens)  # the camera's first clip: its first frame is a new view
    assert first.kept_counts[0] == full + (tokens.grid.frames - 1) * still


def test_an_off_screen_sound_keeps_nine_tenths_of_its_audio_tokens(encoded):
    windows, items, _ = encoded
    bang = EVENTS[1]
    clip = next(i for i, w in enumerate(windows) if (w.start - START).total_seconds() == 20)
    audio_keep = MONITORING.compress(items[clip].tokens).audio_keep
    first, last = (round((t - 20) * AUDIO_TOKENS_PER_SECOND) for t in (bang.start, bang.end))
    inside = torch.arange(first, last)
    recall = float(torch.isin(inside, audio_keep).float().mean())
    paper = float(torch.isin(inside, PAPER.compress(items[clip].tokens).audio_keep).float().mean())
    assert recall >= 0.9 > paper


def test_an_object_that_appears_keeps_its_changed_cells(encoded):
    windows, items, _ = encoded
    clip = next(i for i, w in enumerate(windows) if (w.start - START).total_seconds() == 10)
    tokens = items[clip].tokens
    grid = tokens.grid
    frame = 3  # the parcel appears at 13 s: at 2 fps a token frame is 1 s, this one covers 13-14 s
    (cx, cy), (w, h) = BOX[0], EVENTS[0].size
    rows = (np.arange(grid.rows) + 0.5) / grid.rows
    cols = (np.arange(grid.cols) + 0.5) / grid.cols
    inside = (np.abs(rows[:, None] - cy) < h / 2 - 0.5 / grid.rows) & (
        np.abs(cols[None, :] - cx) < w / 2 - 0.5 / grid.cols
    )
    truth = torch.from_numpy(np.flatnonzero(inside)) + frame * grid.tokens_per_frame  # cells wholly inside
    kept = MONITORING.compress(tokens).video_keep
    ceiling = min(len(truth), grid.tokens_per_frame - int(grid.tokens_per_frame * PRESETS["25%"].video))
    assert float(torch.isin(truth, kept).sum()) / ceiling >= 0.9


def test_the_papers_fixed_mode_gives_the_same_tokens_with_the_evidence_attached(encoded):
    _, items, _ = encoded
    tokens = items[1].tokens
    bare = OmniSiftCompressor(PRESETS["25%"]).compress(tokens.__class__(tokens.video, tokens.audio, tokens.grid))
    with_evidence = PAPER.compress(tokens)
    assert torch.equal(bare.video_keep, with_evidence.video_keep)
    assert torch.equal(bare.audio_keep, with_evidence.audio_keep)


def test_a_batch_of_one_cameras_clips_scores_them_as_one_by_one_ingest_does(encoded):
    """Each clip continues from the floor its predecessor left, inside a batch as through the store."""
    windows, batched, encoder = encoded
    floors: dict[str, float | None] = {}
    for window, together in zip(windows, batched, strict=True):
        [alone] = encode_windows(encoder, [window], MONITORING, lambda w: floors.get("after"), ActivityConfig())
        floors["after"] = alone.measures.audio.floor_after_dbfs
        assert alone.measures.audio.floor_used_dbfs == together.measures.audio.floor_used_dbfs
        assert torch.equal(alone.tokens.evidence.sound_salience, together.tokens.evidence.sound_salience)
