"""An uploaded file handed to the ingest replica that reads it, whichever node that replica runs on.

On a cluster the gateway and the ingest replica need not share a disk: the gateway puts the file into Ray's
object store in chunks and the replica writes them to its own uploads directory. A local service passes
the path instead (one machine, one disk).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ray

CHUNK_BYTES = 8 << 20


@dataclass(frozen=True)
class UploadTransfer:
    name: str
    chunks: tuple[ray.ObjectRef, ...]

    @classmethod
    def of(cls, path: Path) -> UploadTransfer:
        chunks = []
        with path.open("rb") as file:
            while chunk := file.read(CHUNK_BYTES):
                chunks.append(ray.put(chunk))
        return cls(path.name, tuple(chunks))

    def receive(self, directory: Path) -> Path:
        """Write the file into `directory` (this node's) and return its path there."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / self.name
        with path.open("wb") as out:
            for chunk in self.chunks:
                out.write(ray.get(chunk))
        return path
