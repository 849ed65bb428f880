"""Evaluating every rule on one stored clip and recording what fired (docs/architecture.md, "Alerts").

Rules see clips stored from their creation on, at the footage's own times: an uploaded file of last week fires
with last week's times, in the camera's timezone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from omnisift_core.layout import SECONDS_PER_CHUNK
from pipeline.activity import ActivityConfig
from pipeline.alerts.alert_store import AlertStore
from pipeline.alerts.evaluation import Match, find_matches, question_match
from pipeline.alerts.firings import Delivery, Firing, firing_id_of
from pipeline.alerts.rules import AlertRule
from pipeline.errors import ClipNotFound
from pipeline.records import ClipMeta
from pipeline.store.anchor_store import AnchorStore

log = logging.getLogger(__name__)

AskYesNo = Callable[[str, str], float]  # (clip id, question) -> probability of "yes"


class AlertEvaluator:
    def __init__(
        self, store: AnchorStore, alerts: AlertStore, activity: ActivityConfig, ask: AskYesNo | None = None
    ) -> None:
        self.store = store
        self.alerts = alerts
        self.activity = activity
        self.ask = ask

    def evaluate(self, clip_id: str, stored_ms: int) -> list[Firing]:
        """Every enabled rule that watches the clip's camera and existed when the clip was stored; returns the
        firings recorded (none for a clip evicted meanwhile, or matches within a rule's cooldown)."""
        try:
            meta = self.store.meta(clip_id)
        except ClipNotFound:
            return []
        rules = [
            r for r in self.alerts.rules() if r.enabled and r.watches(meta.camera_id) and r.created_ms <= stored_ms
        ]
        if not rules:
            return []
        zone = self.store.camera(meta.camera_id).tz
        # the clips a run at this clip's start may continue from: the rules' longest duration, or the last chunk
        lookback = max(SECONDS_PER_CHUNK, *(r.condition.min_duration_s for r in rules))
        window = self.store.clips(meta.camera_id, meta.start - timedelta(seconds=lookback), meta.start)
        earlier = [m for m in window if m.end_ms <= meta.start_ms]
        now_ms = self.alerts.now_ms()
        found = [
            (self._firing(rule, meta, match, now_ms), rule)
            for rule in rules
            for match in self._matches(rule, meta, earlier, zone)
        ]
        return [firing for (firing, _), new in zip(found, self.alerts.record_all(found), strict=True) if new]

    def _matches(self, rule: AlertRule, meta: ClipMeta, earlier: list[ClipMeta], zone) -> list[Match]:
        if rule.condition.kind != "question":
            return find_matches(rule, meta, earlier, zone, self.activity)
        if self.ask is None:
            log.warning("rule %s asks a question, but no language model is deployed", rule.rule_id)
            return []
        found = question_match(rule, meta, self.ask(meta.clip_id, rule.condition.question or ""), zone)
        return [] if found is None else [found]

    def _firing(self, rule: AlertRule, meta: ClipMeta, match: Match, now_ms: int) -> Firing:
        return Firing(
            firing_id=firing_id_of(rule.rule_id, rule.version, meta.camera_id, match.start_ms),
            rule_id=rule.rule_id,
            rule_version=rule.version,
            rule_name=rule.name,
            severity=rule.severity,
            camera_id=meta.camera_id,
            condition=rule.condition.kind,
            start_ms=match.start_ms,
            end_ms=match.end_ms,
            reached_ms=match.reached_ms,
            clip_ids=match.clip_ids,
            scores=match.scores,
            created_ms=now_ms,
            delivery=Delivery(state="pending" if rule.webhook is not None else "none"),
        )
