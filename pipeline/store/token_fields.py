"""A clip hash's per-token arrays ("<m>.emb", "<m>.scale", "<m>.pos", "<m>.time", "<m>.chunk", any further
"<m>.*" field of modality v or a): which fields they are, their bytes as one record, and a subset of tokens.

These are what the cold tier moves to disk and thinning shrinks; "meta", "size" and every other field (stills,
scores) stay in the hash (docs/architecture.md, "Tiered storage"). Torch-free: rows are selected on raw bytes.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping

import numpy as np

from pipeline.errors import InvalidRecord

MODALITIES = ("v", "a")
_COUNT = struct.Struct("<I")
_NAME = struct.Struct("<H")


def is_token_field(name: bytes | str) -> bool:
    """'v.emb', 'a.pos', 'v.score', ...: a per-token array of one modality."""
    text = name.decode() if isinstance(name, bytes) else name
    return text[:2] in ("v.", "a.")


def token_fields(fields: Mapping[bytes, bytes]) -> dict[bytes, bytes]:
    return {k: v for k, v in fields.items() if is_token_field(k)}


def token_bytes(fields: Mapping) -> int:
    return sum(len(v) for k, v in fields.items() if is_token_field(k))


def pack(fields: Mapping[bytes, bytes]) -> bytes:
    """Fields as one byte string: a count, then per field its name and value, each length-prefixed."""
    parts = [_COUNT.pack(len(fields))]
    for name, value in sorted(fields.items()):
        parts += [_NAME.pack(len(name)), name, _COUNT.pack(len(value)), value]
    return b"".join(parts)


def unpack(data: bytes) -> dict[bytes, bytes]:
    view, at = memoryview(data), _COUNT.size
    (count,) = _COUNT.unpack_from(view, 0)
    fields = {}
    for _ in range(count):
        (n,) = _NAME.unpack_from(view, at)
        name = bytes(view[at + _NAME.size : at + _NAME.size + n])
        at += _NAME.size + n
        (size,) = _COUNT.unpack_from(view, at)
        fields[name] = bytes(view[at + _COUNT.size : at + _COUNT.size + size])
        at += _COUNT.size + size
    if at != len(data):
        raise InvalidRecord(f"token record has {len(data) - at} trailing bytes")
    return fields


def _rows(raw: bytes, n: int, name: bytes) -> np.ndarray:
    """(n, bytes per token) view of a token-major array; positions are (3, n) and come back as (n, 3*4)."""
    data = np.frombuffer(raw, dtype=np.uint8)
    if n == 0:
        return data.reshape(0, 0)
    if len(data) % n:
        raise InvalidRecord(f"field {name.decode()} of {len(data)} bytes does not split into {n} tokens")
    if name.endswith(b".pos"):
        return data.reshape(3, n, -1).transpose(1, 0, 2).reshape(n, -1)
    return data.reshape(n, -1)


def select(fields: Mapping[bytes, bytes], prefix: str, n: int, index: np.ndarray) -> dict[bytes, bytes]:
    """The modality's per-token arrays restricted to the tokens at `index` (sorted), order kept."""
    out = {}
    for name, raw in fields.items():
        if not name.startswith(prefix.encode() + b"."):
            continue
        rows = _rows(raw, n, name)[index]
        if name.endswith(b".pos"):
            rows = rows.reshape(len(index), 3, -1).transpose(1, 0, 2)
        out[name] = np.ascontiguousarray(rows).tobytes()
    return out


def embeddings(fields: Mapping[bytes, bytes], prefix: str, n: int, dim: int, encoding: str) -> np.ndarray:
    """(n, dim) float32 embeddings of one modality, from float16 or int8 with its per-token scale."""
    raw = fields[f"{prefix}.emb".encode()]
    if encoding == "float16":
        return np.frombuffer(raw, dtype="<f2").reshape(n, dim).astype(np.float32)
    scale = np.frombuffer(fields[f"{prefix}.scale".encode()], dtype="<f4")
    return np.frombuffer(raw, dtype="<i1").reshape(n, dim).astype(np.float32) * scale[:, None]


def distinctive(vectors: np.ndarray, groups: np.ndarray, keep_share: float) -> np.ndarray:
    """Sorted indices of the tokens to keep: per group (a frame, a chunk), the ceil(keep_share * size) tokens
    least like the group's mean (STVP's spatial test, docs/architecture.md "The method"), at least one."""
    keep = []
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        mean = vectors[members].mean(axis=0)
        norms = np.linalg.norm(vectors[members], axis=1) * max(float(np.linalg.norm(mean)), 1e-12)
        cosine = vectors[members] @ mean / np.maximum(norms, 1e-12)
        count = max(1, math.ceil(keep_share * len(members)))
        keep.append(members[np.argsort(cosine, kind="stable")[:count]])
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


def thinned(
    fields: Mapping[bytes, bytes], counts: tuple[int, int], dim: int, encoding: str, keep_share: float
) -> tuple[dict[bytes, bytes], tuple[int, int]]:
    """A clip's per-token arrays with fewer tokens: video per frame, audio per chunk; positions unchanged."""
    out: dict[bytes, bytes] = {}
    kept = []
    for prefix, n in zip(MODALITIES, counts, strict=True):
        if n == 0:
            out.update({k: v for k, v in fields.items() if k.startswith(prefix.encode() + b".")})
            kept.append(0)
            continue
        if prefix == "v":
            groups = np.frombuffer(fields[b"v.pos"], dtype="<i4").reshape(3, n)[0]  # temporal position: the frame
        else:
            groups = np.frombuffer(fields[b"a.chunk"], dtype="<i4")
        index = distinctive(embeddings(fields, prefix, n, dim, encoding), groups, keep_share)
        out.update(select(fields, prefix, n, index))
        kept.append(len(index))
    return out, (kept[0], kept[1])
