"""Tiered storage against a real redis-server and real segment files: tokens move to disk and read back
unchanged, thinning keeps a camera within its token budget (quiet clips first), counters stay exact, a move never
overwrites a newer record. The mover killed mid-move is in test_tiering_crash.py (end-to-end tier)."""

from __future__ import annotations

import functools
import threading
import time

import pytest
import torch

from pipeline.errors import ClipNotFound
from pipeline.identifiers import parse_clip_id
from pipeline.store.anchor_store import AnchorStore
from pipeline.store.config import RetentionPolicy, StoreConfig
from pipeline.store.connection import RedisConfig, make_client
from pipeline.store.tier_config import ThinningPolicy, TierConfig
from pipeline.store.tier_state import cold_location, thinned_level
from pipeline.store.token_fields import is_token_field
from tests.fixtures.anchor_clips import FINGERPRINT, record_at

NO_RETENTION = RetentionPolicy(max_age=None, max_bytes=None)


def open_store(server, tiers: TierConfig | None, retention=NO_RETENTION) -> AnchorStore:
    client = make_client(server.url, RedisConfig(url=server.url, socket_timeout_s=5))
    return AnchorStore(client, FINGERPRINT, StoreConfig(retention=retention, tiers=tiers))


@functools.cache
def scene(count: int, every: int = 7, camera: str = "lobby") -> tuple:
    """`count` 10-second clips; every `every`-th (from the fourth) has motion (built once per module)."""
    return tuple(
        record_at(camera, 10 * i, moving_frames=frozenset({3, 6}) if i % every == 3 else frozenset())
        for i in range(count)
    )


def assert_tiers_consistent(store: AnchorStore, camera: str) -> None:
    """Every counter equals what the hashes and files hold; no clip points at a missing or damaged record."""
    client, key = store.client, store._key
    members = [m.decode() for m in client.zrange(key(camera, "index"), 0, -1)]
    hashes = {m: client.hgetall(store._clip_key(camera, parse_clip_id(m)[1])) for m in members}
    usage = {k.decode(): int(v) for k, v in client.hgetall(key(camera, "usage")).items()}
    hot, segments, tokens, sizes = 0, {}, 0, 0
    hot_members = set()
    for clip_id, fields in hashes.items():
        meta = store.meta(clip_id)
        tokens += int(fields[b"tokens"])
        sizes += int(fields[b"size"])
        location = cold_location(meta)
        in_hash = sum(len(v) for k, v in fields.items() if is_token_field(k))
        if location is None:
            assert in_hash == int(fields[b"tokens"])
            hot += in_hash
            if in_hash:
                hot_members.add(clip_id)
        else:
            assert in_hash == 0, f"{clip_id} is cold but its hash still holds tokens"
            segments[location.segment] = segments.get(location.segment, 0) + location.record_bytes
            store.tiers.cold.read(camera, location)  # CRC-checked
        non_tokens = sum(len(v) for k, v in fields.items() if not is_token_field(k))
        assert int(fields[b"size"]) == non_tokens + (int(fields[b"tokens"]) if location else in_hash)
    assert usage.get("clips", 0) == len(members)
    assert usage.get("bytes", 0) == sizes
    assert usage.get("tokens", 0) == tokens
    assert usage.get("hot", 0) == hot
    assert {m.decode() for m in client.zrange(key(camera, "hot"), 0, -1)} == hot_members
    live = {k.decode(): int(v) for k, v in client.hgetall(key(camera, "segments")).items() if int(v)}
    assert live == segments


def assert_same_tokens(stored, record) -> None:
    for name in ("video", "audio"):
        got, want = getattr(stored.tokens, name), getattr(record.tokens, name)
        assert torch.equal(got.embeddings, want.embeddings.half().float())
        assert torch.equal(got.positions, want.positions)
        assert torch.equal(got.chunks, want.chunks)


def test_old_tokens_move_to_disk_within_the_hot_share_and_read_back_unchanged(redis_server, tmp_path):
    tiers = TierConfig(cold_dir=tmp_path / "cold", hot_bytes=150_000, segment_bytes=60_000)
    store = open_store(redis_server, tiers)
    records = scene(30)
    for record in records:
        store.put(record)
        assert store.tiers.redis_bytes(store.tiers._usage("lobby")) <= 150_000
    metas = store.clips("lobby")
    cold = [m for m in metas if cold_location(m) is not None]
    assert 20 <= len(cold) < 30 and all(cold_location(m) is None for m in metas[len(cold) :])  # oldest first
    assert [m.clip_id for m in cold] == [r.clip_id for r in records[: len(cold)]]
    for record, stored in zip(records, store.get_many([r.clip_id for r in records]), strict=True):
        assert_same_tokens(stored, record)
    assert len(store.load("lobby", records[0].start, records[-1].end)) == 30
    detail = store.token_detail(cold[0].clip_id)  # what a cold clip kept, read from its segment file
    assert detail.audio.indices == tuple(records[0].tokens.audio.positions[0].tolist())
    assert [list(c[1:]) for c in detail.video.cells] == records[0].tokens.video.positions[1:].T.tolist()
    assert len(list((tmp_path / "cold").rglob("seg-*.omc"))) >= 2  # segments roll at segment_bytes
    assert_tiers_consistent(store, "lobby")


