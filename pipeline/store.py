"""AnchorStore: compressed clips in Redis, one hash per clip plus a per-camera time index, with retention.

Key layout (namespace `ns`, default "omnisift"; `{camera}` is a Redis Cluster hash tag, so every key of a
camera lives in one slot and a clip's write is one MULTI/EXEC):
    ns:fingerprint                  string  model+compressor fingerprint of every record in the namespace
    ns:cameras                      set     camera ids with stored clips or settings
    ns:{camera}:clip:<start_ms>     hash    one clip: "meta" JSON, "size", and raw little-endian arrays
    ns:{camera}:index               zset    member clip id, score start_ms
    ns:{camera}:usage               hash    "bytes", "clips": running totals kept in the same transactions
    ns:{camera}:settings            string  CameraSettings JSON (timezone, retention)
A clip hash holds "meta" (ClipMeta JSON: times, fingerprint, encoding, grid, counts before/after,
per-chunk activity and audio salience, schema), "size" (its payload bytes), and per modality (v, a)
little-endian arrays: "<m>.emb" (N, D) float16 or int8, "<m>.scale" (N,) float32 for int8,
"<m>.pos" (3, N) int32 TMRoPE positions, "<m>.time" (N,) float32 seconds, "<m>.chunk" (N,) int32.
Values are raw bytes and JSON; nothing is pickled.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import redis
import torch
from torch import Tensor

from omnisift_core.tokens import ClipTokens, TokenStream
from pipeline.records import (
    SCHEMA_VERSION,
    ClipMeta,
    ClipRecord,
    StoredClip,
    check_camera_id,
    from_ms,
    parse_clip_id,
    to_ms,
)
from pipeline.redis_connection import RedisConnection, RetryPolicy
from pipeline.store_errors import (
    ClipNotFound,
    FingerprintMismatch,
    InvalidRecord,
    SchemaMismatch,
    StoreError,
)

log = logging.getLogger(__name__)
Encoding = Literal["float16", "int8"]
ENCODINGS = ("float16", "int8")
MAX_WATCH_CONFLICTS = 100
FLOAT16_MAX = 65504.0
NATIVE_LITTLE_ENDIAN = sys.byteorder == "little"
READ_BATCH = 4  # clips per pipelined round trip: larger replies slow redis-py's parser down


@dataclass(frozen=True)
class RetentionPolicy:
    """How much of a camera's past the store keeps; None means no limit on that axis.

    Age is measured back from the start of the camera's newest clip (for a live camera that is "now";
    for an uploaded file it keeps the footage instead of evicting it on arrival). Bytes are the stored
    payload bytes; the newest clip is never evicted for size.
    """

    max_age: timedelta | None = timedelta(hours=24)
    max_bytes: int | None = 1 << 30

    def __post_init__(self) -> None:
        if self.max_age is not None and self.max_age <= timedelta(0):
            raise InvalidRecord(f"retention max_age must be positive, got {self.max_age}")
        if self.max_bytes is not None and self.max_bytes <= 0:
            raise InvalidRecord(f"retention max_bytes must be positive, got {self.max_bytes}")

    def to_json(self) -> dict:
        return {
            "max_age_s": None if self.max_age is None else self.max_age.total_seconds(),
            "max_bytes": self.max_bytes,
        }

    @classmethod
    def from_json(cls, data: dict) -> RetentionPolicy:
        age = data.get("max_age_s")
        return cls(None if age is None else timedelta(seconds=age), data.get("max_bytes"))


@dataclass(frozen=True)
class CameraSettings:
    """Per-camera settings the store keeps: the camera's timezone and its retention (None = store default)."""

    camera_id: str
    timezone: str = "UTC"
    retention: RetentionPolicy | None = None

    def __post_init__(self) -> None:
        check_camera_id(self.camera_id)
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidRecord(f"unknown timezone {self.timezone!r}; use an IANA name like 'Europe/Berlin'") from None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class StoreConfig:
    namespace: str = "omnisift"
    encoding: Encoding = "float16"  # how new records store embeddings; reads handle both
    retention: RetentionPolicy = RetentionPolicy()  # for cameras without their own
    max_clip_seconds: float = 120.0  # longer clips are refused; bounds the look-back of range queries
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise InvalidRecord(f"encoding must be one of {ENCODINGS}, got {self.encoding!r}")
        if not self.namespace or any(c in self.namespace for c in "{}: "):
            raise InvalidRecord(f"namespace {self.namespace!r} must be non-empty without '{{', '}}', ':' or spaces")


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


# ---- encoding: tensors <-> raw little-endian bytes -------------------------------------------------------


