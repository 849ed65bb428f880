"""AnchorStore: compressed clips in Redis, one hash per clip plus a per-camera time index, with retention.

Key layout (namespace `ns`, default "omnisift"; `{camera}` is a Redis Cluster hash tag, so every key of a
camera lives in one slot and a clip's write is one MULTI/EXEC):
    ns:fingerprint                  string  model+compressor fingerprint of every record in the namespace
    ns:cameras                      set     camera ids with stored clips or settings
    ns:{camera}:clip:<start_ms>     hash    one clip: "meta" JSON, "size", and raw little-endian arrays
    ns:{camera}:index               zset    member clip id, score start_ms
    ns:{camera}:stored              zset    member clip id, score the server time it was stored (ms): retention age
    ns:{camera}:usage               hash    "bytes", "clips": running totals kept in the same transactions
    ns:{camera}:settings            string  CameraSettings JSON (timezone, retention)
    ns:{camera}:stored-log          stream  one entry {clip: clip id} per write, in the clip's transaction (alerts)
    ns:{camera}:hot, :thin, :segments       tiering: hot clips, thinning order, live bytes per segment file
A clip's token arrays may live in a segment file instead of the hash (its meta's "tier" says where; tiering.py).
A clip hash holds "meta" (ClipMeta JSON: times, fingerprint, encoding, grid, counts before/after,
per-chunk activity and audio salience, schema), "size" (its payload bytes), and per modality (v, a)
little-endian arrays: "<m>.emb" (N, D) float16 or int8, "<m>.scale" (N,) float32 for int8,
"<m>.pos" (3, N) int32 TMRoPE positions, "<m>.time" (N,) float32 seconds, "<m>.chunk" (N,) int32,
"<m>.score" (N,) float32 compressor scores (absent in older records); "still": one JPEG (absent without video).
Values are raw bytes and JSON; nothing is pickled.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import redis
import torch

from omnisift_core.tokens import ClipTokens
from pipeline.errors import ClipNotFound, FingerprintMismatch, InvalidRecord, StillNotFound, StoreUnavailable
from pipeline.identifiers import check_camera_id, parse_clip_id
from pipeline.records import ClipMeta, ClipRecord, StillInfo, StoredClip, from_ms, to_ms
from pipeline.store.codec import STILL_FIELD, decode_meta, decode_stream, encode_record
from pipeline.store.config import CameraSettings, RetentionPolicy, StoreConfig
from pipeline.store.connection import RedisConnection, watched_transaction
from pipeline.store.tier_state import is_cold, thinned_level
from pipeline.store.tiering import ColdReads, OldTokens, Tiers, missing_tokens
from pipeline.store.token_detail import DETAIL_FIELDS, TokenDetail, decode_token_detail

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


READ_BATCH = 4  # clips per pipelined round trip: larger replies slow redis-py's parser down
CLIP_LOG_MAXLEN = 10_000  # entries kept per camera for consumers that fell behind (approximate trim)


@dataclass(frozen=True)
class PutResult:
    clip_id: str
    stored_bytes: int
    replaced: bool  # a record with this clip id existed and was overwritten (re-ingest)
    evicted: tuple[str, ...]  # clip ids retention removed after this write


@dataclass(frozen=True)
class CameraUsage:
    camera_id: str
    clips: int
    stored_bytes: int
    oldest: datetime | None
    newest: datetime | None


# ---- the store -------------------------------------------------------------------------------------------


class AnchorStore:
    """Compressed clips by camera and time. Thread-safe; every operation retries per `config.retry`."""

    def __init__(
        self,
        client: redis.Redis,
        fingerprint: str | None,
        config: StoreConfig | None = None,
        where: str = "",
        clock: Callable[[], datetime] = utc_now,
    ):
        """`fingerprint` is the model+compressor identity of the tokens this handle writes and reads; None
        opens a metadata handle (the gateway's), which never touches tokens and so needs no model. `clock` is
        the server's: retention ages clips by when they were stored, never by their footage's own times."""
        self.client = client
        self.clock = clock
        self.fingerprint = fingerprint
        self.config = config or StoreConfig()
        self.where = where or _describe(client)
        self._namespace_checked = False
        self.tiers = Tiers(self, self.config.tiers)

    @classmethod
    def open(
        cls, connection: RedisConnection, fingerprint: str | None, config: StoreConfig | None = None
    ) -> AnchorStore:
        return cls(connection.client, fingerprint, config, where=connection.url)

    # keys
    def _key(self, camera_id: str, suffix: str) -> str:
        return f"{self.config.namespace}:{{{camera_id}}}:{suffix}"

    def clip_log_key(self, camera_id: str) -> str:
        """The camera's log of stored clips: every write appends its clip id in the same transaction, so a
        consumer (alert evaluation) sees every stored clip once the write is acknowledged."""
        return self._key(camera_id, "stored-log")

    def _clip_key(self, camera_id: str, start_ms: int) -> str:
        return self._key(camera_id, f"clip:{start_ms}")

    @property
    def _fingerprint_key(self) -> str:
        return f"{self.config.namespace}:fingerprint"

    @property
    def _cameras_key(self) -> str:
        return f"{self.config.namespace}:cameras"

    def _run(self, operation, what: str):
        return self.config.retry.run(operation, what, self.where)

    def _require_fingerprint(self, what: str) -> None:
        if self.fingerprint is None:
            raise InvalidRecord(f"{what} needs a store opened with the model+compressor fingerprint")

    def ping(self) -> None:
        """One PING, without the retries of other operations: StoreUnavailable at once when Redis is gone."""
        try:
            self.client.ping()
        except redis.RedisError as error:
            raise StoreUnavailable(f"Redis at {self.where} does not answer: {error}") from error

    def stored_fingerprint(self) -> str | None:
        """The fingerprint the namespace's tokens were stored with (None while it holds none)."""
        raw = self._run(lambda: self.client.get(self._fingerprint_key), "reading the store fingerprint")
        return None if raw is None else raw.decode()

    # fingerprint guard
    def _check_namespace(self, claim: bool) -> None:
        """Refuse to mix fingerprints in one namespace; `claim` records ours if the namespace is empty."""
        if self._namespace_checked:
            return

        def check() -> bytes | None:
            if claim:
                self.client.set(self._fingerprint_key, self.fingerprint, nx=True)
            return self.client.get(self._fingerprint_key)

        stored = self._run(check, "checking the store fingerprint")
        if stored is None:
            return
        if stored.decode() != self.fingerprint:
            raise FingerprintMismatch(
                f"store namespace {self.config.namespace!r} at {self.where} holds tokens from "
                f"{stored.decode()!r}, but this process produces {self.fingerprint!r}. Tokens of different "
                "models or compressor settings must never be mixed: configure another store namespace "
                "(store_namespace), or drop the stored clips with `omnisift purge`."
            )
        self._namespace_checked = True

    # writing
    def put(self, record: ClipRecord) -> PutResult:
        """Store one clip atomically (record, index entry and usage in one MULTI/EXEC), then apply retention.

        Re-ingesting a clip id replaces its record; usage stays exact. Returns after Redis acknowledged.
        """
        self._require_fingerprint("writing clips")
        if record.fingerprint != self.fingerprint:
            raise FingerprintMismatch(
                f"clip {record.clip_id} was compressed by {record.fingerprint!r}, but this store holds "
                f"{self.fingerprint!r}; tokens of different models or compressor settings are never mixed"
            )
        if record.duration.total_seconds() > self.config.max_clip_seconds:
            raise InvalidRecord(
                f"clip {record.clip_id} lasts {record.duration.total_seconds():g} s; the store takes clips of at "
                f"most {self.config.max_clip_seconds:g} s (store max_clip_seconds)"
            )
        self._check_namespace(claim=True)
        meta, fields = encode_record(record, self.config.encoding)
        camera, clip_id = record.camera_id, record.clip_id
        key = self._clip_key(camera, record.start_ms)
        index, usage, stored_at = self._key(camera, "index"), self._key(camera, "usage"), self._key(camera, "stored")
        log_key = self.clip_log_key(camera)

        def write() -> list[bytes | None]:
            with self.client.pipeline(transaction=False) as claims:  # idempotent; other slots than the camera's
                claims.sadd(self._cameras_key, camera)
                claims.set(self._fingerprint_key, self.fingerprint, nx=True)  # re-claimed after a purge
                claims.execute()

            def replace(pipe, seen: list[bytes | None]) -> None:
                old = seen[0]
                pipe.delete(key)
                pipe.hset(key, mapping=fields)
                pipe.zadd(index, {clip_id: record.start_ms})
                pipe.zadd(stored_at, {clip_id: to_ms(self.clock())})
                pipe.hincrby(usage, "bytes", meta.stored_bytes - int(old or 0))
                pipe.hincrby(usage, "clips", 0 if old is not None else 1)
                self.tiers.queue_put(pipe, meta, int(fields["tokens"]), OldTokens.read(seen[1], seen[2]))
                pipe.xadd(log_key, {"clip": clip_id}, maxlen=CLIP_LOG_MAXLEN, approximate=True)

            def read() -> list[bytes | None]:
                return self.client.hmget(key, "size", "tokens", "meta")

            return watched_transaction(self.client, [key], read, replace, clip_id)

        seen = self._run(write, f"writing clip {clip_id}")
        replaced, old = seen[0] is not None, OldTokens.read(seen[1], seen[2])
        if old.location is not None:  # a re-ingest of a cold clip: its record may have been a segment's last
            self.tiers.remove_dead_segments(camera, {old.location.segment})
        self.tiers.settle(camera)  # thinning and the move to disk come before any eviction
        evicted = self.enforce_retention(camera)
        return PutResult(clip_id, meta.stored_bytes, replaced, tuple(evicted))

    # reading
    def get(self, clip_id: str, dtype: torch.dtype = torch.float32) -> StoredClip:
        """One clip with its kept tokens (CPU tensors, original positions)."""
        return self.get_many([clip_id], dtype)[0]

    def get_many(
        self,
        clip_ids: Sequence[str],
        dtype: torch.dtype = torch.float32,
        skip_missing: bool = False,
        timing: ColdReads | None = None,
    ) -> list[StoredClip]:
        """Clips in the order asked, read in pipelined round trips of READ_BATCH clips; tokens in the cold tier
        are read from their segment files (counted in `timing`)."""
        self._require_fingerprint("reading tokens")
        self._check_namespace(claim=False)
        keys = [self._clip_key(*parse_clip_id(c)) for c in clip_ids]

        def read() -> list[dict]:
            replies = []
            for first in range(0, len(keys), READ_BATCH):
                with self.client.pipeline(transaction=False) as pipe:
                    for key in keys[first : first + READ_BATCH]:
                        pipe.hgetall(key)
                    replies += pipe.execute()
            return replies

        results = []
        for clip_id, fields in zip(clip_ids, self._run(read, f"reading {len(keys)} clip(s)"), strict=True):
            if not fields:
                if skip_missing:
                    continue
                raise ClipNotFound(f"clip {clip_id} is not stored (never ingested, or evicted by retention)")
            meta = decode_meta(fields[b"meta"])
            if thinned_level(meta) >= 2:
                if skip_missing:
                    continue
                raise missing_tokens(meta)
            results.append(self._decode(meta, {**fields, **self.tiers.tokens_of(fields, meta, timing)}, dtype))
        return results

    def _decode(self, meta: ClipMeta, fields: dict[bytes, bytes], dtype: torch.dtype) -> StoredClip:
        """`fields` hold the token arrays, read from the hash or from the cold tier."""
        if meta.fingerprint != self.fingerprint:
            raise FingerprintMismatch(
                f"clip {meta.clip_id} holds tokens from {meta.fingerprint!r}, this process uses {self.fingerprint!r}"
            )
        (n_v, n_a), dim = meta.kept_counts, meta.hidden_size
        tokens = ClipTokens(
            video=decode_stream(fields, "v", n_v, dim, meta.encoding, dtype),
            audio=decode_stream(fields, "a", n_a, dim, meta.encoding, dtype),
            grid=meta.grid,
        )
        return StoredClip(meta, tokens)

    def meta(self, clip_id: str) -> ClipMeta:
        camera, start_ms = parse_clip_id(clip_id)
        raw = self._run(lambda: self.client.hget(self._clip_key(camera, start_ms), "meta"), f"reading {clip_id}")
        if raw is None:
            raise ClipNotFound(f"clip {clip_id} is not stored (never ingested, or evicted by retention)")
        return decode_meta(raw)

    def token_detail(self, clip_id: str) -> TokenDetail:
        """What the clip kept, without its embeddings, from the hash or the cold tier: any handle reads it (the
        gateway's too). A clip thinned to its scores has no tokens to detail (ClipNotFound says so)."""
        camera, start_ms = parse_clip_id(clip_id)
        names = ("meta", *DETAIL_FIELDS)
        values = self._run(lambda: self.client.hmget(self._clip_key(camera, start_ms), names), f"reading {clip_id}")
        if values[0] is None:
            raise ClipNotFound(f"clip {clip_id} is not stored (never ingested, or evicted by retention)")
        meta = decode_meta(values[0])
        if thinned_level(meta) >= 2:
            raise missing_tokens(meta)
        raw = dict(zip(DETAIL_FIELDS, values[1:], strict=True))
        if is_cold(meta):
            cold = self.tiers.tokens_of({}, meta)
            raw = {name: cold.get(name.encode()) for name in DETAIL_FIELDS}
        return decode_token_detail(meta, raw)

    def still(self, clip_id: str) -> tuple[StillInfo, bytes]:
        """The clip's still (a JPEG) and where it comes from; StillNotFound when the clip was stored without one."""
        camera, start_ms = parse_clip_id(clip_id)
        key = self._clip_key(camera, start_ms)
        raw_meta, jpeg = self._run(lambda: self.client.hmget(key, ("meta", STILL_FIELD)), f"reading {clip_id}")
        if raw_meta is None:
            raise ClipNotFound(f"clip {clip_id} is not stored (never ingested, or evicted by retention)")
        meta = decode_meta(raw_meta)
        if jpeg is None or meta.still is None:
            raise StillNotFound(f"clip {clip_id} has no still: it had no video, or was stored before stills were made")
        return meta.still, jpeg

    def clips(self, camera_id: str, start: datetime | None = None, end: datetime | None = None) -> list[ClipMeta]:
        """Metadata of the camera's clips overlapping [start, end), oldest first (two pipelined round trips)."""
        check_camera_id(camera_id)
        lo = "-inf" if start is None else f"({to_ms(start) - math.ceil(self.config.max_clip_seconds * 1000)}"
        hi = "+inf" if end is None else f"({to_ms(end)}"
        index = self._key(camera_id, "index")

        def read() -> list[bytes | None]:
            members = self.client.zrangebyscore(index, lo, hi)
            with self.client.pipeline(transaction=False) as pipe:
                for member in members:
                    pipe.hget(self._clip_key(*parse_clip_id(member.decode())), "meta")
                return pipe.execute()

        metas = [decode_meta(raw) for raw in self._run(read, f"listing clips of {camera_id}") if raw is not None]
        if start is not None:
            metas = [m for m in metas if m.end_ms > to_ms(start)]
        return metas

    def previous_meta(self, camera_id: str, before: datetime) -> ClipMeta | None:
        """The camera's newest clip starting before `before`: where per-camera state (the audio noise floor)
        carries over from, so any replica continues a camera the same way."""
        check_camera_id(camera_id)
        index = self._key(camera_id, "index")

        def read() -> bytes | None:
            members = self.client.zrevrangebyscore(index, f"({to_ms(before)}", "-inf", start=0, num=1)
            return self.client.hget(self._clip_key(*parse_clip_id(members[0].decode())), "meta") if members else None

        raw = self._run(read, f"reading the clip of {camera_id} before {before.isoformat()}")
        return None if raw is None else decode_meta(raw)

    def load(
        self, camera_id: str, start: datetime, end: datetime, dtype: torch.dtype = torch.float32
    ) -> list[StoredClip]:
        """The camera's clips overlapping [start, end) with their tokens."""
        metas = self.clips(camera_id, start, end)
        return self.get_many([m.clip_id for m in metas], dtype, skip_missing=True)

    # cameras
    def set_camera(self, settings: CameraSettings) -> None:
        data = {"camera_id": settings.camera_id, "timezone": settings.timezone}
        data["retention"] = None if settings.retention is None else settings.retention.to_json()

        def write() -> None:
            self.client.sadd(self._cameras_key, settings.camera_id)
            self.client.set(self._key(settings.camera_id, "settings"), json.dumps(data))

        self._run(write, f"saving settings of {settings.camera_id}")

    def camera(self, camera_id: str) -> CameraSettings:
        """The camera's stored settings, or the defaults (UTC, store retention) if none were saved."""
        check_camera_id(camera_id)
        raw = self._run(lambda: self.client.get(self._key(camera_id, "settings")), f"reading {camera_id} settings")
        if raw is None:
            return CameraSettings(camera_id)
        data = json.loads(raw)
        retention = data.get("retention")
        return CameraSettings(
            camera_id, data.get("timezone", "UTC"), None if retention is None else RetentionPolicy.from_json(retention)
        )

    def cameras(self) -> list[str]:
        return sorted(m.decode() for m in self._run(lambda: self.client.smembers(self._cameras_key), "listing cameras"))

    def usage(self, camera_id: str) -> CameraUsage:
        """Clips and stored payload bytes of one camera, with its oldest and newest clip start."""
        check_camera_id(camera_id)
        index = self._key(camera_id, "index")

        def read():
            with self.client.pipeline(transaction=True) as pipe:
                pipe.hgetall(self._key(camera_id, "usage"))
                pipe.zrange(index, 0, 0, withscores=True)
                pipe.zrange(index, -1, -1, withscores=True)
                return pipe.execute()

        totals, oldest, newest = self._run(read, f"reading usage of {camera_id}")
        return CameraUsage(
            camera_id,
            clips=int(totals.get(b"clips", 0)),
            stored_bytes=int(totals.get(b"bytes", 0)),
            oldest=from_ms(int(oldest[0][1])) if oldest else None,
            newest=from_ms(int(newest[0][1])) if newest else None,
        )

    # retention and deletion
    def enforce_retention(self, camera_id: str) -> list[str]:
        """Evict the camera's clips past its retention (oldest first); returns the evicted clip ids."""
        settings = self.camera(camera_id)
        policy = settings.retention or self.config.retention
        stored_at = self._key(camera_id, "stored")

        def pick() -> list[str]:
            victims: list[str] = []
            if policy.max_age is not None:
                cutoff = to_ms(self.clock() - policy.max_age)
                victims += [m.decode() for m in self.client.zrangebyscore(stored_at, "-inf", f"({cutoff}")]
            if policy.max_bytes is not None:
                victims += self._over_bytes(camera_id, policy.max_bytes, victims)
            return victims

        victims = self._run(pick, f"applying retention to {camera_id}")
        if victims:
            self._evict(camera_id, victims)
            log.info("retention evicted %d clip(s) of %s", len(victims), camera_id)
        return victims

    def _over_bytes(self, camera_id: str, max_bytes: int, already: Sequence[str]) -> list[str]:
        """The oldest clips (by footage time) to evict besides `already` so the camera fits `max_bytes`; the
        newest clip always stays."""
        index = self._key(camera_id, "index")
        total = int(self.client.hget(self._key(camera_id, "usage"), "bytes") or 0)
        excess = total - max_bytes - sum(self._sizes(camera_id, already))
        keep = set(already) | {m.decode() for m in self.client.zrange(index, -1, -1)}
        victims: list[str] = []
        offset = 0
        while excess > 0:
            batch = [m.decode() for m in self.client.zrange(index, offset, offset + 63)]
            if not batch:
                break
            offset += len(batch)
            batch = [c for c in batch if c not in keep]
            for clip_id, size in zip(batch, self._sizes(camera_id, batch), strict=True):
                if excess <= 0:
                    break
                victims.append(clip_id)
                excess -= size
        return victims

    def _sizes(self, camera_id: str, clip_ids: Sequence[str]) -> list[int]:
        with self.client.pipeline(transaction=False) as pipe:
            for clip_id in clip_ids:
                pipe.hget(self._clip_key(camera_id, parse_clip_id(clip_id)[1]), "size")
            return [int(s or 0) for s in pipe.execute()]

    def _evict(self, camera_id: str, clip_ids: Sequence[str]) -> None:
        """Remove records and index entries together, and take their bytes off the usage, in one transaction."""
        keys = [self._clip_key(camera_id, parse_clip_id(c)[1]) for c in clip_ids]
        index, usage, stored_at = (self._key(camera_id, k) for k in ("index", "usage", "stored"))

        def sizes() -> list[list[bytes | None]]:
            with self.client.pipeline(transaction=False) as read:  # after WATCH: still guarded
                for key in keys:
                    read.hmget(key, "size", "tokens", "meta")
                return read.execute()

        def remove(pipe, seen: list[list[bytes | None]]) -> None:
            pipe.delete(*keys)
            pipe.zrem(index, *clip_ids)
            pipe.zrem(stored_at, *clip_ids)
            pipe.hincrby(usage, "bytes", -sum(int(s[0]) for s in seen if s[0] is not None))
            pipe.hincrby(usage, "clips", -sum(s[0] is not None for s in seen))
            self.tiers.queue_evict(pipe, camera_id, clip_ids, [OldTokens.read(s[1], s[2]) for s in seen])

        def evict() -> list[list[bytes | None]]:
            return watched_transaction(self.client, keys, sizes, remove, f"evicting {len(keys)} clip(s) of {camera_id}")

        seen = self._run(evict, f"evicting {len(keys)} clip(s) of {camera_id}")
        olds = [OldTokens.read(s[1], s[2]) for s in seen]
        self.tiers.remove_dead_segments(camera_id, {o.location.segment for o in olds if o.location})

    def delete(self, clip_id: str) -> None:
        camera, _ = parse_clip_id(clip_id)
        self._evict(camera, [clip_id])

    def delete_clips(self, camera_id: str) -> int:
        """Remove every clip of a camera with its index and usage (its settings stay); returns the count."""
        check_camera_id(camera_id)
        index = self._key(camera_id, "index")
        members = [m.decode() for m in self._run(lambda: self.client.zrange(index, 0, -1), f"listing {camera_id}")]
        for start in range(0, len(members), 256):
            self._evict(camera_id, members[start : start + 256])
        leftovers = (index, self._key(camera_id, "usage"), self._key(camera_id, "stored"), self.clip_log_key(camera_id))
        leftovers += tuple(self._key(camera_id, k) for k in ("hot", "thin", "segments"))
        self._run(lambda: self.client.delete(*leftovers), f"clearing {camera_id}")
        self.tiers.forget_files(camera_id)
        return len(members)

    def delete_camera(self, camera_id: str) -> int:
        """Remove every clip, the index, usage and settings of a camera; returns the number of clips removed."""
        removed = self.delete_clips(camera_id)

        def drop() -> None:
            self.client.delete(self._key(camera_id, "settings"))
            self.client.srem(self._cameras_key, camera_id)

        self._run(drop, f"deleting camera {camera_id}")
        return removed

    def purge(self) -> int:
        """Delete every stored clip of the namespace (records, indexes, usage) and its fingerprint claim; camera
        settings and configured streams stay. Returns the number of clips removed.

        The way to switch a namespace to another model or compressor setting (`omnisift purge`)."""
        removed = sum(self.delete_clips(camera_id) for camera_id in self.cameras())
        self._run(lambda: self.client.delete(self._fingerprint_key), "dropping the store fingerprint")
        self._namespace_checked = False
        log.warning("purged %d clip(s) of store namespace %s", removed, self.config.namespace)
        return removed


def _describe(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"
