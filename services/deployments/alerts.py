"""The alert worker, run by every gateway replica on two threads: one evaluates each stored clip from the
cameras' clip logs (one consumer group, so each clip once across replicas), the other drains the webhook
outbox (one lock per receiver, so each receiver in order). All state is in Redis: a replica that dies or
restarts loses nothing (docs/architecture.md, "Alerts")."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

import redis

from pipeline.alerts.alert_store import AlertStore
from pipeline.alerts.clip_log import ClipLog
from pipeline.alerts.delivery import Deliverer
from pipeline.alerts.evaluator import AlertEvaluator, AskYesNo
from pipeline.store.anchor_store import AnchorStore
from services.settings import Settings

log = logging.getLogger(__name__)

READ_BLOCK_MS = 1000  # the longest a new camera's first clip waits to be noticed
DELIVERY_POLL_S = 0.5  # outboxes are served at least this often (at once after a local firing)
ERROR_PAUSE_S = 1.0


class AlertWorker:
    def __init__(
        self, settings: Settings, client: redis.Redis, store: AnchorStore, alerts: AlertStore, ask: AskYesNo | None
    ) -> None:
        consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.claim_every_s = settings.alert_claim_idle_s / 2
        self.store = store
        self.clip_log = ClipLog(client, store.clip_log_key, consumer, round(settings.alert_claim_idle_s * 1000))
        self.evaluator = AlertEvaluator(store, alerts, settings.activity_config(), ask)
        self.deliverer = Deliverer(alerts, settings.alert_delivery(), settings.address_policy())
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads = [
            threading.Thread(target=self._evaluate_forever, name="alert-evaluation", daemon=True),
            threading.Thread(target=self._deliver_forever, name="alert-delivery", daemon=True),
        ]

    def start(self) -> AlertWorker:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout_s)
        self.deliverer.close()

    def _evaluate_forever(self) -> None:
        last_claim = time.monotonic()
        while not self._stop.is_set():
            try:
                cameras = self.store.cameras()
                if not cameras:
                    self._stop.wait(READ_BLOCK_MS / 1000)
                    continue
                entries = self.clip_log.read(cameras, READ_BLOCK_MS)
                if time.monotonic() - last_claim > self.claim_every_s:
                    entries += self.clip_log.claim_stale(cameras)
                    last_claim = time.monotonic()
                for entry in entries:
                    fired = self.evaluator.evaluate(entry.clip_id, entry.stored_ms)
                    self.clip_log.ack(entry)  # after the firings are recorded: a crash before it re-evaluates
                    if any(f.delivery.state == "pending" for f in fired):
                        self._wake.set()
            except Exception:  # the store is down or a rule is broken: the entries stay pending and come back
                log.exception("alert evaluation failed; retrying")
                self._stop.wait(ERROR_PAUSE_S)

    def _deliver_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliverer.run_once()
            except Exception:
                log.exception("alert delivery failed; retrying")
                self._stop.wait(ERROR_PAUSE_S)
            self._wake.wait(DELIVERY_POLL_S)
            self._wake.clear()
