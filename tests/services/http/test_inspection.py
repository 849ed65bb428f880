"""What the console reads, over HTTP in-process (fast tier): token detail, stills, clip lists and cameras, over
the real Gateway and a real redis-server. Clips are made as ingest makes them (`record_for_window`): a scene
whose object jumps at frame 3 of the merged grid, and a window whose frames show a red block from 3 s on."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from omnisift_core.compressor import Compression
from pipeline.activity import ActivityConfig
from pipeline.clips import ClipWindow
from pipeline.ingest.measures import measure_window
from pipeline.ingest.scoring import record_for_window
from pipeline.ingest.stills import clip_still, encode_jpeg, still_frame
from pipeline.records import ClipRecord
from pipeline.store.anchor_store import AnchorStore
from pipeline.store.config import CameraSettings, RetentionPolicy
from services.deployments.gateway import Gateway
from services.deployments.ingest import Ingest
from services.http.app import create_api
from services.settings import Settings
from tests.fixtures.anchor_clips import COMPRESSOR, FINGERPRINT, T0, compressed_record, scene_clip, waveform
from tests.fixtures.in_process import InProcessHandle

API_KEY = "console-key"
CAMERA = "yard"
FPS = 2.0
MOVING_FRAME = 3  # merged-grid frame (1 s each): the object jumps at 3 s


@dataclass(frozen=True)
class Stored:
    record: ClipRecord
    compression: Compression


@dataclass(frozen=True)
class Api:
    client: TestClient
    store: AnchorStore
    clips: tuple[Stored, ...]
    old: ClipRecord  # stored the way records were before scores and stills


def window_at(offset_s: float, seconds: int = 10) -> ClipWindow:
    """A 320x240 grey yard at 2 fps; a red block stands in it from MOVING_FRAME seconds on."""
    frames = np.full((int(seconds * FPS), 240, 320, 3), 90, np.uint8)
    frames[int(MOVING_FRAME * FPS) :, 100:160, 200:280] = (220, 30, 30)
    start = T0 + timedelta(seconds=offset_s)
    return ClipWindow(
        camera_id=CAMERA,
        start=start,
        end=start + timedelta(seconds=seconds),
        frames=frames,
        frame_times=np.arange(len(frames)) / FPS,
        fps=FPS,
        waveform=waveform(seconds, loud_chunks=(2,)),
        sample_rate=16000,
        has_audio=True,
        source_pts=np.arange(len(frames)) / FPS,
    )


def ingested(offset_s: float) -> Stored:
    compression = COMPRESSOR.compress(scene_clip(frozenset({MOVING_FRAME}), seed=int(offset_s)))
    window = window_at(offset_s)
    measures = measure_window(window, compression.kept.grid, None, ActivityConfig())
    return Stored(record_for_window(window, compression, FINGERPRINT, measures), compression)


@pytest.fixture(scope="module")
def api(redis_servers, tmp_path_factory):
    redis = redis_servers(persistence=False)
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("inspection"), redis_url=redis.url, api_key=API_KEY, alert_worker=False
    )
    ingest = Ingest(settings, encoder=None)
    gateway = Gateway(settings, InProcessHandle(ingest), answerer=None)
    store = AnchorStore(redis.client(), FINGERPRINT, settings.store_config())
    store.set_camera(CameraSettings(CAMERA, "Europe/Berlin"))
    clips = tuple(ingested(10 * i) for i in range(3))
    for clip in clips:
        store.put(clip.record)
    old = compressed_record("porch", T0)[0]  # no scores, no still
    store.put(old)
    with TestClient(create_api(gateway, settings), headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        yield Api(client, store, clips, old)
    ingest.close()


def test_token_detail_names_every_kept_cell_audio_token_and_score(api):
    stored = api.clips[0]
    compression, grid = stored.compression, stored.compression.kept.grid
    response = api.client.get(f"/v1/clips/{stored.record.clip_id}", params={"detail": "tokens"})
    assert response.status_code == 200, response.text
    detail = response.json()["tokens"]
    assert detail["grid"] == {"frames": 10, "rows": 8, "cols": 10} and detail["scores_known"] is True
    assert [f["offset_s"] for f in detail["frames"]] == [float(f) for f in range(10)]
    assert detail["frames"][3]["time"] == "2026-03-14T14:00:03Z"
    keep = compression.video_keep.tolist()
    per_frame = grid.tokens_per_frame
    expected = [[k // per_frame, (k % per_frame) // grid.cols, k % grid.cols] for k in keep]
    assert detail["video"]["cells"] == expected
    assert detail["video"]["offsets_s"] == [float(k // per_frame) for k in keep]
    np.testing.assert_allclose(detail["video"]["scores"], compression.video_scores[keep].numpy(), rtol=1e-6)
    audio_keep = compression.audio_keep.tolist()
    assert detail["audio"]["indices"] == audio_keep
    np.testing.assert_allclose(detail["audio"]["offsets_s"], [k / 25 for k in audio_keep], atol=1e-4)
    np.testing.assert_allclose(detail["audio"]["scores"], compression.audio_scores[audio_keep].numpy(), rtol=1e-6)
    assert len(detail["video"]["cells"]) == response.json()["video_tokens_kept"]


def test_without_detail_the_clip_has_no_token_listing_but_names_its_still(api):
    clip = api.client.get(f"/v1/clips/{api.clips[0].record.clip_id}").json()
    assert clip["tokens"] is None
    assert clip["still"] == {"frame": MOVING_FRAME, "offset_s": 3.0, "width": 320, "height": 240}


def test_the_still_is_a_small_jpeg_of_the_frame_that_changed(api):
    response = api.client.get(f"/v1/clips/{api.clips[0].record.clip_id}/still")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert response.content[:3] == b"\xff\xd8\xff" and response.content[-2:] == b"\xff\xd9"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "JPEG" and image.size == (320, 240)
    red = np.asarray(image.convert("RGB"))[130, 240].astype(int)  # inside the block: it is there at 3 s
    assert red[0] > 180 and red[1] < 80 and red[2] < 80, red
    assert len(response.content) < 16_000


def test_a_still_scene_shows_its_middle_frame_and_a_clip_without_video_has_no_still():
    window = window_at(0)
    still_view = ClipWindow(**{**window.__dict__, "frames": np.full_like(window.frames, 90)})
    quiet = measure_window(still_view, scene_clip().grid, None, ActivityConfig())
    assert still_frame(quiet) == 5
    blind = ClipWindow(**{**window.__dict__, "frames": window.frames[:0], "frame_times": window.frame_times[:0]})
    assert clip_still(blind, quiet) is None


def test_a_wide_frame_is_scaled_to_320_pixels():
    frame = np.zeros((720, 1280, 3), np.uint8)
    jpeg, width, height = encode_jpeg(frame)
    assert (width, height) == (320, 180) and Image.open(io.BytesIO(jpeg)).size == (320, 180)


def test_the_still_and_scores_count_in_the_stored_bytes(api):
    stored = api.clips[1].record
    key = f"omnisift:{{{CAMERA}}}:clip:{stored.start_ms}"
    fields = api.store.client.hgetall(key)
    assert fields[b"still"][:3] == b"\xff\xd8\xff"
    assert len(fields[b"v.score"]) == 4 * len(stored.tokens.video)
    payload = sum(len(v) for name, v in fields.items() if name != b"size")
    meta = api.store.meta(stored.clip_id)
    assert meta.stored_bytes == payload + len(fields[b"size"]) == int(fields[b"size"])
    assert api.client.get(f"/v1/clips/{stored.clip_id}").json()["stored_bytes"] == meta.stored_bytes


def test_an_older_record_reads_with_scores_unknown_and_no_still(api):
    clip_id = api.old.clip_id
    detail = api.client.get(f"/v1/clips/{clip_id}", params={"detail": "tokens"}).json()
    assert detail["tokens"]["scores_known"] is False and detail["still"] is None
    assert detail["tokens"]["video"]["scores"] is None and detail["tokens"]["audio"]["scores"] is None
    assert len(detail["tokens"]["video"]["cells"]) == len(api.old.tokens.video)
    response = api.client.get(f"/v1/clips/{clip_id}/still")
    assert response.status_code == 404 and response.json()["error"]["code"] == "still_not_found"
    assert "no still" in response.json()["error"]["message"]


def test_bad_and_unknown_ids_are_4xx_with_a_reason(api):
    for path in ("/v1/clips/no%20such@1", "/v1/clips/yard@x/still", "/v1/clips/@5/still"):
        response = api.client.get(path)
        assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request", path
    for path in ("/v1/clips/yard@5", "/v1/clips/yard@5/still"):
        response = api.client.get(path, params={"detail": "tokens"} if "still" not in path else None)
        assert response.status_code == 404 and response.json()["error"]["code"] == "clip_not_found", path
    response = api.client.get(f"/v1/clips/{api.clips[0].record.clip_id}", params={"detail": "embeddings"})
    assert response.status_code == 422 and response.json()["error"]["message"].startswith("detail")


def test_clip_summaries_cover_the_range_with_their_density_and_stills(api):
    params = {"camera_id": CAMERA, "start": T0.isoformat(), "end": (T0 + timedelta(seconds=25)).isoformat()}
    clips = api.client.get("/v1/clips", params=params).json()
    assert [c["clip_id"] for c in clips] == [c.record.clip_id for c in api.clips]
    first = clips[0]
    assert first["tokens_kept"] == sum(api.clips[0].compression.kept_counts) and first["has_still"] is True
    assert first["tokens_source"] == sum(api.clips[0].compression.source_counts)
    assert first["audio_salience"] == 1.0 and first["activity"] > 0


def test_clip_lists_refuse_long_or_reversed_ranges_and_unknown_cameras(api):
    def status(**params):
        response = api.client.get("/v1/clips", params=params)
        return response.status_code, response.json()["error"]["code"]

    day = timedelta(hours=24, seconds=1)
    assert status(camera_id=CAMERA, start=T0.isoformat(), end=(T0 + day).isoformat()) == (400, "invalid_time_range")
    assert status(camera_id=CAMERA, start=T0.isoformat(), end=T0.isoformat()) == (400, "invalid_time_range")
    assert status(camera_id="nobody", start=T0.isoformat(), end=(T0 + timedelta(hours=1)).isoformat()) == (
        404,
        "unknown_stream",
    )
    assert status(camera_id=CAMERA, start=T0.isoformat())[0] == 422


def test_cameras_list_what_the_store_holds(api):
    cameras = {c["camera_id"]: c for c in api.client.get("/v1/cameras").json()}
    yard = cameras[CAMERA]
    assert yard["timezone"] == "Europe/Berlin" and yard["streaming"] is False and yard["clips"] == 3
    assert (yard["oldest"], yard["newest"]) == ("2026-03-14T14:00:00Z", "2026-03-14T14:00:30Z")
    assert yard["stored_bytes"] == api.store.usage(CAMERA).stored_bytes


def test_retention_and_deletion_remove_a_clips_still_with_it(api):
    store = api.store
    store.set_camera(CameraSettings("gate", retention=RetentionPolicy(max_age=None, max_bytes=1)))
    first, second = (
        record_for_window(
            window_at(600 + 10 * i),
            c.compression,
            FINGERPRINT,
            measure_window(window_at(600 + 10 * i), c.compression.kept.grid, None, ActivityConfig()),
        )
        for i, c in enumerate(api.clips[:2])
    )
    first = ClipRecord(**{**first.__dict__, "camera_id": "gate"})
    second = ClipRecord(**{**second.__dict__, "camera_id": "gate"})
    store.put(first)
    assert api.client.get(f"/v1/clips/{first.clip_id}/still").status_code == 200
    evicted = store.put(second).evicted
    assert evicted == (first.clip_id,)
    response = api.client.get(f"/v1/clips/{first.clip_id}/still")
    assert response.status_code == 404 and response.json()["error"]["code"] == "clip_not_found"
    assert not store.client.exists(f"omnisift:{{gate}}:clip:{first.start_ms}")
    assert store.usage("gate").stored_bytes == store.meta(second.clip_id).stored_bytes
    store.delete(second.clip_id)  # deleting a clip takes its still too
    assert api.client.get(f"/v1/clips/{second.clip_id}/still").status_code == 404
    assert store.usage("gate").stored_bytes == 0
    store.delete_camera("gate")


def test_the_console_loads_without_the_key_and_the_api_behind_it_does_not(api):
    anonymous = TestClient(api.client.app)
    page = anonymous.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for asset in ("console.js", "console.css"):
        assert anonymous.get(f"/console/{asset}").status_code == 200
    assert anonymous.get("/console/missing.js").status_code == 401  # not an asset: the key is asked for
    assert anonymous.get("/v1/cameras").status_code == 401
    assert anonymous.get(f"/v1/clips/{api.clips[0].record.clip_id}/still").status_code == 401
