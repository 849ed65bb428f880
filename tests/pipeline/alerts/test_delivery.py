"""Webhook delivery from the Redis outbox to a real receiver on 127.0.0.1: headers and signature, order per
receiver, a receiver down and back, a restart (of the worker and of Redis) mid-retry, dead letters."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import replace

import pytest
from cryptography.fernet import Fernet

from pipeline.address_policy import AddressPolicy
from pipeline.alerts.alert_store import AlertStore
from pipeline.alerts.config import Backoff, DeliveryConfig
from pipeline.alerts.delivery import Deliverer
from pipeline.alerts.firings import Delivery, Firing, firing_id_of
from pipeline.alerts.rules import AlertRule, Condition, Webhook
from pipeline.alerts.webhook import check_url
from pipeline.errors import ForbiddenSource
from pipeline.store.secrets import SecretBox
from tests.fixtures.service import wait_for

FAST = DeliveryConfig(max_attempts=1000, backoff=Backoff(base_s=0.02, max_s=0.1), timeout_s=2.0)
KEY = Fernet.generate_key()
SECRET = "signing-secret-5d1"
TOKEN = "bearer-token-c0e"


def store_on(server) -> AlertStore:
    return AlertStore(server.client(), "t", SecretBox(KEY), where=server.url)


def make_rule(store: AlertStore, receiver, **webhook) -> AlertRule:
    hook = Webhook(receiver.url(), bearer_token=TOKEN, headers=(("X-Tenant", "acme"),), secret=SECRET, **webhook)
    rule = AlertRule("rule1", 'door "front"', Condition("motion"), webhook=hook, created_ms=store.now_ms())
    store.put_rule(rule)
    return rule


def fire(store: AlertStore, rule: AlertRule, n: int, camera: str = "lobby") -> list[str]:
    ids = []
    for i in range(n):
        start = 1_773_496_800_000 + 10_000 * i
        firing = Firing(
            firing_id_of(rule.rule_id, rule.version, camera, start), rule.rule_id, rule.version, rule.name,
            rule.severity, camera, "motion", start, start + 4000, start, (f"{camera}@{start}",),
            {"activity": 0.5}, store.now_ms(), Delivery(state="pending"),
        )  # fmt: skip
        assert store.record(firing, rule)
        ids.append(firing.firing_id)
    return ids


def deliver_until(deliverer: Deliverer, done, what: str, timeout: float = 20.0):
    def step():
        deliverer.run_once()
        return done()

    return wait_for(step, what, timeout, every=0.02)


def test_a_firing_arrives_signed_with_its_idempotency_key_and_credentials(redis_server, webhook_receiver):
    store = store_on(redis_server)
    rule = make_rule(store, webhook_receiver)
    [firing_id] = fire(store, rule, 1)
    deliverer = Deliverer(store, FAST, AddressPolicy())
    try:
        deliver_until(deliverer, lambda: webhook_receiver.received, "the delivery")
    finally:
        deliverer.close()
    [got] = webhook_receiver.received
    expected = hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["X-Omnisift-Signature"] == f"sha256={expected}"
    assert got.headers["Idempotency-Key"] == firing_id
    assert got.headers["Authorization"] == f"Bearer {TOKEN}" and got.headers["X-Tenant"] == "acme"
    body = got.json()
    assert body["firing_id"] == firing_id and body["camera_id"] == "lobby" and body["start"].endswith("Z")
    assert store.firing(firing_id).delivery.state == "delivered" and store.outboxes() == []


def test_a_body_template_renders_json_with_escaped_values(redis_server, webhook_receiver):
    store = store_on(redis_server)
    rule = make_rule(
        store,
        webhook_receiver,
        body_template='{"text": "${rule_name} on ${camera_id} at ${start}", "score": ${score}, "firing": ${firing}}',
    )
    [firing_id] = fire(store, rule, 1)
    deliverer = Deliverer(store, FAST, AddressPolicy())
    try:
        deliver_until(deliverer, lambda: webhook_receiver.received, "the delivery")
    finally:
        deliverer.close()
    body = webhook_receiver.bodies()[0]
    assert body["text"] == 'door "front" on lobby at 2026-03-14T14:00:00Z'
    assert body["score"] == 0.5 and body["firing"]["firing_id"] == firing_id


def test_a_receiver_down_then_back_gets_every_firing_once_in_order(redis_server, webhook_receiver):
    store = store_on(redis_server)
    rule = make_rule(store, webhook_receiver)
    webhook_receiver.stop()  # nothing listens: connection refused
    ids = fire(store, rule, 5)
    deliverer = Deliverer(store, FAST, AddressPolicy())
    try:
        deliver_until(deliverer, lambda: store.firing(ids[0]).delivery.attempts >= 5, "five failed attempts")
        assert store.outbox_ids(rule.rule_id) == ids  # nothing skipped ahead of the head
        assert all(store.firing(i).delivery.attempts == 0 for i in ids[1:])
        webhook_receiver.start()
        deliver_until(deliverer, lambda: len(webhook_receiver.received) == 5, "all five deliveries")
    finally:
        deliverer.close()
    assert [b["firing_id"] for b in webhook_receiver.bodies()] == ids
    assert store.firing(ids[0]).delivery.attempts >= 6 and store.firing(ids[1]).delivery.attempts == 1


def test_a_restart_of_the_worker_and_of_redis_mid_retry_loses_nothing(redis_server, webhook_receiver):
    store = store_on(redis_server)
    rule = make_rule(store, webhook_receiver)
    webhook_receiver.status = 503
    ids = fire(store, rule, 3)
    first = Deliverer(store, FAST, AddressPolicy())
    try:
        deliver_until(first, lambda: store.firing(ids[0]).delivery.attempts >= 3, "three failed attempts")
    finally:
        first.close()  # the worker stops mid-retry ...
    redis_server.kill()  # ... and Redis crashes (fsync on every write: what was acknowledged is on disk)
    redis_server.start()
    webhook_receiver.status = 200
    restarted = store_on(redis_server)
    assert restarted.outbox_ids(rule.rule_id) == ids
    second = Deliverer(restarted, FAST, AddressPolicy())
    try:
        deliver_until(second, lambda: len(webhook_receiver.received) == 3, "the three deliveries after the restart")
    finally:
        second.close()
    assert [b["firing_id"] for b in webhook_receiver.bodies()] == ids
    assert restarted.firing(ids[0]).delivery.last_error.startswith("http://127.0.0.1:")  # the 503, without the path


def test_after_its_last_attempt_a_firing_is_dead_lettered_and_the_next_one_goes(redis_server, webhook_receiver):
    store = store_on(redis_server)
    rule = make_rule(store, webhook_receiver, max_attempts=3)
    webhook_receiver.status = 500
    ids = fire(store, rule, 2)
    deliverer = Deliverer(store, FAST, AddressPolicy())
    try:
        deliver_until(deliverer, lambda: store.firing(ids[0]).delivery.state == "dead", "the dead letter")
        webhook_receiver.status = 200
        deliver_until(deliverer, lambda: webhook_receiver.received, "the second firing")
    finally:
        deliverer.close()
    dead = store.firing(ids[0]).delivery
    assert (dead.attempts, dead.state) == (3, "dead") and "answered 500" in dead.last_error
    assert [f.firing_id for f in store.dead_letters()] == [ids[0]]
    assert [b["firing_id"] for b in webhook_receiver.bodies()] == [ids[1]]
    stats = store.stats()
    assert (stats.firings, stats.dead, stats.pending) == (2, 1, 0)


def test_firings_of_a_deleted_rule_are_cancelled_not_sent(redis_server, webhook_receiver):
    store = store_on(redis_server)
    rule = make_rule(store, webhook_receiver)
    [firing_id] = fire(store, rule, 1)
    store.delete_rule(rule.rule_id)
    deliverer = Deliverer(store, FAST, AddressPolicy())
    try:
        deliver_until(deliverer, lambda: store.firing(firing_id).delivery.state == "cancelled", "the cancellation")
    finally:
        deliverer.close()
    assert webhook_receiver.received == []


def test_an_outbox_entry_whose_firing_is_gone_does_not_hold_the_others_back(redis_server, webhook_receiver):
    store = store_on(redis_server)
    rule = make_rule(store, webhook_receiver)
    lost, kept = fire(store, rule, 2)
    redis_server.client().delete(store.key("firing", lost))
    deliverer = Deliverer(store, FAST, AddressPolicy())
    try:
        deliver_until(deliverer, lambda: webhook_receiver.received, "the second firing")
    finally:
        deliverer.close()
    assert [b["firing_id"] for b in webhook_receiver.bodies()] == [kept] and store.outbox_ids(rule.rule_id) == []


def test_old_firings_are_forgotten_unless_they_still_wait_for_delivery(redis_server, webhook_receiver):
    store = store_on(redis_server)
    rule = make_rule(store, webhook_receiver)
    delivered, waiting, dead = fire(store, rule, 3)
    store.settle(rule.rule_id, store.firing(delivered).with_delivery(state="delivered"), store.now_ms())
    store.settle(rule.rule_id, store.firing(dead).with_delivery(state="dead"), store.now_ms())
    assert store.prune(store.firing(delivered).created_ms) == 0  # none was recorded before that
    assert store.prune(store.now_ms() + 1) == 2
    assert [f.firing_id for f in store.firings()] == [waiting] and store.dead_letters() == []
    assert store.outbox_ids(rule.rule_id) == [waiting] and store.stats().firings == 1
    assert store.prune(store.now_ms() + 1) == 0  # the waiting one is stepped over, not counted again


def test_the_same_firing_is_recorded_once_and_a_cooldown_suppresses_neighbours(redis_server, webhook_receiver):
    store = store_on(redis_server)
    rule = replace(make_rule(store, webhook_receiver), cooldown_s=15)
    store.put_rule(rule)
    [first] = fire(store, rule, 1)
    again = store.firing(first)
    assert not store.record(again, rule)  # a re-evaluated clip
    near = replace(again, firing_id="x" * 32, start_ms=again.start_ms + 14_000)
    far = replace(again, firing_id="y" * 32, start_ms=again.start_ms + 15_000)
    earlier = replace(again, firing_id="z" * 32, start_ms=again.start_ms - 14_000)  # older footage uploaded later
    other_camera = replace(near, firing_id="w" * 32, camera_id="yard")
    assert [store.record(f, rule) for f in (near, far, earlier, other_camera)] == [False, True, False, True]
    assert store.outbox_ids(rule.rule_id) == [first, far.firing_id, other_camera.firing_id]


def test_stored_rules_never_hold_their_credentials_in_the_clear(redis_server, webhook_receiver):
    store = store_on(redis_server)
    make_rule(store, webhook_receiver)
    raw = redis_server.client().hget(store.key("rules"), "rule1").decode()
    assert SECRET not in raw and TOKEN not in raw and "acme" not in raw and "/hook" not in raw
    assert json.loads(raw)["name"] == 'door "front"'


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://127.0.0.1/hook", "scheme 'ftp' is not allowed"),
        ("http://user:pw@127.0.0.1/hook", "may not carry credentials"),
        ("http://169.254.169.254/latest", "cloud metadata endpoint"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://metadata.google.internal/x", "denied"),
    ],
)
def test_webhook_urls_outside_the_policy_are_refused_with_the_reason(url, reason):
    with pytest.raises(ForbiddenSource, match=reason):
        check_url(url, AddressPolicy())


def test_a_loopback_receiver_is_allowed_by_default_and_refused_by_an_allow_list():
    check_url("http://127.0.0.1:9/hook", AddressPolicy())
    with pytest.raises(ForbiddenSource, match="none of the allowed ranges"):
        check_url("http://127.0.0.1:9/hook", AddressPolicy(allow_cidrs=("10.0.0.0/8",)))
