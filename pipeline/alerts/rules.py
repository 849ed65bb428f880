"""An alert rule: which cameras, what condition, when (a weekly schedule in the camera's timezone), how often
(cooldown), how bad (severity) and where to (webhook). Torch-free (docs/architecture.md, "Alerts").

Webhook credentials (the URL, a bearer token, header values, the signing secret) are sealed by the caller's
`seal` before they reach Redis and are never part of what the API shows (`Webhook.describe`).
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Literal
from urllib.parse import urlsplit

from pipeline.activity import ActivityConfig
from pipeline.errors import InvalidRule

ConditionKind = Literal["motion", "sound", "speech", "question"]
Severity = Literal["info", "warning", "critical"]
TIMELINE_KINDS = ("motion", "sound", "speech")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
QUESTION_LEVEL = 0.5  # a question fires when the probability of "yes" reaches this
# What a body template may name: ${field}. Strings are JSON-escaped (without quotes) when the body is JSON.
TEMPLATE_FIELDS = ("firing_id", "rule_id", "rule_name", "rule_version", "severity", "camera_id", "condition",
                   "start", "end", "reached", "clip_ids", "score", "firing")  # fmt: skip


@dataclass(frozen=True)
class Condition:
    """What must hold. Timeline kinds hold per 2-second chunk: `min_level` (None: the timeline's own
    definition of an active chunk) reached for at least `min_duration_s` of consecutive chunks, across clip
    boundaries. A question holds per clip: the language model's probability of "yes" reaches `min_level`."""

    kind: ConditionKind
    min_level: float | None = None
    min_duration_s: float = 0.0
    question: str | None = None

    def __post_init__(self) -> None:
        if (self.kind == "question") != bool(self.question):
            raise InvalidRule("a question condition needs a question, and only a question condition takes one")
        if self.kind == "question" and self.min_duration_s:
            raise InvalidRule("a question is asked of each clip: min_duration_s applies to motion, sound and speech")

    def level(self, activity: ActivityConfig) -> float:
        if self.min_level is not None:
            return self.min_level
        return {
            "motion": activity.active_share,
            "sound": activity.audio_active,
            "speech": activity.speech_active,
            "question": QUESTION_LEVEL,
        }[self.kind]

    def to_json(self) -> dict:
        return {"kind": self.kind, "min_level": self.min_level, "min_duration_s": self.min_duration_s,
                "question": self.question}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict) -> Condition:
        return cls(data["kind"], data.get("min_level"), float(data.get("min_duration_s", 0.0)), data.get("question"))


@dataclass(frozen=True)
class Schedule:
    """Days of the week and a daily window, read in the camera's timezone. `start == end` means all day; an
    end before the start crosses midnight (Friday 22:00-06:00 includes Saturday 03:00)."""

    days: tuple[str, ...] = DAYS
    start: time = time(0, 0)
    end: time = time(0, 0)

    def __post_init__(self) -> None:
        unknown = [d for d in self.days if d not in DAYS]
        if unknown or not self.days:
            raise InvalidRule(f"schedule days must be some of {', '.join(DAYS)}; got {list(self.days)}")

    def holds(self, local: datetime) -> bool:
        day, previous = DAYS[local.weekday()], DAYS[(local.weekday() - 1) % 7]
        moment = local.time().replace(tzinfo=None)
        if self.start == self.end:
            return day in self.days
        if self.start < self.end:
            return day in self.days and self.start <= moment < self.end
        return (day in self.days and moment >= self.start) or (previous in self.days and moment < self.end)

    def to_json(self) -> dict:
        return {"days": list(self.days), "start": self.start.strftime("%H:%M"), "end": self.end.strftime("%H:%M")}

    @classmethod
    def from_json(cls, data: dict) -> Schedule:
        return cls(tuple(data["days"]), time.fromisoformat(data["start"]), time.fromisoformat(data["end"]))


