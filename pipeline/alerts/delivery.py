"""Draining the outbox: each rule's firings go to its webhook one at a time, oldest first; a failed head is
retried with jittered backoff and holds the ones behind it (order per receiver), and after its last attempt
it is dead-lettered (docs/architecture.md, "Alerts").

Delivery is at least once: a worker that dies after the receiver answered but before recording it sends the
firing again, with the same Idempotency-Key.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import httpx

from pipeline.address_policy import AddressPolicy
from pipeline.alerts.alert_store import AlertStore
from pipeline.alerts.config import DeliveryConfig
from pipeline.alerts.firings import Firing
from pipeline.alerts.webhook import DeliveryFailed, post
from pipeline.errors import UnknownFiring, UnknownRule

log = logging.getLogger(__name__)


class Deliverer:
    def __init__(self, alerts: AlertStore, config: DeliveryConfig, policy: AddressPolicy):
        self.alerts = alerts
        self.config = config
        self.policy = policy
        self.http = httpx.Client(timeout=config.timeout_s, follow_redirects=False, trust_env=False)
        self._pool = ThreadPoolExecutor(config.parallel, thread_name_prefix="alert-delivery")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.http.close()

    def run_once(self) -> int:
        """Serve every outbox once, in parallel; returns how many firings were settled."""
        return sum(self._pool.map(self.drain, self.alerts.outboxes()))

    def drain(self, rule_id: str) -> int:
        """Deliver the rule's due firings in order until one must wait; 0 when another worker holds them."""
        token = self.alerts.try_lock(rule_id, self.config.lock_s)
        if token is None:
            return 0
        try:
            settled = 0
            while self._step(rule_id):
                settled += 1
            return settled
        except Exception:  # a store outage: the outbox stays as it is, and is served again next round
            log.exception("delivering the outbox of rule %s failed; it will be retried", rule_id)
            return 0
        finally:
            self.alerts.unlock(rule_id, token)

    def _step(self, rule_id: str) -> bool:
        """Try the head firing once; True when it was settled (and the next one may go)."""
        head = self.alerts.outbox_head(rule_id)
        if head is None:
            return False
        now = self.alerts.now_ms()
        try:
            firing = self.alerts.firing(head)
        except UnknownFiring:  # its record is gone: nothing to send, and it must not hold the others back
            self.alerts.drop_from_outbox(rule_id, head)
            return True
        if firing.delivery.next_attempt_ms > now:
            return False
        try:
            rule = self.alerts.rule(rule_id)
        except UnknownRule:
            rule = None
        if rule is None or rule.webhook is None:
            reason = "the rule was deleted" if rule is None else "the rule no longer has a webhook"
            self._settle(rule_id, firing.with_delivery(state="cancelled", last_error=reason), now)
            return True
        attempts = firing.delivery.attempts + 1
        try:
            post(self.http, rule.webhook, firing, self.policy, self.config.schemes)
        except DeliveryFailed as failure:
            limit = rule.webhook.max_attempts or self.config.max_attempts
            if attempts >= limit:
                log.warning("firing %s dead-lettered after %d attempts: %s", firing.firing_id, attempts, failure)
                dead = firing.with_delivery(state="dead", attempts=attempts, last_error=str(failure))
                self._settle(rule_id, dead, now)
                return True
            retry_at = now + round(self.config.backoff.delay_s(attempts) * 1000)
            self.alerts.save_firing(firing.with_delivery(attempts=attempts, next_attempt_ms=retry_at,
                                                         last_error=str(failure)))  # fmt: skip
            return False
        delivered = self.alerts.now_ms()
        self._settle(rule_id, firing.with_delivery(state="delivered", attempts=attempts, delivered_ms=delivered), now)
        return True

    def _settle(self, rule_id: str, firing: Firing, now: int) -> None:
        self.alerts.settle(rule_id, firing, now)
