"""Reading the cameras' logs of stored clips through one Redis consumer group, so that every stored clip is
evaluated once across any number of replicas and restarts: an entry is acknowledged only after its clip was
evaluated, and entries a dead consumer left unacknowledged are claimed by another after `claim_idle_ms`
(docs/architecture.md, "Alerts")."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis

GROUP = "alerts"


@dataclass(frozen=True)
class LogEntry:
    camera_id: str
    entry_id: str
    clip_id: str

    @property
    def stored_ms(self) -> int:
        """When the clip was stored, by the Redis server's clock (the entry id's first part)."""
        return int(self.entry_id.split("-")[0])


class ClipLog:
    def __init__(self, client: redis.Redis, key_of: Callable[[str], str], consumer: str, claim_idle_ms: int = 30_000):
        self.client = client
        self.key_of = key_of
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms
        self._grouped: set[str] = set()

    def _ensure_group(self, camera_id: str) -> None:
        if camera_id in self._grouped:
            return
        try:  # from the log's first entry: rules decide by their creation time which clips are theirs
            self.client.xgroup_create(self.key_of(camera_id), GROUP, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._grouped.add(camera_id)

    def read(self, cameras: Sequence[str], block_ms: int, count: int = 32) -> list[LogEntry]:
        """New entries of any camera, waiting up to `block_ms` for the first."""
        if not cameras:
            return []
        for camera_id in cameras:
            self._ensure_group(camera_id)
        streams = {self.key_of(c): ">" for c in cameras}
        try:
            reply = self.client.xreadgroup(GROUP, self.consumer, streams, count=count, block=block_ms)
        except redis.ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            self._grouped.clear()  # a log was deleted (a purge, a flush): make the groups again next time
            return []
        by_key = {self.key_of(c): c for c in cameras}
        return [
            LogEntry(by_key[key.decode()], entry_id.decode(), fields[b"clip"].decode())
            for key, entries in reply or []
            for entry_id, fields in entries
        ]

    def claim_stale(self, cameras: Sequence[str], count: int = 32) -> list[LogEntry]:
        """Entries delivered to a consumer that has not acknowledged them for `claim_idle_ms` (it died)."""
        claimed = []
        for camera_id in cameras:
            self._ensure_group(camera_id)
            reply = self.client.xautoclaim(
                self.key_of(camera_id), GROUP, self.consumer, self.claim_idle_ms, "0-0", count=count
            )
            entries = reply[1]  # Redis 7 adds a third element (deleted ids); 6.2 answers two
            claimed += [LogEntry(camera_id, e.decode(), f[b"clip"].decode()) for e, f in entries if f]
        return claimed

    def ack(self, entry: LogEntry) -> None:
        self.client.xack(self.key_of(entry.camera_id), GROUP, entry.entry_id)
