"""Clip records <-> Redis hash fields: raw little-endian arrays and JSON metadata, never pickle.

Embeddings are float16, or int8 with a per-token float32 scale (half the bytes); positions int32 (3, N);
times float32; chunk ids int32; the kept tokens' compressor scores float32 (records since token detail).
A clip's still is one JPEG field. The metadata holds the record's own stored size, every field counted.
"""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import torch
from torch import Tensor

from omnisift_core.tokens import TokenStream
from pipeline.errors import InvalidRecord, SchemaMismatch
from pipeline.records import SCHEMA_VERSION, ClipMeta, ClipRecord
from pipeline.store.config import Encoding

FLOAT16_MAX = 65504.0
STILL_FIELD = "still"  # the clip's JPEG: a per-clip field of its own, apart from the token arrays
NATIVE_LITTLE_ENDIAN = sys.byteorder == "little"


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
    for prefix, scores in (("v", record.video_scores), ("a", record.audio_scores)):
        if scores is not None:
            fields[f"{prefix}.score"] = _bytes(scores.detach().to("cpu", torch.float32).numpy(), "<f4")
    if record.still is not None:
        fields[STILL_FIELD] = record.still.jpeg
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
        noise_floor_dbfs=record.noise_floor_dbfs,
        still=None if record.still is None else record.still.info,
    )
    fields["tokens"] = str(sum(len(v) for v in fields.values())).encode()  # token bytes, wherever they later live
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
