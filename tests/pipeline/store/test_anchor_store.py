"""AnchorStore against a real redis-server: round trips, time-range queries, idempotence, fingerprints,
concurrency, retention, persistence, restarts and outages, and the embedded server."""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta

import pytest
import torch

from pipeline.errors import (
    ClipNotFound,
    FingerprintMismatch,
    InvalidRecord,
    SchemaMismatch,
    StoreUnavailable,
)
from pipeline.records import ClipRecord
from pipeline.redaction import redact_url
from pipeline.store.anchor_store import AnchorStore
from pipeline.store.codec import dequantize_int8, quantize_int8
from pipeline.store.config import CameraSettings, RetentionPolicy, StoreConfig
from pipeline.store.connection import RedisConfig, RetryPolicy, connect, make_client
from tests.fixtures.anchor_clips import FINGERPRINT, T0, compressed_record, record_at

NO_RETENTION = RetentionPolicy(max_age=None, max_bytes=None)
INT8_MAX_ERROR = 1 / 254  # per token: |x - x_hat| <= max|x| / 254 (half a quantization step)


def open_store(server, encoding="float16", retention=NO_RETENTION, fingerprint=FINGERPRINT, **config) -> AnchorStore:
    client = make_client(server.url, RedisConfig(url=server.url, socket_timeout_s=5))
    return AnchorStore(client, fingerprint, StoreConfig(encoding=encoding, retention=retention, **config))


def assert_consistent(store: AnchorStore, camera_id: str) -> None:
    """Index, records and usage agree: every index entry has a record and vice versa; totals are exact."""
    client, ns = store.client, store.config.namespace
    members = {m.decode() for m in client.zrange(f"{ns}:{{{camera_id}}}:index", 0, -1)}
    assert {m.decode() for m in client.zrange(f"{ns}:{{{camera_id}}}:stored", 0, -1)} == members
    keys = {k.decode() for k in client.scan_iter(match=f"{ns}:{{{camera_id}}}:clip:*")}
    assert {f"{ns}:{{{camera_id}}}:clip:{m.split('@')[1]}" for m in members} == keys
    sizes = [int(client.hget(k, "size")) for k in keys]
    fields = sum(sum(len(v) for v in client.hgetall(k).values()) for k in keys)
    usage = store.usage(camera_id)
    assert usage.clips == len(keys)
    assert usage.stored_bytes == sum(sizes) == fields


# ---- encodings -------------------------------------------------------------------------------------------


def test_float16_round_trip_is_exact_for_tokens_positions_times_and_metadata(redis_server):
    store = open_store(redis_server)
    record, compression = compressed_record(moving_frames=frozenset({3, 5}), loud_chunks=(2,))
    result = store.put(record)
    stored = store.get(record.clip_id)
    for name in ("video", "audio"):
        original, back = getattr(compression.kept, name), getattr(stored.tokens, name)
        assert torch.equal(back.embeddings, original.embeddings.half().float())
        assert torch.equal(back.positions, original.positions)
        assert torch.equal(back.times, original.times)
        assert torch.equal(back.chunks, original.chunks)
        assert back.embeddings.device.type == "cpu"
    assert stored.tokens.grid == compression.kept.grid
    meta = stored.meta
    assert (meta.clip_id, meta.start, meta.end) == (record.clip_id, record.start, record.end)
    assert meta.source_counts == compression.source_counts == (800, 250)
    assert meta.kept_counts == compression.kept_counts
    assert meta.scores == record.scores
    assert meta.fingerprint == FINGERPRINT and meta.encoding == "float16"
    assert meta.stored_bytes == result.stored_bytes == store.usage("lobby").stored_bytes
    assert stored.meta == store.meta(record.clip_id)


def test_float16_tokens_already_in_half_precision_come_back_bit_identical(redis_server):
    store = open_store(redis_server)
    record, _ = compressed_record()
    half = ClipRecord(**{**record.__dict__, "tokens": _cast(record.tokens, torch.float16)})
    store.put(half)
    back = store.get(record.clip_id, dtype=torch.float16).tokens
    assert torch.equal(back.video.embeddings, half.tokens.video.embeddings)
    assert torch.equal(back.audio.embeddings, half.tokens.audio.embeddings)