@dataclass(frozen=True)
class Webhook:
    """Where firings are POSTed, and how: bearer token, custom headers, an HMAC-SHA256 signing secret, a body
    template (`${field}` placeholders; None: the firing's JSON), the content type and the attempt limit."""

    url: str
    bearer_token: str | None = field(default=None, repr=False)
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    secret: str | None = field(default=None, repr=False)
    body_template: str | None = None
    content_type: str = "application/json"
    max_attempts: int | None = None  # None: the service's alert_max_attempts

    def __post_init__(self) -> None:
        if self.body_template is not None:
            template = string.Template(self.body_template)
            if not template.is_valid():
                raise InvalidRule("body_template has a '$' that is not a ${field} placeholder (write $$ for '$')")
            unknown = sorted(set(template.get_identifiers()) - set(TEMPLATE_FIELDS))
            if unknown:
                raise InvalidRule(f"body_template names unknown fields {unknown}; known: {', '.join(TEMPLATE_FIELDS)}")

    @property
    def is_json(self) -> bool:
        return self.content_type.split(";")[0].strip().lower() == "application/json"

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    def describe(self) -> dict:
        """What the API shows: the receiver's scheme, host and port, and which credentials are set, never them."""
        parts = urlsplit(self.url)
        return {
            "url": f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…",
            "bearer_token": self.bearer_token is not None,
            "header_names": [name for name, _ in self.headers],
            "signed": self.secret is not None,
            "body_template": self.body_template,
            "content_type": self.content_type,
            "max_attempts": self.max_attempts,
        }

    def to_json(self, seal: Callable[[str], str]) -> dict:
        return {
            "url": seal(self.url),
            "bearer_token": None if self.bearer_token is None else seal(self.bearer_token),
            "headers": [[name, seal(value)] for name, value in self.headers],
            "secret": None if self.secret is None else seal(self.secret),
            "body_template": self.body_template,
            "content_type": self.content_type,
            "max_attempts": self.max_attempts,
        }

    @classmethod
    def from_json(cls, data: dict, unseal: Callable[[str], str]) -> Webhook:
        token, secret = data.get("bearer_token"), data.get("secret")
        return cls(
            url=unseal(data["url"]),
            bearer_token=None if token is None else unseal(token),
            headers=tuple((name, unseal(value)) for name, value in data.get("headers", ())),
            secret=None if secret is None else unseal(secret),
            body_template=data.get("body_template"),
            content_type=data.get("content_type", "application/json"),
            max_attempts=data.get("max_attempts"),
        )


@dataclass(frozen=True)
class AlertRule:
    """A standing question. `created_ms` and `updated_ms` are the store server's clock: clips stored from
    `created_ms` on are evaluated. Every update raises `version`, which each firing records."""

    rule_id: str
    name: str
    condition: Condition
    cameras: tuple[str, ...] = ()  # empty: every camera
    schedule: Schedule = field(default_factory=Schedule)
    cooldown_s: float = 0.0
    severity: Severity = "warning"
    webhook: Webhook | None = None
    enabled: bool = True
    version: int = 1
    created_ms: int = 0
    updated_ms: int = 0

    def watches(self, camera_id: str) -> bool:
        return not self.cameras or camera_id in self.cameras

    def to_json(self, seal: Callable[[str], str]) -> str:
        return json.dumps(
            {
                "rule_id": self.rule_id,
                "name": self.name,
                "condition": self.condition.to_json(),
                "cameras": list(self.cameras),
                "schedule": self.schedule.to_json(),
                "cooldown_s": self.cooldown_s,
                "severity": self.severity,
                "webhook": None if self.webhook is None else self.webhook.to_json(seal),
                "enabled": self.enabled,
                "version": self.version,
                "created_ms": self.created_ms,
                "updated_ms": self.updated_ms,
            }
        )

    @classmethod
    def from_json(cls, raw: str | bytes, unseal: Callable[[str], str]) -> AlertRule:
        data = json.loads(raw)
        webhook = data.get("webhook")
        return cls(
            rule_id=data["rule_id"],
            name=data["name"],
            condition=Condition.from_json(data["condition"]),
            cameras=tuple(data["cameras"]),
            schedule=Schedule.from_json(data["schedule"]),
            cooldown_s=float(data["cooldown_s"]),
            severity=data["severity"],
            webhook=None if webhook is None else Webhook.from_json(webhook, unseal),
            enabled=bool(data["enabled"]),
            version=int(data["version"]),
            created_ms=int(data["created_ms"]),
            updated_ms=int(data["updated_ms"]),
        )