def quantize_int8(x: Tensor) -> tuple[Tensor, Tensor]:
    """(N, D) float -> (N, D) int8 and (N,) float32 scale with x ~ q * scale; per token, symmetric."""
    x = x.detach().float()
    scale = x.abs().amax(dim=1) / 127.0  # (N,)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(x / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q, scale


def dequantize_int8(q: Tensor, scale: Tensor) -> Tensor:
    """(N, D) int8, (N,) scale -> (N, D) float32."""
    return q.float() * scale[:, None]


def _bytes(array: np.ndarray, dtype: str) -> bytes:
    return np.ascontiguousarray(array, dtype=np.dtype(dtype)).tobytes()


def encode_stream(stream: TokenStream, prefix: str, encoding: Encoding) -> dict[str, bytes]:
    """One modality's fields: embeddings (float16, or int8 + per-token float32 scale), int32 positions
    (3, N), float32 times and int32 chunk ids, all little-endian."""
    fields: dict[str, bytes] = {}
    if encoding == "float16":
        emb = stream.embeddings.detach().to("cpu", torch.float32)
        if len(stream) and emb.abs().max() > FLOAT16_MAX:
            raise InvalidRecord(f"{prefix} embeddings exceed the float16 range; store this model with encoding int8")
        half = emb.to(torch.float16).numpy()
        fields[f"{prefix}.emb"] = half.tobytes() if NATIVE_LITTLE_ENDIAN else _bytes(half, "<f2")
    else:
        q, scale = quantize_int8(stream.embeddings.cpu())
        fields[f"{prefix}.emb"] = _bytes(q.numpy(), "<i1")
        fields[f"{prefix}.scale"] = _bytes(scale.numpy(), "<f4")
    positions = stream.positions.cpu()
    if len(stream) and positions.abs().max() >= 2**31:
        raise InvalidRecord(f"{prefix} positions do not fit int32")
    fields[f"{prefix}.pos"] = _bytes(positions.numpy(), "<i4")
    fields[f"{prefix}.time"] = _bytes(stream.times.cpu().numpy(), "<f4")
    fields[f"{prefix}.chunk"] = _bytes(stream.chunks.cpu().numpy(), "<i4")
    return fields


def _read_tensor(raw: bytes, dtype: torch.dtype, shape: tuple[int, ...], out: torch.dtype) -> Tensor:
    """Little-endian bytes -> a new tensor of dtype `out` (never aliasing the immutable reply buffer)."""
    if NATIVE_LITTLE_ENDIAN and len(raw):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # read-only buffer: converted to a fresh tensor below
            tensor = torch.frombuffer(raw, dtype=dtype).view(shape)
    else:
        np_dtype = np.dtype(torch.empty(0, dtype=dtype).numpy().dtype).newbyteorder("<")
        tensor = torch.from_numpy(np.frombuffer(raw, dtype=np_dtype).astype(np_dtype.newbyteorder("=")))
        tensor = tensor.view(shape)
    return tensor.to(out, copy=True)


def decode_stream(fields: dict[bytes, bytes], prefix: str, n: int, dim: int, encoding: str, dtype) -> TokenStream:
    def field_of(name: str) -> bytes:
        raw = fields.get(f"{prefix}.{name}".encode())
        if raw is None:
            raise SchemaMismatch(f"stored clip lacks the field {prefix}.{name}")
        return raw

    if encoding == "float16":
        embeddings = _read_tensor(field_of("emb"), torch.float16, (n, dim), dtype)
    elif encoding == "int8":
        q = _read_tensor(field_of("emb"), torch.int8, (n, dim), torch.int8)
        scale = _read_tensor(field_of("scale"), torch.float32, (n,), torch.float32)
        embeddings = dequantize_int8(q, scale).to(dtype)
    else:
        raise SchemaMismatch(f"unknown embedding encoding {encoding!r}")
    return TokenStream(
        embeddings=embeddings,
        positions=_read_tensor(field_of("pos"), torch.int32, (3, n), torch.int64),
        times=_read_tensor(field_of("time"), torch.float32, (n,), torch.float32),
        chunks=_read_tensor(field_of("chunk"), torch.int32, (n,), torch.int64),
    )


