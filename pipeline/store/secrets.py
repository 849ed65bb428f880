"""Camera credentials at rest: stream URLs are encrypted before they reach Redis (and its append-only file).

Fernet (AES-128-CBC with an HMAC) under a key from the settings, or, on a single machine, a key file
created 0600 in the data directory on first use. Only the ingest and gateway processes hold the key; a
Redis dump or AOF alone does not reveal a camera's password.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from pipeline.errors import StoreError

PREFIX = "enc:v1:"  # marks a sealed value; values without it were stored before encryption existed


class SecretBox:
    def __init__(self, key: bytes):
        try:
            self._fernet = Fernet(key)
        except ValueError:
            raise StoreError(
                "the secret key must be 32 url-safe base64-encoded bytes (Fernet.generate_key())"
            ) from None

    def seal(self, text: str) -> str:
        return PREFIX + self._fernet.encrypt(text.encode()).decode()

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored.removeprefix(PREFIX).encode()).decode()
        except InvalidToken:
            raise StoreError(
                "a stored camera URL cannot be decrypted: the secret key differs from the one it was stored "
                "with (set secret_key to that key, or remove and add the stream again)"
            ) from None


def secret_box(key: str | None, key_file: Path) -> SecretBox:
    """The configured key, else the key file (created 0600 with a new random key if missing; atomically, so
    processes starting together agree on one key)."""
    if key:
        return SecretBox(key.encode())
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        draft = key_file.with_name(f".{key_file.name}.{os.getpid()}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(Fernet.generate_key())
        try:
            os.link(draft, key_file)  # fails if another process linked its key first: then that one is used
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return SecretBox(key_file.read_bytes().strip())
