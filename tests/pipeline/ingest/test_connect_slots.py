"""Shared connection slots bound how many pull cameras connect at once, so a storm of failing cameras waits
its turn instead of loading the machine; turns go in arrival order. A real TCP listener that never answers
RTSP counts the connections."""

from __future__ import annotations

import threading
import time

from pipeline.ingest.connect_slots import ConnectSlots
from pipeline.ingest.media_policy import MediaPolicy
from pipeline.ingest.sources import ClipSource, SourceSpec
from tests.fixtures.media_servers import SilentServer

POLICY = MediaPolicy(connect_timeout_s=1.0, read_timeout_s=1.0, backoff_initial_s=0.05, backoff_max_s=0.1)
CAMERAS = 4
WATCH_S = 4.0


class CountedSlots(ConnectSlots):
    """Connection slots that remember the most ever held at once."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.held = self.most_held = 0
        self._count = threading.Lock()

    def acquire(self, stop: threading.Event) -> bool:
        taken = super().acquire(stop)
        if taken:
            with self._count:
                self.held += 1
                self.most_held = max(self.most_held, self.held)
        return taken

    def release(self) -> None:
        with self._count:
            self.held -= 1
        super().release()


def start_cameras(port: int, slots: ConnectSlots | None) -> list[ClipSource]:
    return [
        ClipSource(SourceSpec(f"cam{i}", f"rtsp://127.0.0.1:{port}/live"), POLICY, connect_slots=slots).start()
        for i in range(CAMERAS)
    ]


def test_without_slots_every_failing_camera_connects_at_once():
    server = SilentServer()
    sources = start_cameras(server.port, None)
    try:
        time.sleep(WATCH_S)  # a few connect timeouts' worth of attempts by every camera
        assert server.most_open == CAMERAS
    finally:
        for source in sources:
            source.close(timeout=10)
        server.close()


def test_with_one_slot_failing_cameras_take_turns_and_all_keep_trying():
    server = SilentServer()
    slots = CountedSlots(1)
    sources = start_cameras(server.port, slots)
    try:
        deadline = time.monotonic() + 8 * CAMERAS * POLICY.connect_timeout_s  # turns in order: nobody starves
        while not all(s.status().last_error for s in sources):  # every camera gets its turn
            assert time.monotonic() < deadline, [s.status() for s in sources]
            time.sleep(0.1)
        assert slots.most_held == 1
        assert server.most_open <= 2  # one connecting, at most one more the server has not yet seen close
    finally:
        for source in sources:
            source.close(timeout=10)
        server.close()


def test_slots_are_granted_in_arrival_order_and_a_stopped_waiter_leaves_the_queue():
    slots, stop, order = ConnectSlots(1), threading.Event(), []
    assert slots.acquire(stop)
    gone = threading.Event()
    gone.set()
    waiters = [threading.Thread(target=lambda i=i: slots.acquire(stop) and order.append(i)) for i in range(3)]
    for queued, waiter in enumerate(waiters, start=1):
        waiter.start()
        until(lambda n=queued: len(slots._queue) == n)  # queued in this order
    assert not slots.acquire(gone)  # one that stopped waiting takes no slot and blocks nobody
    for granted in range(1, 4):
        slots.release()
        until(lambda n=granted: len(order) == n)
    assert order == [0, 1, 2]


def until(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)
