"""Tiered storage of a camera's clips: tokens move from Redis (hot) to segment files (cold), and older clips
are thinned before anything is evicted (docs/architecture.md, "Tiered storage").

Every change of a clip's tokens is one path, `Tiers.rewrite`: read the hash (and its cold record), build the new
token arrays, write and fsync them to the cold tier first when they go there, then swap the hash in one watched
transaction that also checks the clip is unchanged. A crash before the swap leaves the clip as it was (and at
worst unreferenced bytes in a segment); after it, the tokens are where the hash says. Per camera:
    ns:{camera}:hot        zset  clips whose tokens are in Redis, by start_ms
    ns:{camera}:thin       zset  clips that can still be thinned, by stage * 1e13 + start_ms (see `stage`)
    ns:{camera}:segments   hash  segment file -> bytes of the records clips point at (0: the file can go)
    ns:{camera}:usage      hash  also "tokens" (token bytes, hot and cold) and "hot" (token bytes in Redis)
A clip's hash keeps "meta", "size", "tokens" (its token bytes, wherever they are) and every non-token field;
its meta's "tier" says where the tokens are ({"at": location} when cold) and its thinning level (1: fewer tokens,
2: none).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pipeline.activity import ActivityConfig, clip_has_event
from pipeline.errors import ClipNotFound, StoreError
from pipeline.identifiers import parse_clip_id
from pipeline.records import ClipMeta
from pipeline.store.codec import decode_meta
from pipeline.store.cold_tier import ColdTier, Location
from pipeline.store.connection import watched_transaction
from pipeline.store.tier_config import TierConfig
from pipeline.store.tier_state import cold_location, thinned_level
from pipeline.store.token_fields import is_token_field, pack, thinned, token_bytes, token_fields, unpack

log = logging.getLogger(__name__)
Operation = Literal["cold", "thin", "drop"]
STAGE_SPAN = 10**13  # above any start_ms before the year 2286
BATCH = 16  # clips per cold write (one fsync) and per transaction
HOT_HIGH, HOT_LOW = 0.95, 0.85  # of a camera's hot share: moves start above the first, go down to the second
# (the 5% left is Redis's own overhead on large values, measured about 1%)


def stage(meta: ClipMeta, activity: ActivityConfig) -> int | None:
    """Thinning order: quiet and whole (0), quiet and thinned (1), with events and whole (2), with events and
    thinned (3); None once only metadata is left."""
    level = thinned_level(meta)
    if level >= 2:
        return None
    return (2 if clip_has_event(meta, activity) else 0) + level


@dataclass(frozen=True)
class OldTokens:
    """What a clip's hash held before a write replaced it: for the usage and segment counters."""

    token_bytes: int = 0
    hot: bool = False
    location: Location | None = None

    @classmethod
    def read(cls, tokens: bytes | None, meta: bytes | None) -> OldTokens:
        if meta is None:
            return cls()
        location = cold_location(decode_meta(meta))
        return cls(int(tokens or 0), location is None, location)


@dataclass
class ColdReads:
    """What reading clips cost in the cold tier: clips read from segment files and the seconds it took."""

    clips: int = 0
    seconds: float = 0.0


@dataclass
class TierReport:
    """What one settle did: clips moved to disk, thinned, and left with only their metadata."""

    moved: int = 0
    thinned: int = 0
    dropped: int = 0


class KeyedStore(Protocol):
    """What tiering uses of the AnchorStore that owns it: its client, keys and retrying runner."""

    client: Any
    config: Any

    def _key(self, camera_id: str, suffix: str) -> str: ...
    def _clip_key(self, camera_id: str, start_ms: int) -> str: ...
    def _run(self, operation, what: str): ...

    @property
    def _cameras_key(self) -> str: ...


