"""Every stored clip reaches the alert evaluator through the camera's clip log (written in the clip's own
transaction) and one consumer group: rules fire at the footage's times, only on clips stored after they were
created, once however often a clip is evaluated, and entries a dead consumer left behind are taken over."""

from __future__ import annotations

from dataclasses import replace

from cryptography.fernet import Fernet

from pipeline.activity import ActivityConfig
from pipeline.alerts.alert_store import AlertStore
from pipeline.alerts.clip_log import ClipLog
from pipeline.alerts.evaluator import AlertEvaluator
from pipeline.alerts.rules import AlertRule, Condition
from pipeline.records import ChunkScores
from pipeline.store.anchor_store import AnchorStore
from pipeline.store.config import CameraSettings, StoreConfig
from pipeline.store.secrets import SecretBox
from tests.fixtures.anchor_clips import FINGERPRINT, T0, record_at


def stores(redis_server) -> tuple[AnchorStore, AlertStore]:
    client = redis_server.client()
    store = AnchorStore(client, FINGERPRINT, StoreConfig(namespace="t"))
    store.set_camera(CameraSettings("lobby", "Europe/Berlin"))
    return store, AlertStore(client, "t", SecretBox(Fernet.generate_key()))


def evaluate_all(log: ClipLog, evaluator: AlertEvaluator, cameras=("lobby",)) -> list:
    fired = []
    while entries := log.read(list(cameras), block_ms=50):
        for entry in entries:
            fired += evaluator.evaluate(entry.clip_id, entry.stored_ms)
            log.ack(entry)
    return fired


def test_stored_clips_fire_the_rules_that_existed_when_they_were_stored(redis_server):
    store, alerts = stores(redis_server)
    store.put(record_at("lobby", 0, moving_frames=frozenset({3})))  # before the rule: never evaluated for it
    alerts.put_rule(AlertRule("motion", "motion", Condition("motion"), created_ms=alerts.now_ms()))
    store.put(record_at("lobby", 10))  # a still scene
    store.put(record_at("lobby", 20, moving_frames=frozenset({5})))  # motion in its chunk 2 (seconds 4-6)
    log = ClipLog(redis_server.client(), store.clip_log_key, "worker-1")
    evaluator = AlertEvaluator(store, alerts, ActivityConfig())
    [firing] = evaluate_all(log, evaluator)
    assert firing.clip_ids == (f"lobby@{round(T0.timestamp() * 1000) + 20_000}",)
    assert firing.start_ms == round(T0.timestamp() * 1000) + 24_000  # the chunk with the movement
    assert firing.scores["activity"] > 0 and firing.rule_version == 1
    assert [f.firing_id for f in alerts.firings()] == [firing.firing_id]


def test_evaluating_a_clip_again_fires_nothing_new(redis_server):
    store, alerts = stores(redis_server)
    alerts.put_rule(AlertRule("motion", "motion", Condition("motion"), created_ms=alerts.now_ms()))
    put = store.put(record_at("lobby", 0, moving_frames=frozenset({3})))
    evaluator = AlertEvaluator(store, alerts, ActivityConfig())
    stored_ms = alerts.now_ms()
    assert len(evaluator.evaluate(put.clip_id, stored_ms)) == 1
    assert evaluator.evaluate(put.clip_id, stored_ms) == []
    store.put(record_at("lobby", 0, moving_frames=frozenset({3})))  # the same footage ingested again
    assert evaluator.evaluate(put.clip_id, alerts.now_ms()) == [] and len(alerts.firings()) == 1


def test_an_updated_rule_fires_again_under_its_new_version(redis_server):
    store, alerts = stores(redis_server)
    rule = AlertRule("motion", "motion", Condition("motion"), created_ms=alerts.now_ms())
    alerts.put_rule(rule)
    put = store.put(record_at("lobby", 0, moving_frames=frozenset({3})))
    evaluator = AlertEvaluator(store, alerts, ActivityConfig())
    evaluator.evaluate(put.clip_id, alerts.now_ms())
    alerts.put_rule(replace(rule, version=2))
    [again] = evaluator.evaluate(put.clip_id, alerts.now_ms())
    assert again.rule_version == 2 and len(alerts.firings()) == 2


def test_clips_a_dead_consumer_took_are_claimed_by_another(redis_server):
    store, alerts = stores(redis_server)
    alerts.put_rule(AlertRule("motion", "motion", Condition("motion"), created_ms=alerts.now_ms()))
    store.put(record_at("lobby", 0, moving_frames=frozenset({3})))
    dead = ClipLog(redis_server.client(), store.clip_log_key, "dead-worker", claim_idle_ms=0)
    assert len(dead.read(["lobby"], block_ms=50)) == 1  # taken, never acknowledged
    other = ClipLog(redis_server.client(), store.clip_log_key, "worker-2", claim_idle_ms=0)
    assert other.read(["lobby"], block_ms=50) == []  # not handed out twice ...
    [entry] = other.claim_stale(["lobby"])  # ... until it is claimed
    evaluator = AlertEvaluator(store, alerts, ActivityConfig())
    assert len(evaluator.evaluate(entry.clip_id, entry.stored_ms)) == 1
    other.ack(entry)
    assert other.claim_stale(["lobby"]) == []


def test_rules_watch_only_their_cameras(redis_server):
    store, alerts = stores(redis_server)
    alerts.put_rule(AlertRule("yard", "yard", Condition("motion"), cameras=("yard",), created_ms=alerts.now_ms()))
    put = store.put(record_at("lobby", 0, moving_frames=frozenset({3})))
    assert AlertEvaluator(store, alerts, ActivityConfig()).evaluate(put.clip_id, alerts.now_ms()) == []


def test_speech_fires_on_stored_clips_that_carry_voice_activity(redis_server):
    store, alerts = stores(redis_server)
    alerts.put_rule(AlertRule("talk", "talk", Condition("speech", min_duration_s=4), created_ms=alerts.now_ms()))
    quiet = (0.0,) * 5
    for offset, speech in ((0, (0.1, 0.2, 0.1, 0.1, 0.9)), (10, (0.95, 0.9, 0.2, 0.1, 0.1))):
        base = record_at("lobby", offset)
        store.put(replace(base, scores=ChunkScores(quiet, quiet, speech)))
    log = ClipLog(redis_server.client(), store.clip_log_key, "worker-1")
    [firing] = evaluate_all(log, AlertEvaluator(store, alerts, ActivityConfig()))
    t0_ms = round(T0.timestamp() * 1000)
    assert (firing.start_ms, firing.reached_ms, firing.end_ms) == (t0_ms + 8_000, t0_ms + 12_000, t0_ms + 14_000)
    assert firing.scores["speech"] == 0.95 and len(firing.clip_ids) == 2
