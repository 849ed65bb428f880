"""The alert worker, run by every gateway replica on two threads: one evaluates each stored clip from the
cameras' clip logs (one consumer group, so each clip once across replicas), the other drains the webhook
outbox (one lock per receiver, so each receiver in order). All state is in Redis: a replica that dies or
restarts loses nothing (docs/architecture.md, "Alerts")."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import replace

import redis

from pipeline.alerts.alert_store import AlertStore
from pipeline.alerts.clip_log import ClipLog, LogEntry
from pipeline.alerts.delivery import Deliverer
from pipeline.alerts.evaluator import AlertEvaluator, AskYesNo
from pipeline.alerts.firings import Firing
from pipeline.errors import StoreError, StoreUnavailable
from pipeline.store.anchor_store import AnchorStore
from pipeline.store.connection import RedisConnection, RetryPolicy
from services.settings import Settings

log = logging.getLogger(__name__)

READ_BLOCK_MS = 1000  # the longest a new camera's first clip waits to be noticed
DELIVERY_POLL_S = 0.25  # outboxes are served at least this often (at once after a local firing)
ERROR_PAUSE_S = (1.0, 10.0)  # after a failure the loop pauses, doubling from the first to the second
ONE_TRY = RetryPolicy(attempts=1)  # the loops retry on their own, and say so once per outage
PRUNE_EVERY_S = 60.0  # firings past alert_firings_max_age_hours are forgotten this often


class AlertWorker:
    def __init__(self, settings: Settings, connection: RedisConnection, ask: AskYesNo | None) -> None:
        consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        store_config = replace(settings.store_config(), retry=ONE_TRY)
        self.store = AnchorStore(connection.client, None, store_config, where=connection.url)
        alerts = AlertStore(connection.client, settings.store_namespace, settings.secrets(), connection.url, ONE_TRY)
        self.claim_every_s = settings.alert_claim_idle_s / 2
        self.clip_log = ClipLog(
            connection.client, self.store.clip_log_key, consumer, round(settings.alert_claim_idle_s * 1000)
        )
        self.evaluator = AlertEvaluator(self.store, alerts, settings.activity_config(), ask)
        self.deliverer = Deliverer(alerts, settings.alert_delivery(), settings.address_policy())
        self.alerts = alerts
        hours = settings.alert_firings_max_age_hours
        self.firings_max_age_ms = None if hours is None else round(hours * 3600 * 1000)
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
        outage = _Outage("alert evaluation", self._stop)
        while not self._stop.is_set():
            with outage.guard():
                cameras = self.store.cameras()
                if not cameras:
                    self._stop.wait(READ_BLOCK_MS / 1000)
                    continue
                entries = self.clip_log.read(cameras, READ_BLOCK_MS)
                if time.monotonic() - last_claim > self.claim_every_s:
                    entries += self.clip_log.claim_stale(cameras)
                    last_claim = time.monotonic()
                for entry in entries:
                    fired = self._evaluate(entry)
                    self.clip_log.ack(entry)  # after the firings are recorded: a crash before it re-evaluates
                    if any(f.delivery.state == "pending" for f in fired):
                        self._wake.set()

    def _evaluate(self, entry: LogEntry) -> list[Firing]:
        """The clip's firings; a clip that cannot be evaluated (not a store outage: that is retried) is logged
        and skipped, so that it does not come back forever."""
        try:
            return self.evaluator.evaluate(entry.clip_id, entry.stored_ms)
        except (StoreUnavailable, redis.RedisError):
            raise
        except Exception:
            log.exception("clip %s cannot be evaluated for alerts; skipped", entry.clip_id)
            return []

    def _deliver_forever(self) -> None:
        outage = _Outage("alert delivery", self._stop)
        last_prune = 0.0
        while not self._stop.is_set():
            with outage.guard():
                self.deliverer.run_once()
                if self.firings_max_age_ms is not None and time.monotonic() - last_prune > PRUNE_EVERY_S:
                    self.alerts.prune(self.alerts.now_ms() - self.firings_max_age_ms)
                    last_prune = time.monotonic()
            self._wake.wait(DELIVERY_POLL_S)
            self._wake.clear()


class _Outage:
    """A loop's failures: the first of a series is logged, then the loop pauses (longer each time) and tries
    again; the first success after them is logged too. Work left undone stays in Redis for the next try."""

    def __init__(self, what: str, stop: threading.Event) -> None:
        self.what = what
        self.stop = stop
        self.pause_s = 0.0

    @contextlib.contextmanager
    def guard(self):
        try:
            yield
        except Exception as error:  # the store is down, or a rule or record is broken
            if not self.pause_s:
                unexpected = not isinstance(error, StoreError | redis.RedisError)  # a store outage needs no traceback
                log.warning("%s failed, retrying until it works: %s", self.what, error, exc_info=unexpected)
            self.pause_s = min(ERROR_PAUSE_S[1], max(ERROR_PAUSE_S[0], 2 * self.pause_s))
            self.stop.wait(self.pause_s)
            return
        if self.pause_s:
            log.warning("%s works again", self.what)
            self.pause_s = 0.0