class Tiers:
    """The tiering of one AnchorStore: accounting queued into its transactions, and the moves themselves."""

    def __init__(self, store: KeyedStore, config: TierConfig | None):
        """Without a config the accounting is still kept (so tiering can be switched on later), nothing moves."""
        self.store = store
        self.config = config
        self.activity = config.activity if config else ActivityConfig()
        self.cold = None if config is None else ColdTier(config.cold_dir, store.config.namespace, config.segment_bytes)

    def _cold(self) -> ColdTier:
        if self.cold is None:
            raise StoreError("this clip's tokens are in the cold tier, but no cold_dir is configured")
        return self.cold

    def _key(self, camera_id: str, suffix: str) -> str:
        return self.store._key(camera_id, suffix)

    # ---- accounting queued into the store's own transactions ------------------------------------------------
    def queue_put(self, pipe, meta: ClipMeta, new_token_bytes: int, old: OldTokens) -> None:
        camera = meta.camera_id
        usage = self._key(camera, "usage")
        pipe.zadd(self._key(camera, "hot"), {meta.clip_id: meta.start_ms})
        pipe.hincrby(usage, "hot", new_token_bytes - (old.token_bytes if old.hot else 0))
        pipe.hincrby(usage, "tokens", new_token_bytes - old.token_bytes)
        pipe.zadd(self._key(camera, "thin"), {meta.clip_id: stage(meta, self.activity) * STAGE_SPAN + meta.start_ms})
        if old.location is not None:
            pipe.hincrby(self._key(camera, "segments"), old.location.segment, -old.location.record_bytes)

    def queue_evict(self, pipe, camera: str, clip_ids: Sequence[str], olds: Sequence[OldTokens]) -> None:
        usage = self._key(camera, "usage")
        pipe.zrem(self._key(camera, "hot"), *clip_ids)
        pipe.zrem(self._key(camera, "thin"), *clip_ids)
        pipe.hincrby(usage, "hot", -sum(o.token_bytes for o in olds if o.hot))
        pipe.hincrby(usage, "tokens", -sum(o.token_bytes for o in olds))
        for old in olds:
            if old.location is not None:
                pipe.hincrby(self._key(camera, "segments"), old.location.segment, -old.location.record_bytes)

    def forget_files(self, camera: str) -> None:
        """Delete the camera's segment files (its clips are all gone)."""
        if self.cold is not None:
            shutil.rmtree(self.cold.camera_dir(camera), ignore_errors=True)

    # ---- reading -------------------------------------------------------------------------------------------
    def tokens_of(self, fields: dict[bytes, bytes], meta: ClipMeta, timing: ColdReads | None = None) -> dict:
        """A clip's per-token arrays, from the hash or its cold record."""
        location = cold_location(meta)
        if location is None:
            return token_fields(fields)
        began = time.perf_counter()
        tokens = unpack(self._cold().read(meta.camera_id, location))
        if timing is not None:
            timing.seconds += time.perf_counter() - began
            timing.clips += 1
        return tokens

    # ---- the one write path ----------------------------------------------------------------------------------
    def rewrite(self, camera: str, clip_ids: Sequence[str], operation: Operation) -> int:
        """Move (`cold`), thin (`thin`: fewer tokens) or drop the tokens (`drop`) of clips; returns how many
        changed. Clips that changed meanwhile (a re-ingest) are left as they are."""
        client, store = self.store.client, self.store
        keys = [store._clip_key(camera, parse_clip_id(c)[1]) for c in clip_ids]

        def read_all() -> list[dict]:
            with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hgetall(key)
                return pipe.execute()

        plans, records = [], []
        for key, fields in zip(keys, store._run(read_all, f"reading {len(keys)} clip(s) of {camera}"), strict=True):
            if not fields:
                continue
            meta = decode_meta(fields[b"meta"])
            old_location = cold_location(meta)
            tokens = self.tokens_of(fields, meta)
            level, counts = thinned_level(meta), meta.kept_counts
            if operation == "thin" and level == 0:
                tokens, counts = thinned(tokens, counts, meta.hidden_size, meta.encoding, self._keep_share)
                level = 1
            elif operation == "drop":
                tokens, counts, level = {}, (0, 0), 2
            to_cold = bool(tokens) and (operation == "cold" or old_location is not None)
            plans.append((key, fields, meta, old_location, tokens, counts, level, to_cold))
            if to_cold:
                records.append(pack(tokens))
        locations = iter(self._cold().append_many(camera, records)) if records else iter(())

        writes = []
        for key, fields, meta, old_location, tokens, counts, level, to_cold in plans:
            location = next(locations) if to_cold else None
            writes.append(self._new_hash(key, fields, meta, old_location, tokens, counts, level, location))

        def check() -> list:
            with client.pipeline(transaction=False) as pipe:
                for write in writes:
                    pipe.hget(write.key, "meta")
                return pipe.execute()

        def swap(pipe, seen: list) -> None:
            for write, now in zip(writes, seen, strict=True):
                if now != write.old_meta:
                    continue  # replaced meanwhile: its new record stands; our cold bytes are unreferenced
                write.queue(pipe, self)

        def run() -> list:
            return watched_transaction(client, [w.key for w in writes], check, swap, f"tiering clips of {camera}")

        seen = store._run(run, f"tiering {len(writes)} clip(s) of {camera}") if writes else []
        changed = [w for w, now in zip(writes, seen, strict=True) if now == w.old_meta]
        self.remove_dead_segments(camera, {w.old_location.segment for w in changed if w.old_location})
        return len(changed)

    @property
    def _keep_share(self) -> float:
        return self.config.thinning.keep_share if self.config and self.config.thinning else 0.25

    def _new_hash(self, key, fields, meta, old_location, tokens, counts, level, location) -> _HashWrite:
        old_tokens = int(fields.get(b"tokens") or token_bytes(fields))
        new_tokens = token_bytes(tokens)
        old_size = int(fields[b"size"])
        own = (b"meta", b"size", b"tokens")
        others = sum(len(v) for k, v in fields.items() if not is_token_field(k) and k not in own)
        base = meta.to_json()
        base["kept_counts"] = list(counts)
        base["tier"] = {"at": None if location is None else location.to_json(), "thinned": level}
        size = others + new_tokens + len(str(new_tokens))
        for _ in range(6):  # the metadata holds its own size, as in codec.encode_record: iterate to the fixed point
            base["stored_bytes"] = size
            raw = json.dumps(base, separators=(",", ":")).encode()
            target = others + new_tokens + len(str(new_tokens)) + len(raw) + len(str(size))
            if target == size:
                break
            size = target
        new_meta = decode_meta(raw)
        return _HashWrite(
            key=key,
            camera=meta.camera_id,
            clip_id=meta.clip_id,
            start_ms=meta.start_ms,
            old_meta=fields[b"meta"],
            old_hot_fields=[k for k in fields if is_token_field(k)],
            old_tokens=old_tokens,
            old_hot=old_location is None,
            old_location=old_location,
            old_size=old_size,
            meta_raw=raw,
            size=size,
            hot_tokens=tokens if location is None else {},
            new_tokens=new_tokens,
            location=location,
            stage=stage(new_meta, self.activity),
        )

    def remove_dead_segments(self, camera: str, segments: set[str]) -> list[str]:
        """Delete sealed segment files no clip points into any more."""
        if not segments or self.cold is None:
            return []
        key = self._key(camera, "segments")
        ordered = sorted(segments)
        live = self.store._run(lambda: self.store.client.hmget(key, ordered), f"reading segments of {camera}")
        removed = []
        for segment, value in zip(ordered, live, strict=True):
            if int(value or 0) <= 0 and self._cold().sealed(camera, segment):
                self._cold().remove(camera, segment)
                self.store._run(lambda s=segment: self.store.client.hdel(key, s), f"forgetting segment {segment}")
                removed.append(segment)
        return removed

    # ---- policy: run after every write ---------------------------------------------------------------------
    def settle(self, camera: str) -> TierReport:
        """Thin while the camera's tokens exceed its budget, then move the oldest hot tokens to disk while its
        Redis share (with headroom: HOT_HIGH) is exceeded. Both go below their limit, so work comes in batches."""
        report = TierReport()
        if self.config is None:
            return report
        if self.config.thinning is not None:
            self._thin(camera, report)
        if self.config.hot_bytes is not None:
            self._cool(camera, report)
        return report

    def _usage(self, camera: str) -> dict[str, int]:
        raw = self.store._run(lambda: self.store.client.hgetall(self._key(camera, "usage")), f"usage of {camera}")
        return {k.decode(): int(v) for k, v in raw.items()}

    def hot_share(self) -> int:
        cameras = self.store._run(lambda: self.store.client.scard(self.store._cameras_key), "counting cameras")
        return self.config.hot_bytes // max(1, cameras)

    def redis_bytes(self, usage: dict[str, int]) -> int:
        """What the camera's clips hold in Redis: hashes without cold tokens, plus index entries."""
        metadata = usage.get("bytes", 0) - usage.get("tokens", 0)
        return metadata + usage.get("hot", 0) + usage.get("clips", 0) * self.config.index_overhead_bytes

    def _thin(self, camera: str, report: TierReport) -> None:
        budget = self.config.thinning.budget_bytes
        thin_key, index = self._key(camera, "thin"), self._key(camera, "index")
        if self._usage(camera).get("tokens", 0) <= budget:
            return
        while (excess := self._usage(camera).get("tokens", 0) - int(budget * 0.95)) > 0:
            newest = self.store._run(lambda: self.store.client.zrange(index, -1, -1), "newest clip")
            rows = self.store._run(
                lambda: self.store.client.zrange(thin_key, 0, 4 * BATCH, withscores=True), "thinning order"
            )
            rows = [(m.decode(), int(s)) for m, s in rows if m not in newest]
            if not rows:
                return
            first_stage = rows[0][1] // STAGE_SPAN
            batch = [c for c, s in rows if s // STAGE_SPAN == first_stage][:BATCH]
            sizes = self._token_sizes(camera, batch)
            picked, saved = [], 0
            drop = first_stage % 2 == 1
            for clip_id, size in zip(batch, sizes, strict=True):
                picked.append(clip_id)
                saved += size if drop else int(size * (1 - self._keep_share))
                if saved >= excess:
                    break
            changed = self.rewrite(camera, picked, "drop" if drop else "thin")
            if drop:
                report.dropped += changed
            else:
                report.thinned += changed
            if not changed:
                return

    def _token_sizes(self, camera: str, clip_ids: Sequence[str]) -> list[int]:
        def read() -> list:
            with self.store.client.pipeline(transaction=False) as pipe:
                for clip_id in clip_ids:
                    pipe.hget(self.store._clip_key(camera, parse_clip_id(clip_id)[1]), "tokens")
                return pipe.execute()

        return [int(v or 0) for v in self.store._run(read, "reading token sizes")]

    def _cool(self, camera: str, report: TierReport) -> None:
        share = self.hot_share()
        hot_key = self._key(camera, "hot")
        while (usage := self._usage(camera)) and self.redis_bytes(usage) > share * HOT_HIGH:
            excess = self.redis_bytes(usage) - int(share * HOT_LOW)
            members = self.store._run(lambda: self.store.client.zrange(hot_key, 0, BATCH - 1), "hot clips")
            if not members:
                log.warning("camera %s: its metadata alone exceeds its hot-tier share of %d bytes", camera, share)
                return
            batch = [m.decode() for m in members]
            picked, saved = [], 0
            for clip_id, size in zip(batch, self._token_sizes(camera, batch), strict=True):
                picked.append(clip_id)
                saved += size
                if saved >= excess:
                    break
            moved = self.rewrite(camera, picked, "cold")
            report.moved += moved
            if not moved:
                return


@dataclass(frozen=True)
class _HashWrite:
    """One clip's swap, decided before the transaction."""

    key: str
    camera: str
    clip_id: str
    start_ms: int
    old_meta: bytes
    old_hot_fields: list[bytes]
    old_tokens: int
    old_hot: bool
    old_location: Location | None
    old_size: int
    meta_raw: bytes
    size: int
    hot_tokens: dict[bytes, bytes]
    new_tokens: int
    location: Location | None
    stage: int | None

    def queue(self, pipe, tiers: Tiers) -> None:
        usage = tiers._key(self.camera, "usage")
        if self.old_hot_fields:
            pipe.hdel(self.key, *self.old_hot_fields)
        pipe.hset(self.key, mapping={b"meta": self.meta_raw, b"size": str(self.size), b"tokens": str(self.new_tokens),
                                     **self.hot_tokens})  # fmt: skip
        pipe.hincrby(usage, "bytes", self.size - self.old_size)
        pipe.hincrby(usage, "tokens", self.new_tokens - self.old_tokens)
        new_hot = self.new_tokens if self.location is None else 0
        pipe.hincrby(usage, "hot", new_hot - (self.old_tokens if self.old_hot else 0))
        if self.location is None and self.new_tokens:
            pipe.zadd(tiers._key(self.camera, "hot"), {self.clip_id: self.start_ms})
        else:
            pipe.zrem(tiers._key(self.camera, "hot"), self.clip_id)
        if self.stage is None:
            pipe.zrem(tiers._key(self.camera, "thin"), self.clip_id)
        else:
            pipe.zadd(tiers._key(self.camera, "thin"), {self.clip_id: self.stage * STAGE_SPAN + self.start_ms})
        segments = tiers._key(self.camera, "segments")
        if self.old_location is not None:
            pipe.hincrby(segments, self.old_location.segment, -self.old_location.record_bytes)
        if self.location is not None:
            pipe.hincrby(segments, self.location.segment, self.location.record_bytes)


def missing_tokens(meta: ClipMeta) -> ClipNotFound:
    return ClipNotFound(
        f"clip {meta.clip_id} keeps only its metadata and scores: its tokens were thinned away to keep the "
        "camera within its byte budget"
    )