def _cast(tokens, dtype):
    from omnisift_core.tokens import ClipTokens, TokenStream

    def cast(s):
        return TokenStream(s.embeddings.to(dtype), s.positions, s.times, s.chunks)

    return ClipTokens(cast(tokens.video), cast(tokens.audio), tokens.grid)


def test_int8_round_trip_is_within_half_a_step_per_token_and_halves_the_bytes(redis_server):
    fp16, int8 = open_store(redis_server), open_store(redis_server, encoding="int8", namespace="q8")
    record, compression = compressed_record(dim=256, moving_frames=frozenset({1, 3}))
    small = int8.put(record).stored_bytes
    large = fp16.put(record).stored_bytes
    back = int8.get(record.clip_id).tokens
    for name in ("video", "audio"):
        x = getattr(compression.kept, name).embeddings
        y = getattr(back, name).embeddings
        bound = x.abs().amax(dim=1, keepdim=True) * INT8_MAX_ERROR
        assert ((x - y).abs() <= bound * (1 + 1e-5)).all()
        assert ((x - y).norm() / x.norm()) < 0.01
        assert torch.nn.functional.cosine_similarity(x, y, dim=1).min() > 0.9999
        assert torch.equal(getattr(back, name).positions, getattr(compression.kept, name).positions)
    assert small < 0.6 * large


def test_int8_quantizer_keeps_zero_rows_and_extremes():
    x = torch.tensor([[0.0, 0.0, 0.0], [-3.0, 1.5, 3.0]])
    q, scale = quantize_int8(x)
    assert q.dtype == torch.int8 and q[1].tolist() == [-127, 64, 127]
    assert torch.equal(dequantize_int8(q, scale)[0], x[0])


# ---- time index ------------------------------------------------------------------------------------------


def test_time_range_queries_treat_clips_as_half_open_at_their_boundaries(redis_server):
    store = open_store(redis_server)
    for offset in (0, 10, 20, 40):  # a gap between 30 and 40
        store.put(record_at("lobby", offset))
    at = lambda s: T0 + timedelta(seconds=s)  # noqa: E731

    def ids(a, b):
        return [m.start_ms for m in store.clips("lobby", at(a), at(b))]

    starts = {s: int(at(s).timestamp() * 1000) for s in (0, 10, 20, 40)}
    assert ids(10, 20) == [starts[10]]
    assert ids(9.999, 10) == [starts[0]]
    assert ids(10, 10.001) == [starts[10]]
    assert ids(0, 50) == [starts[0], starts[10], starts[20], starts[40]]
    assert ids(19.999, 20.001) == [starts[10], starts[20]]
    assert ids(30, 40) == []
    assert ids(-100, 0) == []
    assert [m.start_ms for m in store.clips("lobby")] == sorted(starts.values())
    loaded = store.load("lobby", at(5), at(15))
    assert [c.meta.start_ms for c in loaded] == [starts[0], starts[10]]
    assert all(len(c.tokens.video) == c.meta.kept_counts[0] for c in loaded)


def test_cameras_are_indexed_separately(redis_server):
    store = open_store(redis_server)
    store.put(record_at("lobby", 0))
    store.put(record_at("garage", 0))
    store.put(record_at("garage", 10))
    assert store.cameras() == ["garage", "lobby"]
    assert len(store.clips("lobby")) == 1 and len(store.clips("garage")) == 2
    assert store.get_many([record_at("garage", 10).clip_id, record_at("lobby", 0).clip_id])[1].meta.camera_id == "lobby"


def test_missing_clip_is_a_clear_not_found(redis_server):
    store = open_store(redis_server)
    with pytest.raises(ClipNotFound, match="not stored"):
        store.get("lobby@123")
    assert store.get_many(["lobby@123"], skip_missing=True) == []


# ---- writes ----------------------------------------------------------------------------------------------


