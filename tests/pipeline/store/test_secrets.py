"""Camera credentials at rest: stream URLs are sealed before they reach Redis and open only with the key."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from cryptography.fernet import Fernet

from pipeline.errors import StoreError
from pipeline.store.registry import Registry, StreamRecord
from pipeline.store.secrets import SecretBox, secret_box

URL = "rtsp://admin:s3cret@10.0.0.12/stream1"


def record(url: str = URL) -> StreamRecord:
    return StreamRecord("lobby", url, False, 10, "UTC", "2026-11-20T08:00:00+00:00")


def test_stream_urls_are_sealed_in_redis_and_read_back_whole(redis_server):
    registry = Registry(redis_server.client(), secrets=SecretBox(Fernet.generate_key()))
    registry.add_stream(record())
    raw = redis_server.client().hget("omnisift:streams", "lobby").decode()
    assert "s3cret" not in raw and "admin" not in raw and "10.0.0.12" not in raw
    assert registry.stream("lobby").url == URL and registry.streams() == [record()]


def test_another_key_cannot_open_them_and_says_what_to_do(redis_server):
    Registry(redis_server.client(), secrets=SecretBox(Fernet.generate_key())).add_stream(record())
    stranger = Registry(redis_server.client(), secrets=SecretBox(Fernet.generate_key()))
    with pytest.raises(StoreError, match="secret key differs") as refused:
        stranger.stream("lobby")
    assert "s3cret" not in str(refused.value)


def test_urls_stored_before_sealing_still_read(redis_server):
    redis_server.client().hset("omnisift:streams", "lobby", json.dumps(asdict(record())))  # as an older build wrote
    registry = Registry(redis_server.client(), secrets=SecretBox(Fernet.generate_key()))
    assert registry.stream("lobby").url == URL


def test_without_a_key_streams_are_refused_rather_than_stored_in_the_clear(redis_server):
    with pytest.raises(StoreError, match="secret box"):
        Registry(redis_server.client()).add_stream(record())
    assert redis_server.client().hlen("omnisift:streams") == 0


def test_the_key_file_is_made_once_private_and_shared(tmp_path):
    key_file = tmp_path / "data" / "secret.key"
    sealed = secret_box(None, key_file).seal(URL)
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert secret_box(None, key_file).open(sealed) == URL  # a second process reads the same key
    assert list(key_file.parent.iterdir()) == [key_file]  # no draft left behind
    configured = Fernet.generate_key().decode()
    assert secret_box(configured, key_file).open(secret_box(configured, tmp_path / "unused").seal(URL)) == URL
    with pytest.raises(StoreError, match="32 url-safe base64"):
        secret_box("not a key", key_file)
