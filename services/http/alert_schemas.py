"""The alerts part of the REST contract (v1): rules in, rules and firings out (docs/architecture.md, "Alerts").

Webhook credentials (the URL's path and query, the bearer token, header values, the signing secret) are
accepted and never returned: responses say which are set. Torch-free, like services.http.schemas.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from pipeline.alerts.rules import DAYS
from services.http.schemas import Strict, UtcTime
from services.http.validation import MAX_QUERY_CAMERAS, URL_MAX_LENGTH, CameraId, Flag

RESERVED_HEADERS = frozenset({"authorization", "content-type", "content-length", "host", "idempotency-key",
                              "user-agent", "transfer-encoding", "connection"})  # fmt: skip
MAX_COOLDOWN_S = 7 * 24 * 3600.0
MAX_DURATION_S = 3600.0

RuleId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$", description="as returned by POST /v1/alerts")]
FiringId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
EventId = Annotated[
    str, Field(pattern=r"^[0-9]{1,20}-[0-9]{1,20}$", description="an SSE event id, e.g. 1764758400000-0")
]
Level = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]
ClockTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM, 24-hour")]
Credential = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
HeaderName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")]
HeaderValue = Annotated[str, StringConstraints(pattern=r"^[\t\x20-\x7e\x80-\xff]{0,4096}$")]
ConditionKind = Literal["motion", "sound", "speech", "question"]
Severity = Literal["info", "warning", "critical"]
DeliveryState = Literal["none", "pending", "delivered", "dead", "cancelled"]


class ConditionIn(Strict):
    """motion, sound, speech: per 2-second chunk, from the timeline's scores; question: the language model's
    probability of "yes" over each clip's kept tokens (needs a real checkpoint)."""

    kind: ConditionKind
    min_level: Level | None = Field(
        None, description="score a chunk must reach (activity share, audio salience, speech probability) or the "
        "probability of yes; default: the timeline's active-chunk thresholds, 0.5 for speech and questions"
    )  # fmt: skip
    min_duration_s: float = Field(0.0, strict=True, ge=0, le=MAX_DURATION_S, allow_inf_nan=False)
    question: str | None = Field(None, min_length=1, max_length=1000)


class ScheduleIn(Strict):
    days: list[Literal[DAYS]] = Field(list(DAYS), min_length=1, max_length=7)  # type: ignore[valid-type]
    start: ClockTime = "00:00"
    end: ClockTime = Field("00:00", description="equal to start: all day; before it: the window crosses midnight")


class WebhookIn(Strict):
    url: str = Field(min_length=1, max_length=URL_MAX_LENGTH, description="http(s) receiver; checked by the "
                     "outbound address policy")  # fmt: skip
    bearer_token: Credential | None = None
    headers: dict[HeaderName, HeaderValue] = Field({}, max_length=32)
    secret: Credential | None = Field(None, description="HMAC-SHA256 key: X-Omnisift-Signature: sha256=<hex>")
    body_template: str | None = Field(None, max_length=16_384, description="${field} placeholders")
    content_type: str = Field("application/json", pattern=r"^[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+(; ?[ -~]{1,100})?$")
    max_attempts: int | None = Field(None, strict=True, ge=1, le=1000)

    @field_validator("url")
    @classmethod
    def _stripped(cls, value: str) -> str:
        return value.strip()

    @field_validator("headers")
    @classmethod
    def _not_reserved(cls, value: dict[str, str]) -> dict[str, str]:
        taken = sorted(n for n in value if n.lower() in RESERVED_HEADERS or n.lower().startswith("x-omnisift-"))
        if taken:
            raise ValueError(f"headers {taken} are set by the service (use bearer_token for Authorization)")
        return value


class AlertRuleIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    cameras: list[CameraId] = Field([], max_length=MAX_QUERY_CAMERAS, description="empty: every camera")
    condition: ConditionIn
    schedule: ScheduleIn = ScheduleIn()
    cooldown_s: float = Field(0.0, strict=True, ge=0, le=MAX_COOLDOWN_S, allow_inf_nan=False)
    severity: Severity = "warning"
    webhook: WebhookIn | None = None
    enabled: Flag = True


class ConditionOut(Strict):
    kind: ConditionKind
    min_level: float
    min_duration_s: float
    question: str | None


class WebhookOut(Strict):
    url: str = Field(description="scheme, host and port only")
    bearer_token: bool
    header_names: list[str]
    signed: bool
    body_template: str | None
    content_type: str
    max_attempts: int


class AlertRuleOut(Strict):
    rule_id: str
    name: str
    cameras: list[str]
    condition: ConditionOut
    schedule: ScheduleIn
    cooldown_s: float
    severity: Severity
    webhook: WebhookOut | None
    enabled: bool
    version: int
    created: UtcTime
    updated: UtcTime


class DeliveryOut(Strict):
    state: DeliveryState
    attempts: int
    next_attempt: UtcTime | None
    last_error: str | None
    delivered: UtcTime | None


class FiringOut(Strict):
    firing_id: str
    rule_id: str
    rule_version: int
    rule_name: str
    severity: str
    camera_id: str
    condition: ConditionKind
    start: UtcTime
    end: UtcTime
    reached: UtcTime
    created: UtcTime
    clip_ids: list[str]
    scores: dict[str, float]
    delivery: DeliveryOut