def test_thinning_keeps_the_camera_within_budget_quiet_clips_first_and_events_whole(redis_server, tmp_path):
    records = scene(40)
    clip_bytes = 26_600  # token bytes of one whole clip of this scene
    budget = 12 * clip_bytes
    tiers = TierConfig(cold_dir=tmp_path / "cold", hot_bytes=8 * clip_bytes, thinning=ThinningPolicy(budget))
    store = open_store(redis_server, tiers)
    for record in records:
        store.put(record)
        assert store.tiers._usage("lobby")["tokens"] <= budget
    metas = {m.clip_id: m for m in store.clips("lobby")}
    events = [r.clip_id for i, r in enumerate(records) if i % 7 == 3]
    quiet = [r.clip_id for i, r in enumerate(records) if i % 7 != 3]
    assert all(thinned_level(metas[c]) == 0 for c in events)  # events keep every token
    assert [thinned_level(metas[c]) for c in quiet][:5] == [2] * 5  # the oldest quiet ones keep only scores
    assert 1 in {thinned_level(metas[c]) for c in quiet}  # younger quiet ones keep a quarter
    levels = [thinned_level(metas[c]) for c in quiet[:-1]]
    assert levels == sorted(levels, reverse=True)  # older quiet clips are thinned at least as far
    thin = next(c for c in quiet if thinned_level(metas[c]) == 1)
    stored = store.get(thin)
    original = records[[r.clip_id for r in records].index(thin)]
    assert len(stored.tokens.video) < len(original.tokens.video) / 3
    original_positions = {tuple(p) for p in original.tokens.video.positions.T.tolist()}
    assert {tuple(p) for p in stored.tokens.video.positions.T.tolist()} <= original_positions
    assert set(stored.tokens.video.chunks.tolist()) == set(original.tokens.video.chunks.tolist())  # every frame
    dropped = next(c for c in quiet if thinned_level(metas[c]) == 2)
    with pytest.raises(ClipNotFound, match="thinned away"):
        store.get(dropped)
    assert metas[dropped].scores == original.scores or metas[dropped].scores.activity  # scores stay
    assert len(store.load("lobby", records[0].start, records[-1].end)) < 40  # scores-only clips are skipped
    assert_tiers_consistent(store, "lobby")


def test_reingest_eviction_and_purge_free_cold_records_and_their_files(redis_server, tmp_path):
    tiers = TierConfig(cold_dir=tmp_path / "cold", hot_bytes=60_000, segment_bytes=30_000)
    store = open_store(redis_server, tiers)
    records = scene(12)
    for record in records:
        store.put(record)
    before = {cold_location(m).segment for m in store.clips("lobby") if cold_location(m) is not None}
    assert before
    store.tiers.config = None  # re-ingest everything with nothing moving: every old record is unreferenced
    for record in records:
        store.put(record)
    assert all(cold_location(m) is None for m in store.clips("lobby"))
    assert_tiers_consistent(store, "lobby")
    files = {p.name for p in (tmp_path / "cold" / "omnisift" / "lobby").glob("seg-*.omc")}
    assert files <= {max(before)}  # only the open segment may stay (appends may still come)
    store.tiers.config = tiers
    store.put(records[-1])
    assert any(cold_location(m) is not None for m in store.clips("lobby"))
    store.delete(records[1].clip_id)
    assert_tiers_consistent(store, "lobby")
    assert store.purge() == 11
    assert not (tmp_path / "cold" / "omnisift" / "lobby").exists()


def test_a_damaged_cold_record_is_refused_not_decoded(redis_server, tmp_path):
    store = open_store(redis_server, TierConfig(cold_dir=tmp_path / "cold", hot_bytes=60_000))
    for record in scene(6):
        store.put(record)
    meta = store.clips("lobby")[0]
    location = cold_location(meta)
    path = tmp_path / "cold" / "omnisift" / "lobby" / location.segment
    data = bytearray(path.read_bytes())
    data[location.offset + 20] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(Exception, match="damaged"):
        store.get(meta.clip_id)


def test_a_clip_rewritten_while_it_moves_keeps_its_newest_record(redis_server, tmp_path):
    """Real concurrency: one thread re-ingests clips while another moves them to disk; every clip ends as the
    last write made it (a move never overwrites a newer record), and the counters stay exact."""
    store = open_store(redis_server, TierConfig(cold_dir=tmp_path / "cold"))
    records = scene(8)
    for record in records:
        store.put(record)
    writer_store = open_store(redis_server, TierConfig(cold_dir=tmp_path / "cold"))
    stop = threading.Event()

    def rewrite_forever() -> None:
        while not stop.is_set():
            for record in records:
                writer_store.put(record)

    writer = threading.Thread(target=rewrite_forever)
    writer.start()
    try:
        deadline = time.monotonic() + 2
        moved = 0
        while time.monotonic() < deadline:
            moved += store.tiers.rewrite("lobby", [r.clip_id for r in records], "cold")
    finally:
        stop.set()
        writer.join()
    assert moved > 0
    for record, stored in zip(records, store.get_many([r.clip_id for r in records]), strict=True):
        assert_same_tokens(stored, record)
    assert_tiers_consistent(store, "lobby")