def encode_record(record: ClipRecord, encoding: Encoding) -> tuple[ClipMeta, dict[str, bytes]]:
    """The hash fields of one clip and the metadata they carry (stored_bytes counts every field)."""
    tokens = record.tokens
    fields = {**encode_stream(tokens.video, "v", encoding), **encode_stream(tokens.audio, "a", encoding)}
    meta = ClipMeta(
        camera_id=record.camera_id,
        start_ms=record.start_ms,
        end_ms=record.end_ms,
        fingerprint=record.fingerprint,
        encoding=encoding,
        hidden_size=tokens.hidden_size,
        grid=tokens.grid,
        source_counts=tuple(record.source_counts),
        kept_counts=(len(tokens.video), len(tokens.audio)),
        scores=record.scores,
        has_audio=record.has_audio,
        stored_bytes=0,
    )
    binary = sum(len(v) for v in fields.values())
    size = binary
    for _ in range(4):  # the metadata holds its own size: iterate to the fixed point (two rounds in practice)
        meta_json = json.dumps(_with_size(meta, size).to_json(), separators=(",", ":")).encode()
        if binary + len(meta_json) + len(str(size)) == size:
            break
        size = binary + len(meta_json) + len(str(size))
    meta = _with_size(meta, size)
    fields["meta"] = json.dumps(meta.to_json(), separators=(",", ":")).encode()
    fields["size"] = str(size).encode()
    return meta, fields


def _with_size(meta: ClipMeta, size: int) -> ClipMeta:
    return ClipMeta(**{**meta.__dict__, "stored_bytes": size})


def decode_meta(raw: bytes) -> ClipMeta:
    data = json.loads(raw)
    if data.get("schema") != SCHEMA_VERSION:
        raise SchemaMismatch(
            f"clip {data.get('clip_id')} was stored with schema {data.get('schema')}, this build reads "
            f"schema {SCHEMA_VERSION}; re-ingest the footage or use a store namespace of this version"
        )
    return ClipMeta.from_json(data)


# ---- the store -------------------------------------------------------------------------------------------


