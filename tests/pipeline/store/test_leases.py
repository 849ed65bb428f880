"""Camera leases in Redis: one holder at a time, renewed only by it, released only by it, free after the TTL."""

from __future__ import annotations

import time

from pipeline.store.leases import CameraLeases, fair_share


def test_one_holder_at_a_time_and_only_the_holder_renews_or_releases(redis_server):
    a = CameraLeases(redis_server.client(), "omnisift", "replica-a", ttl_s=5)
    b = CameraLeases(redis_server.client(), "omnisift", "replica-b", ttl_s=5)
    assert a.acquire("lobby") and a.acquire("lobby")  # taking what we hold is fine
    assert not b.acquire("lobby") and b.renew(["lobby"]) == set()
    b.release("lobby")  # not b's to release
    assert a.holder_of("lobby") == "replica-a"
    assert a.renew(["lobby", "yard"]) == {"lobby"}
    a.release("lobby")
    assert a.holder_of("lobby") is None and b.acquire("lobby")


def test_a_holder_that_stops_renewing_loses_the_camera_after_the_ttl(redis_server):
    a = CameraLeases(redis_server.client(), "omnisift", "replica-a", ttl_s=0.5)
    b = CameraLeases(redis_server.client(), "omnisift", "replica-b", ttl_s=0.5)
    assert a.acquire("lobby")
    deadline = time.monotonic() + 5
    while not b.acquire("lobby"):
        assert time.monotonic() < deadline, "the lease never expired"
        time.sleep(0.05)
    assert a.renew(["lobby"]) == set()  # a learns it lost the camera


def test_live_replicas_are_those_that_beat_within_the_ttl(redis_server):
    a = CameraLeases(redis_server.client(), "omnisift", "replica-a", ttl_s=0.5)
    b = CameraLeases(redis_server.client(), "omnisift", "replica-b", ttl_s=0.5)
    assert a.announce() == 1 and b.announce() == 2
    time.sleep(0.6)  # a stays silent past the TTL
    assert b.announce() == 1
    b.withdraw()
    assert a.announce() == 1
    assert [fair_share(cameras, 2) for cameras in (0, 1, 2, 3)] == [0, 1, 1, 2]
