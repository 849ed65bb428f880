"""Shared connection slots bound how many pull cameras connect at once, so a storm of failing cameras waits
its turn instead of loading the machine. A real TCP listener that never answers RTSP counts them."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from pipeline.ingest.media_policy import MediaPolicy
from pipeline.ingest.sources import ClipSource, SourceSpec

POLICY = MediaPolicy(connect_timeout_s=1.0, read_timeout_s=1.0, backoff_initial_s=0.05, backoff_max_s=0.1)
CAMERAS = 4
WATCH_S = 4.0


class SilentServer:
    """Accepts TCP connections and never answers; records how many were open at the same time."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = self.most_open = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._hold, args=(connection,), daemon=True).start()

    def _hold(self, connection: socket.socket) -> None:
        with self.lock:
            self.open += 1
            self.most_open = max(self.most_open, self.open)
        with connection:
            while connection.recv(4096):  # until the client gives up and closes
                pass
        with self.lock:
            self.open -= 1


@pytest.mark.parametrize(("slots", "most_at_once"), [(1, 1), (None, CAMERAS)], ids=["one slot", "unbounded"])
def test_pull_cameras_connect_at_most_as_many_at_once_as_there_are_slots(slots, most_at_once):
    server = SilentServer()
    shared = None if slots is None else threading.BoundedSemaphore(slots)
    sources = [
        ClipSource(SourceSpec(f"cam{i}", f"rtsp://127.0.0.1:{server.port}/live"), POLICY, connect_slots=shared).start()
        for i in range(CAMERAS)
    ]
    try:
        time.sleep(WATCH_S)  # a few connect timeouts' worth of attempts by every camera
        assert server.most_open == most_at_once
        assert all(s.status().reconnects == 0 and not s.status().connected for s in sources)
    finally:
        for source in sources:
            source.close(timeout=10)
        server.listener.close()
