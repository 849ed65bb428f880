"""Bad input fails fast with an error type and a message a user can act on, and never hangs."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest

from pipeline.clips import ClipWindow, Gap
from pipeline.errors import ForbiddenSource, InvalidMedia, MediaTooLarge, SourceUnavailable
from pipeline.ingest.media_policy import MediaPolicy
from pipeline.ingest.sources import ClipSource, SourceSpec
from tests.fixtures.media_servers import drain
from tests.fixtures.network import free_port

SECRET = "hunter2"


def source(library, url: str, **policy) -> ClipSource:
    return ClipSource(SourceSpec("gate", str(url), clip_seconds=2), library.policy(**policy))


# -- broken files -------------------------------------------------------------------------------


def test_a_file_cut_before_its_index_is_reported_as_truncated(media_library):
    with pytest.raises(InvalidMedia, match="truncated"):
        drain(source(media_library, media_library.truncated_index))


def test_a_file_cut_mid_data_yields_what_it_has_and_a_gap_saying_truncated(media_library):
    items = drain(source(media_library, media_library.truncated_data))
    clips = [i for i in items if isinstance(i, ClipWindow)]
    assert clips and isinstance(items[-1], Gap)
    assert items[-1].reason.startswith("truncated")
    assert items[-1].end - items[-1].start > timedelta(seconds=media_library.sample.duration / 2 - 2)
    assert items[-1].start >= clips[-1].start
    assert sum(len(c.frames) for c in clips) < media_library.sample.duration * 2  # not all of it


@pytest.mark.parametrize("name", ["random_bytes", "misprobed_bytes"])
def test_random_bytes_are_not_media(media_library, name):
    with pytest.raises(InvalidMedia, match="not a media file"):
        drain(source(media_library, getattr(media_library, name)))


def test_an_empty_file_is_refused_before_any_decoding(media_library):
    with pytest.raises(InvalidMedia, match=r"empty \(0 bytes\)"):
        source(media_library, media_library.empty)


def test_an_unknown_video_codec_is_unsupported(media_library):
    with pytest.raises(InvalidMedia, match="unsupported video codec"):
        drain(source(media_library, media_library.unknown_codec))


def test_audio_without_video_is_a_clear_error(media_library):
    with pytest.raises(InvalidMedia, match="no video stream"):
        drain(source(media_library, media_library.audio_only.path))


def test_a_missing_file_says_so(media_library):
    with pytest.raises(InvalidMedia, match="does not exist"):
        source(media_library, media_library.root / "nope.mp4")


# -- limits -------------------------------------------------------------------------------------


def test_video_over_the_resolution_limit_is_refused(media_library):
    with pytest.raises(MediaTooLarge, match="640x360, over the limit of 320x240"):
        drain(source(media_library, media_library.sample.path, max_width=320, max_height=240))


def test_media_over_the_duration_limit_is_refused(media_library):
    with pytest.raises(MediaTooLarge, match="over the limit of 5 s"):
        drain(source(media_library, media_library.sample.path, max_duration_s=5))


def test_a_file_over_the_upload_limit_is_refused(media_library):
    with pytest.raises(MediaTooLarge, match="over the limit of 1000"):
        source(media_library, media_library.sample.path, max_upload_bytes=1000)


# -- what may be opened -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "concat:{root}/sample.mp4|{root}/no_audio.mp4",
        "subfile,,start,0,end,1000,,:{root}/sample.mp4",
        "data:video/mp4;base64,AAAA",
        "ftp://127.0.0.1/sample.mp4",
        "gopher://127.0.0.1/x",
        "file://otherhost{root}/sample.mp4",
    ],
)
def test_schemes_and_protocols_outside_the_allow_list_are_forbidden(media_library, url):
    with pytest.raises(ForbiddenSource):
        source(media_library, url.format(root=media_library.root))


def test_files_outside_the_media_roots_are_forbidden(media_library):
    with pytest.raises(ForbiddenSource, match="outside the media roots"):
        source(media_library, media_library.secret_segment)
    with pytest.raises(ForbiddenSource, match="outside the media roots"):
        source(media_library, f"{media_library.root}/../outside/secret.ts")
    with pytest.raises(ForbiddenSource, match="outside the media roots"):
        source(media_library, media_library.secret_segment.as_uri())


def test_a_symlink_inside_a_root_cannot_lead_out_of_it(media_library, tmp_path):
    link = media_library.root / f"link-{tmp_path.name}.ts"
    link.symlink_to(media_library.secret_segment)
    try:
        with pytest.raises(ForbiddenSource, match="outside the media roots"):
            source(media_library, link)
    finally:
        link.unlink()


def test_local_files_are_off_without_media_roots(media_library):
    with pytest.raises(ForbiddenSource, match="configure media roots"):
        ClipSource(SourceSpec("gate", str(media_library.sample.path)), MediaPolicy())


def test_a_local_playlist_cannot_pull_in_a_file_outside_the_roots(media_library):
    for _ in range(2):  # FFmpeg logs the same refusal line again: the second refusal keeps its reason
        with pytest.raises(ForbiddenSource, match="a playlist, or an unusual container"):
            drain(source(media_library, media_library.local_playlist))


@pytest.mark.parametrize("playlist", ["file_segment", "data_segment", "concat_segment", "subfile_segment"])
def test_an_http_playlist_cannot_point_at_local_files(media_library, http_media_url, playlist):
    src = source(media_library, f"{http_media_url}/{playlist}.m3u8")
    with pytest.raises(ForbiddenSource, match="segment|protocol 'file'"):
        drain(src)


# -- unreachable --------------------------------------------------------------------------------


def test_a_refused_rtsp_connection_is_retried_then_reported(media_library):
    url = f"rtsp://admin:{SECRET}@127.0.0.1:{free_port()}/cam"
    src = source(media_library, url, retry_for_s=1.0, backoff_initial_s=0.1, backoff_max_s=0.2)
    with pytest.raises(SourceUnavailable, match="connection refused") as caught:
        drain(src)
    assert SECRET not in str(caught.value) and "rtsp://***@127.0.0.1" in str(caught.value)
    status = src.status()
    assert status.state == "failed" and SECRET not in (status.last_error or "") and SECRET not in status.url


def test_an_unresolvable_host_is_unavailable(media_library):
    src = source(media_library, "rtsp://camera.invalid/stream", retry_for_s=0.5, backoff_initial_s=0.1)
    with pytest.raises(SourceUnavailable):
        drain(src)


def test_a_host_that_accepts_but_never_answers_times_out(media_library, silent_server):
    url = f"rtsp://127.0.0.1:{silent_server.port}/cam"
    src = source(media_library, url, connect_timeout_s=1.0, retry_for_s=1.0, backoff_initial_s=0.1)
    with pytest.raises(SourceUnavailable, match="no answer within 1 s"):
        drain(src)
    web = source(media_library, f"http://127.0.0.1:{silent_server.port}/clip.mp4", connect_timeout_s=1.0)
    with pytest.raises(SourceUnavailable, match="no answer within 1 s"):
        drain(web)


def test_stop_ends_iteration_while_the_source_is_still_connecting(media_library, silent_server):
    src = source(media_library, f"rtsp://127.0.0.1:{silent_server.port}/cam", connect_timeout_s=2.0)
    seen = []
    consumer = threading.Thread(target=lambda: seen.extend(src))
    consumer.start()
    src.start()
    src.stop()
    consumer.join(timeout=10)
    assert not consumer.is_alive() and seen == []
    assert src.close(timeout=10)  # the worker leaves within one connect timeout
    assert src.status().state == "stopped"


# -- credentials --------------------------------------------------------------------------------


def test_credentials_never_appear_in_reprs_statuses_errors_or_logs(media_library, caplog):
    url = f"rtsp://admin:{SECRET}@127.0.0.1:{free_port()}/cam?token={SECRET}"
    spec = SourceSpec("gate", url)
    src = ClipSource(spec, media_library.policy(retry_for_s=0.3, backoff_initial_s=0.1))
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceUnavailable) as caught:
        drain(src)
    printed = [repr(spec), str(spec), repr(src), repr(src.plan), str(src.status()), str(caught.value), caplog.text]
    assert caplog.text  # the failures were logged...
    assert all(SECRET not in text for text in printed)  # ...without the password
    assert "rtsp://***@127.0.0.1" in str(caught.value)