def test_reingesting_a_clip_replaces_it_and_keeps_usage_exact(redis_server):
    store = open_store(redis_server, encoding="int8")
    record = record_at("lobby", 0)
    first = store.put(record)
    second = store.put(record)
    assert not first.replaced and second.replaced
    assert store.usage("lobby").clips == 1
    assert store.usage("lobby").stored_bytes == first.stored_bytes
    fp16 = AnchorStore(store.client, FINGERPRINT, StoreConfig(retention=NO_RETENTION))
    third = fp16.put(record_at("lobby", 0, seed=7))  # same clip id, other content and encoding
    assert third.replaced and third.stored_bytes > first.stored_bytes
    assert store.client.hget("omnisift:{lobby}:clip:" + str(record.start_ms), "v.scale") is None  # nothing stale
    assert fp16.get(record.clip_id).meta.encoding == "float16"
    assert_consistent(store, "lobby")


def test_fingerprint_mismatch_is_refused_for_writes_and_reads(redis_server):
    store = open_store(redis_server)
    store.put(record_at("lobby", 0))
    other = open_store(redis_server, fingerprint="qwen2.5-omni-3b|omnisift:v=0.67:a=0.4:training-free")
    foreign = compressed_record(fingerprint=other.fingerprint)[0]
    with pytest.raises(FingerprintMismatch, match="never be mixed"):
        other.put(foreign)
    with pytest.raises(FingerprintMismatch):
        other.get(record_at("lobby", 0).clip_id)
    with pytest.raises(FingerprintMismatch, match="compressed by"):
        store.put(foreign)
    assert store.usage("lobby").clips == 1
    separate = open_store(redis_server, fingerprint=other.fingerprint, namespace="omnisift3b")
    separate.put(foreign)  # another namespace is fine
    assert separate.get(foreign.clip_id).meta.fingerprint == other.fingerprint
    assert other.purge() > 0  # switching the namespace to the other model: drop the old clips first
    other.put(foreign)
    assert [m.fingerprint for m in other.clips("lobby")] == [other.fingerprint]
    assert separate.get(foreign.clip_id)  # the other namespace was left alone


def test_records_from_another_schema_version_are_refused(redis_server):
    store = open_store(redis_server)
    record = record_at("lobby", 0)
    store.put(record)
    key = f"omnisift:{{lobby}}:clip:{record.start_ms}"
    meta = json.loads(store.client.hget(key, "meta"))
    store.client.hset(key, "meta", json.dumps({**meta, "schema": 99}))
    with pytest.raises(SchemaMismatch, match="schema 99"):
        store.get(record.clip_id)


def test_invalid_records_are_refused_with_the_rule_they_break(redis_server):
    store = open_store(redis_server, max_clip_seconds=30)
    with pytest.raises(InvalidRecord, match="camera id"):
        record_at("lobby:1", 0)
    with pytest.raises(InvalidRecord, match="at most 30 s"):
        store.put(record_at("lobby", 0, seconds=40))
    record = record_at("lobby", 0)
    with pytest.raises(InvalidRecord, match="not after its start"):
        ClipRecord(**{**record.__dict__, "end": record.start})


