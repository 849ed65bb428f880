"""Connection slots shared by many sources: at most `size` cameras connect at once, served in arrival order.

A storm of failing cameras then costs a bounded number of connection attempts at a time, and a camera that
just failed queues behind those already waiting instead of taking the slot straight back.
"""

from __future__ import annotations

import threading
from collections import deque

POLL_S = 0.1  # how often a waiting source re-checks its stop event


class ConnectSlots:
    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"connection slots must be at least 1, got {size}")
        self._free = size
        self._queue: deque[object] = deque()
        self._changed = threading.Condition()

    def acquire(self, stop: threading.Event) -> bool:
        """Wait for a slot in turn; False (holding none) once `stop` is set."""
        ticket = object()
        with self._changed:
            self._queue.append(ticket)
            while not (self._free and self._queue[0] is ticket):
                if stop.is_set():
                    self._queue.remove(ticket)
                    self._changed.notify_all()
                    return False
                self._changed.wait(POLL_S)
            self._queue.popleft()
            self._free -= 1
            self._changed.notify_all()
            return True

    def release(self) -> None:
        with self._changed:
            self._free += 1
            self._changed.notify_all()
