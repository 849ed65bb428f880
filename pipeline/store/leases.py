"""Which ingest replica runs which camera: a lease per camera in Redis, kept alive by a heartbeat.

A replica holds a camera while it renews the camera's lease (a key with a TTL that only the holder may
extend or delete, checked and changed atomically in Lua). A replica that dies, or whose node dies, stops
renewing; once its leases expire any other replica takes those cameras over. Live replicas announce
themselves in a sorted set scored by their last heartbeat, so each can aim at its fair share.

Keys (namespace `ns`):
    ns:{camera}:lease       string  the holder's replica id, expiring after `ttl`
    ns:ingest:replicas      zset    replica id, score its last heartbeat (ms)
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

import redis

from pipeline.store.connection import RetryPolicy

_RENEW = """
local renewed = {}
for i, key in ipairs(KEYS) do
    if redis.call('GET', key) == ARGV[1] then
        redis.call('PEXPIRE', key, ARGV[2])
        renewed[#renewed + 1] = key
    end
end
return renewed
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class CameraLeases:
    def __init__(
        self,
        client: redis.Redis,
        namespace: str,
        holder: str,
        ttl_s: float,
        retry: RetryPolicy | None = None,
        where: str = "redis",
    ):
        self.client = client
        self.ns = namespace
        self.holder = holder
        self.ttl_ms = round(ttl_s * 1000)
        self.retry = retry or RetryPolicy()
        self.where = where
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def _key(self, camera_id: str) -> str:
        return f"{self.ns}:{{{camera_id}}}:lease"

    def _run(self, operation, what: str):
        return self.retry.run(operation, what, self.where)

    def acquire(self, camera_id: str) -> bool:
        """Take the camera if nobody holds it (or we already do)."""

        def take() -> bool:
            if self.client.set(self._key(camera_id), self.holder, nx=True, px=self.ttl_ms):
                return True
            return self._renew(keys=[self._key(camera_id)], args=[self.holder, self.ttl_ms]) != []

        return self._run(take, f"leasing camera {camera_id}")

    def renew(self, camera_ids: Iterable[str]) -> set[str]:
        """Extend our leases; returns the cameras we still hold (the rest were lost: expired and taken)."""
        cameras = list(camera_ids)
        if not cameras:
            return set()
        keys = [self._key(c) for c in cameras]
        renewed = self._run(lambda: self._renew(keys=keys, args=[self.holder, self.ttl_ms]), "renewing leases")
        held = {k.decode() if isinstance(k, bytes) else k for k in renewed}
        return {c for c, k in zip(cameras, keys, strict=True) if k in held}

    def release(self, camera_id: str) -> None:
        self._run(lambda: self._release(keys=[self._key(camera_id)], args=[self.holder]), f"releasing {camera_id}")

    def holder_of(self, camera_id: str) -> str | None:
        raw = self._run(lambda: self.client.get(self._key(camera_id)), f"reading the lease of {camera_id}")
        return None if raw is None else raw.decode()

    def announce(self) -> int:
        """Record our heartbeat; returns how many replicas are alive (heartbeat within the lease TTL)."""
        key, now = f"{self.ns}:ingest:replicas", round(time.time() * 1000)

        def beat() -> int:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.zadd(key, {self.holder: now})
                pipe.zremrangebyscore(key, "-inf", f"({now - self.ttl_ms}")
                pipe.zcard(key)
                return pipe.execute()[-1]

        return self._run(beat, "announcing this ingest replica")

    def withdraw(self) -> None:
        self._run(lambda: self.client.zrem(f"{self.ns}:ingest:replicas", self.holder), "withdrawing this replica")


def fair_share(cameras: int, replicas: int) -> int:
    """How many cameras one of `replicas` live replicas aims to hold."""
    return math.ceil(cameras / max(1, replicas))
