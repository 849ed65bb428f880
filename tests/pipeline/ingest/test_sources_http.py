"""http(s) sources: a progressive MP4 and an HLS playlist served by a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from pipeline.clips import ClipWindow
from pipeline.errors import SourceUnavailable
from pipeline.ingest.sources import ClipSource, SourceSpec
from tests.fixtures.media_files import SAMPLE_CREATED
from tests.fixtures.media_servers import drain


def test_a_progressive_mp4_over_http_matches_the_same_file_read_from_disk(media_library, http_media_url):
    policy = media_library.policy()
    over_http = drain(ClipSource(SourceSpec("lobby", f"{http_media_url}/sample.mp4", clip_seconds=4), policy))
    on_disk = drain(ClipSource(SourceSpec("lobby", str(media_library.sample.path), clip_seconds=4), policy))
    assert [c.clip_id for c in over_http] == [c.clip_id for c in on_disk]
    assert over_http[0].start == SAMPLE_CREATED  # creation_time travels with the file
    for a, b in zip(over_http, on_disk, strict=True):
        assert np.array_equal(a.frames, b.frames) and np.array_equal(a.frame_times, b.frame_times)
        assert np.array_equal(a.waveform, b.waveform)


def test_an_hls_playlist_over_http_is_read_segment_after_segment(media_library, http_media_url):
    url = f"{http_media_url}/hls/index.m3u8"
    spec = SourceSpec("lobby", url, clip_seconds=2, start_time=SAMPLE_CREATED)
    items = drain(ClipSource(spec, media_library.policy()))
    assert all(isinstance(i, ClipWindow) for i in items)
    assert sum(len(c.frames) for c in items) == 12  # 6 s at 2 fps across three 2 s segments
    walls = np.concatenate([(c.start - SAMPLE_CREATED).total_seconds() + c.frame_times for c in items])
    assert np.all(np.diff(walls) > 0)
    assert walls[-1] - walls[0] == pytest.approx(5.5, abs=0.1)
    # MPEG-TS timestamps start at 1.4 s, not 0; the start time still maps to the first frame
    assert [c.start for c in items] == [SAMPLE_CREATED + timedelta(seconds=s) for s in (0, 2, 4)]
    assert items[0].frame_times[0] < 0.05  # the container starts with audio, 23 ms before the first frame
    assert all(c.has_audio for c in items)


def test_a_missing_http_file_is_reported_as_not_found(media_library, http_media_url):
    src = ClipSource(SourceSpec("lobby", f"{http_media_url}/nope.mp4"), media_library.policy())
    with pytest.raises(SourceUnavailable, match="not found"):
        drain(src)
