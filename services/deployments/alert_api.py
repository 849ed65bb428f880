"""What the alert routes call (inside the gateway): rules checked and stored, firings listed, and the firing
log streamed from an event id (docs/architecture.md, "Alerts")."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, time

from pipeline.alerts.alert_store import AlertStore
from pipeline.alerts.firings import Delivery, Firing
from pipeline.alerts.rules import AlertRule, Condition, Schedule, Webhook
from pipeline.alerts.webhook import check_url, render_body
from pipeline.errors import InvalidRule, SourceUnavailable
from pipeline.records import from_ms, to_ms
from services.deployments.alerts import ONE_TRY
from services.errors import Conflict, NotReady
from services.http import alert_schemas as api
from services.settings import Settings

STREAM_BLOCK_MS = 1000  # one read of the firing log
KEEPALIVE_READS = 10  # a keep-alive comment after this many idle reads (a stream whose client left ends there)
MAX_STREAMS = 32  # firing streams open at once per gateway replica: each waits on the log in a thread of its own


class AlertApi:
    def __init__(self, settings: Settings, alerts: AlertStore) -> None:
        self.settings = settings
        self.alerts = alerts
        # Blocking log reads get threads of their own, so open streams never hold up the API's other calls; a
        # read that fails ends the stream at once (its client resumes from Last-Event-ID) instead of retrying.
        self._stream_reads = ThreadPoolExecutor(MAX_STREAMS, thread_name_prefix="firing-stream")
        self._log = AlertStore(alerts.client, settings.store_namespace, alerts.secrets, alerts.where, ONE_TRY)
        self._open_streams = 0

    # rules

    async def create(self, body: api.AlertRuleIn) -> api.AlertRuleOut:
        def create() -> AlertRule:
            if self.alerts.count_rules() >= self.settings.max_alert_rules:
                raise Conflict(f"{self.settings.max_alert_rules} alert rules exist (max_alert_rules); delete one first")
            now = self.alerts.now_ms()
            rule = self._rule(body, uuid.uuid4().hex, version=1, created_ms=now, updated_ms=now)
            self.alerts.put_rule(rule)
            return rule

        return self._out(await asyncio.to_thread(create))

    async def update(self, rule_id: str, body: api.AlertRuleIn) -> api.AlertRuleOut:
        """A new version of the rule (firings record the version); clips stored from now on are evaluated
        with it. Webhook credentials are replaced by the ones sent: send them again to keep them."""

        def update() -> AlertRule:
            old = self.alerts.rule(rule_id)
            rule = self._rule(body, rule_id, old.version + 1, old.created_ms, self.alerts.now_ms())
            self.alerts.put_rule(rule)
            return rule

        return self._out(await asyncio.to_thread(update))

    async def get(self, rule_id: str) -> api.AlertRuleOut:
        return self._out(await asyncio.to_thread(self.alerts.rule, rule_id))

    async def list(self) -> list[api.AlertRuleOut]:
        return [self._out(r) for r in await asyncio.to_thread(self.alerts.rules)]

    async def delete(self, rule_id: str) -> None:
        await asyncio.to_thread(self.alerts.delete_rule, rule_id)

    def _rule(self, body: api.AlertRuleIn, rule_id: str, version: int, created_ms: int, updated_ms: int) -> AlertRule:
        """The rule, or InvalidRule / ForbiddenSource (400) saying what cannot work."""
        asked = body.condition
        if asked.kind == "question" and not self.settings.asks_questions:
            raise InvalidRule(
                "a question condition needs a language model that produces language: this service runs "
                f"model {self.settings.model!r} with answer_mode {self.settings.answer_mode!r}. Set model to a "
                "Qwen2.5-Omni or OmniSIFT checkpoint (and answer_mode auto or llm), or use motion, sound or speech"
            )
        condition = Condition(asked.kind, asked.min_level, asked.min_duration_s, asked.question)
        schedule = Schedule(tuple(body.schedule.days), time.fromisoformat(body.schedule.start),
                            time.fromisoformat(body.schedule.end))  # fmt: skip
        rule = AlertRule(rule_id, body.name, condition, tuple(body.cameras), schedule, body.cooldown_s, body.severity,
                         None, body.enabled, version, created_ms, updated_ms)  # fmt: skip
        if body.webhook is None:
            return rule
        hook = body.webhook
        webhook = Webhook(hook.url, hook.bearer_token, tuple(hook.headers.items()), hook.secret, hook.body_template,
                          hook.content_type, hook.max_attempts)  # fmt: skip
        try:
            check_url(webhook.url, self.settings.address_policy(), tuple(self.settings.alert_webhook_schemes))
        except SourceUnavailable as error:
            raise InvalidRule(f"webhook: {error}") from None
        if webhook.body_template is not None and webhook.is_json:
            try:
                json.loads(render_body(webhook, _sample_firing(rule)))
            except ValueError as error:
                raise InvalidRule(f"body_template does not render JSON (content_type is JSON): {error}") from None
        return replace(rule, webhook=webhook)

    def _out(self, rule: AlertRule) -> api.AlertRuleOut:
        condition = rule.condition
        webhook = None
        if rule.webhook is not None:
            shown = rule.webhook.describe()
            webhook = api.WebhookOut(
                **{**shown, "max_attempts": shown["max_attempts"] or self.settings.alert_max_attempts}
            )
        return api.AlertRuleOut(
            rule_id=rule.rule_id,
            name=rule.name,
            cameras=list(rule.cameras),
            condition=api.ConditionOut(
                kind=condition.kind,
                min_level=condition.level(self.settings.activity_config()),
                min_duration_s=condition.min_duration_s,
                question=condition.question,
            ),
            schedule=api.ScheduleIn(**rule.schedule.to_json()),
            cooldown_s=rule.cooldown_s,
            severity=rule.severity,
            webhook=webhook,
            enabled=rule.enabled,
            version=rule.version,
            created=from_ms(rule.created_ms),
            updated=from_ms(rule.updated_ms),
        )

    # firings

    async def firings(
        self, rule_id: str | None, since: datetime | None, limit: int, delivery: str | None
    ) -> list[api.FiringOut]:
        def read() -> list[Firing]:
            if rule_id is not None:
                self.alerts.rule(rule_id)  # 404 for an unknown rule
            if delivery == "dead":
                return self.alerts.dead_letters(limit)
            return self.alerts.firings(rule_id, None if since is None else to_ms(since), limit)

        return [api.FiringOut(**f.public()) for f in await asyncio.to_thread(read)]

    async def firing(self, firing_id: str) -> api.FiringOut:
        return api.FiringOut(**(await asyncio.to_thread(self.alerts.firing, firing_id)).public())

    async def firing_events(self, last_event_id: str | None) -> AsyncIterator[str]:
        """Server-Sent Events: every firing logged after `last_event_id` (None: after the newest now), then new
        ones as they are recorded; a comment now and then keeps proxies from closing an idle stream."""
        if self._open_streams >= MAX_STREAMS:
            raise NotReady(f"{MAX_STREAMS} firing streams are open on this replica; try again later")
        after = last_event_id or await asyncio.to_thread(self.alerts.last_event_id)
        return self._events(after)

    async def _events(self, after: str) -> AsyncIterator[str]:
        self._open_streams += 1
        try:
            yield "retry: 2000\n\n"
            async for event in self._logged(after):
                yield event
        finally:
            self._open_streams -= 1

    async def _logged(self, after: str) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        idle = 0
        while True:
            logged = await loop.run_in_executor(self._stream_reads, self._log.log_after, after, STREAM_BLOCK_MS)
            if not logged:
                idle += 1
                if idle >= KEEPALIVE_READS:
                    idle = 0
                    yield ": keep-alive\n\n"
                continue
            idle = 0
            for entry in logged:
                after = entry.event_id
                data = api.FiringOut(**entry.firing.public()).model_dump_json()
                yield f"id: {entry.event_id}\nevent: firing\ndata: {data}\n\n"


def _sample_firing(rule: AlertRule) -> Firing:
    """A firing with every field filled, to check that a JSON body template renders JSON."""
    return Firing("0" * 32, rule.rule_id, rule.version, rule.name, rule.severity, "camera", rule.condition.kind,
                  0, 2000, 2000, ("camera@0",), {"activity": 0.5}, 0, Delivery("pending"))  # fmt: skip
