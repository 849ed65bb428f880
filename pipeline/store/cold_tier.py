"""The cold tier: a camera's token records in append-only segment files on disk, read back by location.

Layout under `cold_dir/<namespace>/<camera>/`: `seg-000001.omc`, ... Each record is b"OMC1", the payload length
and its CRC-32 (little-endian u32 each), then the payload (token_fields.pack). A record is written and fsync'd
before the clip's hash points at it, so a crash leaves at worst unreferenced bytes, never a dangling pointer
(docs/architecture.md, "Tiered storage"). Appends take the camera directory's lock, so processes share segments.
"""

from __future__ import annotations

import fcntl
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import InvalidRecord, StoreError

MAGIC = b"OMC1"
_HEADER = struct.Struct("<4sII")


@dataclass(frozen=True)
class Location:
    """Where a clip's token record lives: segment file name, byte offset of the record, payload length, CRC."""

    segment: str
    offset: int
    length: int
    crc32: int

    @property
    def record_bytes(self) -> int:
        return _HEADER.size + self.length

    def to_json(self) -> dict:
        return {"segment": self.segment, "offset": self.offset, "length": self.length, "crc32": self.crc32}

    @classmethod
    def from_json(cls, data: dict) -> Location:
        return cls(str(data["segment"]), int(data["offset"]), int(data["length"]), int(data["crc32"]))


class ColdTier:
    def __init__(self, root: Path, namespace: str, segment_bytes: int = 64 << 20):
        self.root = Path(root) / namespace
        self.segment_bytes = segment_bytes

    def camera_dir(self, camera_id: str) -> Path:
        return self.root / camera_id

    def append_many(self, camera_id: str, payloads: list[bytes]) -> list[Location]:
        """Write records to the camera's open segment with one fsync; returns where each is. A segment takes
        a whole batch, so it may pass `segment_bytes` by at most one batch."""
        directory = self.camera_dir(camera_id)
        created = not directory.exists()
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if created:
            _fsync_dir(directory.parent)
        with open(directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            segment = self._open_segment(directory)
            path = directory / segment
            new = not path.exists()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                offset = os.fstat(fd).st_size
                locations, chunks = [], []
                for payload in payloads:
                    crc = zlib.crc32(payload)
                    locations.append(Location(segment, offset, len(payload), crc))
                    chunks.append(_HEADER.pack(MAGIC, len(payload), crc) + payload)
                    offset += _HEADER.size + len(payload)
                data = b"".join(chunks)
                written = 0
                while written < len(data):
                    written += os.write(fd, data[written:])
                os.fsync(fd)
            finally:
                os.close(fd)
            if new:
                _fsync_dir(directory)
        return locations

    def _open_segment(self, directory: Path) -> str:
        segments = sorted(p.name for p in directory.glob("seg-*.omc"))
        if segments and (directory / segments[-1]).stat().st_size < self.segment_bytes:
            return segments[-1]
        number = int(segments[-1][4:10]) + 1 if segments else 1
        return f"seg-{number:06d}.omc"

    def sealed(self, camera_id: str, segment: str) -> bool:
        """A segment no more appends go to: full, or not the newest."""
        path = self.camera_dir(camera_id) / segment
        if not path.exists():
            return True
        newest = max(p.name for p in self.camera_dir(camera_id).glob("seg-*.omc"))
        return segment != newest or path.stat().st_size >= self.segment_bytes

    def read(self, camera_id: str, location: Location) -> bytes:
        """The record's payload, checked against its header and CRC."""
        path = self.camera_dir(camera_id) / location.segment
        try:
            with open(path, "rb") as file:
                file.seek(location.offset)
                raw = file.read(location.record_bytes)
        except FileNotFoundError:
            raise StoreError(f"cold segment {path} is missing") from None
        if len(raw) < _HEADER.size:
            raise InvalidRecord(f"cold segment {path} ends inside the record at {location.offset}")
        magic, length, crc = _HEADER.unpack_from(raw)
        payload = raw[_HEADER.size :]
        if magic != MAGIC or length != location.length or len(payload) != length or zlib.crc32(payload) != crc:
            raise InvalidRecord(f"cold segment {path}: the record at {location.offset} is damaged")
        return payload

    def remove(self, camera_id: str, segment: str) -> None:
        (self.camera_dir(camera_id) / segment).unlink(missing_ok=True)

    def disk_bytes(self, camera_id: str | None = None) -> int:
        """Bytes of segment files on disk (unreferenced records included)."""
        base = self.root if camera_id is None else self.camera_dir(camera_id)
        return sum(p.stat().st_size for p in base.rglob("seg-*.omc")) if base.exists() else 0


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