def test_two_concurrent_writers_leave_index_records_and_usage_consistent(redis_server):
    stores = [open_store(redis_server), open_store(redis_server)]
    records = [record_at("lobby", 10 * i) for i in range(24)]
    errors: list[BaseException] = []

    def write(store, order):
        try:
            for i in order:
                store.put(records[i])
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    orders = [list(range(24)), list(reversed(range(24)))]  # every clip written by both, in opposite orders
    threads = [threading.Thread(target=write, args=(s, o)) for s, o in zip(stores, orders, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    assert store_ids(stores[0]) == [r.clip_id for r in records]
    assert_consistent(stores[0], "lobby")


def test_two_writers_rewriting_the_same_clips_in_different_encodings_keep_usage_exact(redis_server):
    # the same clip ids, written over and over by both, with different record sizes (int8 vs float16):
    # a lost update would leave the usage total off by a size difference
    stores = [open_store(redis_server, encoding="int8"), open_store(redis_server, encoding="float16")]
    records = [record_at("lobby", 10 * i) for i in range(6)]
    threads = [threading.Thread(target=lambda s=s: [s.put(r) for _ in range(12) for r in records]) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert store_ids(stores[0]) == [r.clip_id for r in records]
    assert_consistent(stores[0], "lobby")


def test_concurrent_writers_under_byte_retention_keep_the_accounting_exact(redis_server):
    size = open_store(redis_server, namespace="probe").put(record_at("lobby", 0)).stored_bytes
    retention = RetentionPolicy(max_age=None, max_bytes=int(size * 5.5))
    stores = [open_store(redis_server, retention=retention) for _ in range(2)]
    threads = [
        threading.Thread(target=lambda s=s, k=k: [s.put(record_at("lobby", 10 * (2 * i + k))) for i in range(12)])
        for k, s in enumerate(stores)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert_consistent(stores[0], "lobby")
    usage = stores[0].usage("lobby")
    assert usage.stored_bytes <= retention.max_bytes
    assert usage.newest == T0 + timedelta(seconds=230)


def store_ids(store: AnchorStore, camera_id: str = "lobby") -> list[str]:
    return [m.clip_id for m in store.clips(camera_id)]


# ---- retention -------------------------------------------------------------------------------------------


class Clock:
    """The server's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self):
        return self.now


def test_retention_by_age_counts_from_when_clips_were_stored_and_evicts_record_and_index_together(redis_server):
    clock = Clock()
    store = open_store(redis_server, retention=RetentionPolicy(max_age=timedelta(seconds=30), max_bytes=None))
    store.clock = clock
    evicted = []
    for i in range(10):
        clock.now = T0 + timedelta(seconds=10 * i)  # live: stored as the footage is recorded
        evicted += store.put(record_at("lobby", 10 * i)).evicted
    kept = store_ids(store)
    assert kept == [record_at("lobby", s).clip_id for s in (60, 70, 80, 90)]
    assert evicted == [record_at("lobby", s).clip_id for s in (0, 10, 20, 30, 40, 50)]
    with pytest.raises(ClipNotFound):
        store.get(evicted[0])
    assert_consistent(store, "lobby")


def test_footage_with_a_wrong_clock_evicts_nothing_and_old_footage_is_kept(redis_server):
    """A file uploaded with start_time years ahead once erased every earlier clip of its camera."""
    store = open_store(redis_server, retention=RetentionPolicy(max_age=timedelta(hours=24), max_bytes=None))
    today = [store.put(record_at("lobby", 10 * i)).clip_id for i in range(9)]
    future = store.put(record_at("lobby", 5 * 365 * 86400))  # footage stamped five years ahead
    last_year = store.put(record_at("lobby", -365 * 86400, seed=1))  # footage a year old, uploaded today
    assert future.evicted == () and last_year.evicted == ()
    assert [m.clip_id for m in store.clips("lobby", T0, T0 + timedelta(minutes=5))] == today
    assert len(store_ids(store)) == 11
    assert_consistent(store, "lobby")


def test_retention_by_bytes_keeps_the_newest_clips_within_the_limit(redis_server):
    probe = open_store(redis_server, namespace="probe")
    size = probe.put(record_at("lobby", 0)).stored_bytes
    store = open_store(redis_server, retention=RetentionPolicy(max_age=None, max_bytes=int(size * 3.5)))
    for i in range(8):
        store.put(record_at("lobby", 10 * i))
        store.put(record_at("garage", 10 * i))
    for camera in ("lobby", "garage"):
        usage = store.usage(camera)
        assert usage.clips == 3 and usage.stored_bytes <= size * 3.5
        assert store_ids(store, camera) == [record_at(camera, s).clip_id for s in (50, 60, 70)]
        assert_consistent(store, camera)


def test_per_camera_settings_override_the_store_retention(redis_server):
    store = open_store(redis_server, retention=NO_RETENTION)
    store.clock = clock = Clock()
    store.set_camera(CameraSettings("lobby", "Europe/Berlin", RetentionPolicy(timedelta(seconds=15), None)))
    for i in range(5):
        clock.now = T0 + timedelta(seconds=10 * i)
        store.put(record_at("lobby", 10 * i))
        store.put(record_at("garage", 10 * i))
    assert store.camera("lobby").timezone == "Europe/Berlin"
    assert store.camera("lobby").retention == RetentionPolicy(timedelta(seconds=15), None)
    assert store.camera("garage") == CameraSettings("garage")
    assert len(store_ids(store, "lobby")) == 2 and len(store_ids(store, "garage")) == 5
    with pytest.raises(InvalidRecord, match="timezone"):
        CameraSettings("lobby", "Mars/Olympus")


def test_deleting_a_camera_removes_all_its_keys(redis_server):
    store = open_store(redis_server)
    for i in range(3):
        store.put(record_at("lobby", 10 * i))
    store.put(record_at("garage", 0))
    store.set_camera(CameraSettings("lobby", "Asia/Tokyo"))
    assert store.delete_camera("lobby") == 3
    assert list(store.client.scan_iter(match="omnisift:{lobby}:*")) == []
    assert store.cameras() == ["garage"]
    assert store.usage("lobby").clips == 0


# ---- durability ------------------------------------------------------------------------------------------


def test_clips_survive_a_redis_restart_and_a_crash(redis_server):
    store = open_store(redis_server)
    records = [record_at("lobby", 10 * i) for i in range(3)]
    for record in records[:2]:
        store.put(record)
    redis_server.restart()  # graceful
    store.put(records[2])  # the store reconnects by itself
    redis_server.kill()  # crash: only what was fsynced survives, and every acknowledged write was
    redis_server.start()
    reopened = open_store(redis_server)
    assert store_ids(reopened) == [r.clip_id for r in records]
    assert torch.equal(
        reopened.get(records[1].clip_id).tokens.video.embeddings,
        records[1].tokens.video.embeddings.half().float(),
    )
    assert_consistent(reopened, "lobby")


class RetryWatcher(logging.Handler):
    """Sets an event when the store logs a retry (so the test restarts Redis only once a write waits)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.retrying = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.retrying.set()


def test_writes_wait_out_a_redis_outage_and_nothing_acknowledged_is_lost(redis_server):
    policy = RetryPolicy(attempts=60, base_delay_s=0.02, max_delay_s=0.25)
    store = open_store(redis_server, retry=policy)
    records = [record_at("lobby", 10 * i) for i in range(12)]
    acknowledged: list[str] = []
    failure: list[BaseException] = []
    halfway, killed = threading.Event(), threading.Event()

    def write():
        try:
            for record in records:
                acknowledged.append(store.put(record).clip_id)
                if len(acknowledged) == 4:
                    halfway.set()
                    killed.wait(60)  # the next write meets the outage
        except BaseException as error:
            failure.append(error)
            halfway.set()

    watcher = RetryWatcher()
    logging.getLogger("pipeline.store.connection").addHandler(watcher)
    try:
        writer = threading.Thread(target=write)
        writer.start()
        assert halfway.wait(60)
        redis_server.kill()  # mid-sequence
        killed.set()
        assert watcher.retrying.wait(60), "the writer never hit the outage"
        acknowledged_during_outage = list(acknowledged)
        redis_server.start()
        writer.join(timeout=120)
    finally:
        logging.getLogger("pipeline.store.connection").removeHandler(watcher)
    assert not writer.is_alive() and not failure
    assert acknowledged == [r.clip_id for r in records]
    survivors = set(store_ids(open_store(redis_server)))
    assert set(acknowledged_during_outage) <= survivors
    assert survivors == set(acknowledged)
    assert_consistent(store, "lobby")


def test_writes_fail_loudly_when_redis_stays_down(redis_server):
    policy = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.02)
    store = open_store(redis_server, retry=policy)
    store.put(record_at("lobby", 0))
    redis_server.kill()
    with pytest.raises(StoreUnavailable, match=r"3 tries .* REDIS_URL") as raised:
        store.put(record_at("lobby", 10))
    assert f"127.0.0.1:{redis_server.port}" in str(raised.value)
    with pytest.raises(StoreUnavailable):
        store.clips("lobby")


def test_external_connection_reports_persistence_and_hides_the_password(redis_server):
    with connect(RedisConfig(url=redis_server.url)) as connection:
        assert connection.persistence()["appendonly"] == "yes"
        assert connection.server is None and not connection.embedded
        store = AnchorStore.open(connection, FINGERPRINT)
        store.put(record_at("lobby", 0))
        assert len(store.clips("lobby")) == 1
    assert redact_url("redis://user:s3cret@cache:6379/0") == "redis://***@cache:6379/0"
    assert redact_url("redis://cache:6379/0") == "redis://cache:6379/0"


# ---- embedded server -------------------------------------------------------------------------------------


def test_embedded_server_starts_stores_restarts_and_still_finds_the_clips(tmp_path):
    config = RedisConfig(url=None, data_dir=tmp_path / "a" / "redis")
    records = [record_at("lobby", 10 * i) for i in range(3)]
    with connect(config) as first:
        assert first.embedded and first.server is not None and first.server.running
        assert first.persistence()["appendonly"] == "yes" and first.persistence()["appendfsync"] == "always"
        store = AnchorStore.open(first, FINGERPRINT)
        for record in records:
            store.put(record)
        with connect(config) as second:  # another process on the same data dir: shares the running server
            assert second.server is None and second.url == first.url
            assert len(AnchorStore.open(second, FINGERPRINT).clips("lobby")) == 3
        assert first.server.running  # closing a non-owner left it up
        process = first.server.process
    assert process.poll() is not None  # the owner stopped it on close
    assert (config.data_dir / "appendonly.aof").stat().st_size > 0
    with connect(config) as again:
        assert again.server is not None and again.server.process.pid != process.pid
        store = AnchorStore.open(again, FINGERPRINT)
        assert [m.clip_id for m in store.clips("lobby")] == [r.clip_id for r in records]
        assert store.get(records[2].clip_id).meta.kept_counts == (len(records[2].tokens.video), 125)


def test_a_killed_embedded_server_is_restarted_and_writes_carry_on_with_nothing_acknowledged_lost(tmp_path):
    config = RedisConfig(url=None, data_dir=tmp_path / "redis")
    with connect(config) as connection:
        store = AnchorStore.open(connection, FINGERPRINT)
        acknowledged = [store.put(record_at("lobby", 10 * i)).clip_id for i in range(3)]
        killed = connection.server.process
        killed.kill()  # SIGKILL, as the OOM killer would
        store.put(record_at("lobby", 30))  # retries until the watcher has the server back
        assert killed.poll() is not None  # reaped, not left a zombie
        assert connection.server.restarts == 1 and connection.server.process.pid != killed.pid
        assert [m.clip_id for m in store.clips("lobby")] == [*acknowledged, record_at("lobby", 30).clip_id]
    assert oct(config.data_dir.stat().st_mode & 0o777) == "0o700"
    private = [f for f in config.data_dir.rglob("*") if f.is_file() and "appendonly" in f.name]
    assert private and all(oct(f.stat().st_mode & 0o777) == "0o600" for f in private)


def test_embedded_server_uses_a_short_socket_path_for_deep_data_dirs(tmp_path):
    deep = tmp_path.joinpath(*["nested-directory-level"] * 5)
    with connect(RedisConfig(data_dir=deep)) as connection:
        assert len(connection.url) < 110
        AnchorStore.open(connection, FINGERPRINT).put(record_at("lobby", 0))
        socket_dir = connection.server.socket_path.parent
    assert not socket_dir.exists()
    assert (deep / "appendonly.aof").exists()


def test_store_unavailable_when_nothing_listens():
    client = make_client("redis://127.0.0.1:1/0", RedisConfig())
    store = AnchorStore(client, FINGERPRINT, StoreConfig(retry=RetryPolicy(attempts=2, base_delay_s=0.01)))
    with pytest.raises(StoreUnavailable, match="2 tries"):
        store.put(record_at("lobby", 0))
