"""Shared connection slots bound how many pull cameras connect at once, so a storm of failing cameras waits
its turn instead of loading the machine. A real TCP listener that never answers RTSP counts them."""

from __future__ import annotations

import threading
import time

from pipeline.ingest.media_policy import MediaPolicy
from pipeline.ingest.sources import ClipSource, SourceSpec
from tests.fixtures.media_servers import SilentServer

POLICY = MediaPolicy(connect_timeout_s=1.0, read_timeout_s=1.0, backoff_initial_s=0.05, backoff_max_s=0.1)
CAMERAS = 4
WATCH_S = 4.0


class CountedSlots(threading.BoundedSemaphore):
    """Connection slots that remember the most ever held at once."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.held = self.most_held = 0
        self._count = threading.Lock()

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        taken = super().acquire(blocking, timeout)
        if taken:
            with self._count:
                self.held += 1
                self.most_held = max(self.most_held, self.held)
        return taken

    def release(self, n: int = 1) -> None:
        with self._count:
            self.held -= n
        super().release(n)


def start_cameras(port: int, slots: threading.Semaphore | None) -> list[ClipSource]:
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
        deadline = time.monotonic() + 4 * CAMERAS * POLICY.connect_timeout_s
        while not all(s.status().last_error for s in sources):  # every camera gets its turn
            assert time.monotonic() < deadline, [s.status() for s in sources]
            time.sleep(0.1)
        assert slots.most_held == 1
        assert server.most_open <= 2  # one connecting, at most one more the server has not yet seen close
    finally:
        for source in sources:
            source.close(timeout=10)
        server.close()