class AnchorStore:
    """Compressed clips by camera and time. Thread-safe; every operation retries per `config.retry`."""

    def __init__(self, client: redis.Redis, fingerprint: str, config: StoreConfig | None = None, where: str = ""):
        if not fingerprint:
            raise InvalidRecord("the store needs the model+compressor fingerprint of the tokens it will hold")
        self.client = client
        self.fingerprint = fingerprint
        self.config = config or StoreConfig()
        self.where = where or _describe(client)
        self._namespace_checked = False

    @classmethod
    def open(cls, connection: RedisConnection, fingerprint: str, config: StoreConfig | None = None) -> AnchorStore:
        return cls(connection.client, fingerprint, config, where=connection.url)

    # keys
    def _key(self, camera_id: str, suffix: str) -> str:
        return f"{self.config.namespace}:{{{camera_id}}}:{suffix}"

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
                "models or compressor settings must never be mixed: configure another store namespace, "
                "or drop the old model's clips with AnchorStore.purge() first."
            )
        self._namespace_checked = True

    # writing
    def put(self, record: ClipRecord) -> PutResult:
        """Store one clip atomically (record, index entry and usage in one MULTI/EXEC), then apply retention.

        Re-ingesting a clip id replaces its record; usage stays exact. Returns after Redis acknowledged.
        """
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
        index, usage = self._key(camera, "index"), self._key(camera, "usage")

        def write() -> bool:
            self.client.sadd(self._cameras_key, camera)  # idempotent; kept out of the per-camera transaction
            with self.client.pipeline(transaction=True) as pipe:
                for _ in range(MAX_WATCH_CONFLICTS):
                    try:
                        pipe.watch(key)
                        old = pipe.hget(key, "size")
                        pipe.multi()
                        pipe.delete(key)
                        pipe.hset(key, mapping=fields)
                        pipe.zadd(index, {clip_id: record.start_ms})
                        pipe.hincrby(usage, "bytes", meta.stored_bytes - int(old or 0))
                        pipe.hincrby(usage, "clips", 0 if old is not None else 1)
                        pipe.execute()
                        return old is not None
                    except redis.WatchError:
                        continue
            raise StoreError(f"clip {clip_id}: {MAX_WATCH_CONFLICTS} concurrent modifications in a row")

        replaced = self._run(write, f"writing clip {clip_id}")
        evicted = self.enforce_retention(camera)
        return PutResult(clip_id, meta.stored_bytes, replaced, tuple(evicted))

    # reading
    def get(self, clip_id: str, dtype: torch.dtype = torch.float32) -> StoredClip:
        """One clip with its kept tokens (CPU tensors, original positions)."""
        return self.get_many([clip_id], dtype)[0]

    def get_many(
        self, clip_ids: Sequence[str], dtype: torch.dtype = torch.float32, skip_missing: bool = False
    ) -> list[StoredClip]:
        """Clips in the order asked, read in pipelined round trips of READ_BATCH clips."""
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
            results.append(self._decode(fields, dtype))
        return results

    def _decode(self, fields: dict[bytes, bytes], dtype: torch.dtype) -> StoredClip:
        meta = decode_meta(fields[b"meta"])
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
        index = self._key(camera_id, "index")

        def pick() -> list[str]:
            victims: list[str] = []
            newest = self.client.zrange(index, -1, -1, withscores=True)
            if not newest:
                return victims
            newest_ms = int(newest[0][1])
            if policy.max_age is not None:
                cutoff = newest_ms - round(policy.max_age.total_seconds() * 1000)
                victims += [m.decode() for m in self.client.zrangebyscore(index, "-inf", f"({cutoff}")]
            if policy.max_bytes is not None:
                total = int(self.client.hget(self._key(camera_id, "usage"), "bytes") or 0)
                excess = total - policy.max_bytes - sum(self._sizes(camera_id, victims))
                offset = len(victims)
                while excess > 0:
                    batch = [m.decode() for m in self.client.zrange(index, offset, offset + 63)]
                    batch = [c for c in batch if parse_clip_id(c)[1] != newest_ms]  # keep the newest clip
                    if not batch:
                        break
                    for clip_id, size in zip(batch, self._sizes(camera_id, batch), strict=True):
                        if excess <= 0:
                            break
                        victims.append(clip_id)
                        excess -= size
                    offset += 64
            return victims

        victims = self._run(pick, f"applying retention to {camera_id}")
        if victims:
            self._evict(camera_id, victims)
            log.info("retention evicted %d clip(s) of %s", len(victims), camera_id)
        return victims

    def _sizes(self, camera_id: str, clip_ids: Sequence[str]) -> list[int]:
        with self.client.pipeline(transaction=False) as pipe:
            for clip_id in clip_ids:
                pipe.hget(self._clip_key(camera_id, parse_clip_id(clip_id)[1]), "size")
            return [int(s or 0) for s in pipe.execute()]

    def _evict(self, camera_id: str, clip_ids: Sequence[str]) -> None:
        """Remove records and index entries together, and take their bytes off the usage, in one transaction."""
        keys = [self._clip_key(camera_id, parse_clip_id(c)[1]) for c in clip_ids]
        index, usage = self._key(camera_id, "index"), self._key(camera_id, "usage")

        def evict() -> None:
            with self.client.pipeline(transaction=True) as pipe:
                for _ in range(MAX_WATCH_CONFLICTS):
                    try:
                        pipe.watch(*keys)
                        with self.client.pipeline(transaction=False) as read:  # read after WATCH: still guarded
                            for key in keys:
                                read.hget(key, "size")
                            sizes = read.execute()
                        pipe.multi()
                        pipe.delete(*keys)
                        pipe.zrem(index, *clip_ids)
                        pipe.hincrby(usage, "bytes", -sum(int(s) for s in sizes if s is not None))
                        pipe.hincrby(usage, "clips", -sum(s is not None for s in sizes))
                        pipe.execute()
                        return
                    except redis.WatchError:
                        continue
            raise StoreError(f"evicting {len(keys)} clip(s) of {camera_id}: too many concurrent modifications")

        self._run(evict, f"evicting {len(keys)} clip(s) of {camera_id}")

    def delete(self, clip_id: str) -> None:
        camera, _ = parse_clip_id(clip_id)
        self._evict(camera, [clip_id])

    def delete_camera(self, camera_id: str) -> int:
        """Remove every clip, the index, usage and settings of a camera; returns the number of clips removed."""
        check_camera_id(camera_id)
        index = self._key(camera_id, "index")
        members = [m.decode() for m in self._run(lambda: self.client.zrange(index, 0, -1), f"listing {camera_id}")]
        for start in range(0, len(members), 256):
            self._evict(camera_id, members[start : start + 256])

        def drop() -> None:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.delete(index, self._key(camera_id, "usage"), self._key(camera_id, "settings"))
                pipe.execute()
            self.client.srem(self._cameras_key, camera_id)

        self._run(drop, f"deleting camera {camera_id}")
        return len(members)

    def purge(self) -> int:
        """Delete every key of this namespace (all cameras, clips and the fingerprint claim); returns the count.

        The way to switch a namespace to another model or compressor setting."""

        def drop() -> int:
            removed = 0
            batch = []
            for key in self.client.scan_iter(match=f"{self.config.namespace}:*", count=500):
                batch.append(key)
                if len(batch) == 500:
                    removed += self.client.delete(*batch)
                    batch = []
            return removed + (self.client.delete(*batch) if batch else 0)

        removed = self._run(drop, f"purging namespace {self.config.namespace}")
        self._namespace_checked = False
        log.warning("purged %d keys of store namespace %s", removed, self.config.namespace)
        return removed


def _describe(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"
