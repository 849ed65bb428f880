"""One webhook delivery attempt: the body (the firing's JSON or the rule's template), its headers (idempotency
key, HMAC-SHA256 signature over the body, bearer token, custom headers) and the POST, through the outbound
address policy, without following redirects (docs/architecture.md, "Alerts")."""

from __future__ import annotations

import hashlib
import hmac
import json
import string

import httpx

from pipeline.address_policy import AddressPolicy
from pipeline.alerts.config import SCHEMES
from pipeline.alerts.firings import Firing
from pipeline.alerts.rules import Webhook
from pipeline.errors import ForbiddenSource, SourceUnavailable

SIGNATURE_HEADER = "X-Omnisift-Signature"  # "sha256=<hex HMAC of the body under the rule's secret>"
MAX_ERROR_CHARS = 300


class DeliveryFailed(Exception):
    """An attempt that did not reach a 2xx answer; the message never holds the URL's path or any credential."""


def check_url(url: str, policy: AddressPolicy, schemes: tuple[str, ...] = SCHEMES) -> None:
    """Refuse (ForbiddenSource) a webhook URL whose scheme is not allowed, that carries credentials, or whose
    host is refused by the outbound address policy; SourceUnavailable when the host does not resolve."""
    parts = httpx.URL(url)
    if parts.scheme not in schemes:
        raise ForbiddenSource(f"webhook scheme {parts.scheme!r} is not allowed; use one of {', '.join(schemes)}")
    if parts.userinfo:
        raise ForbiddenSource("a webhook URL may not carry credentials: use bearer_token or headers")
    if not parts.host:
        raise ForbiddenSource("a webhook URL needs a host")
    policy.check(parts.host)


def render_body(webhook: Webhook, firing: Firing) -> bytes:
    public = firing.public()
    if webhook.body_template is None:
        return json.dumps(public).encode()
    values = {
        "firing_id": firing.firing_id,
        "rule_id": firing.rule_id,
        "rule_name": firing.rule_name,
        "rule_version": firing.rule_version,
        "severity": firing.severity,
        "camera_id": firing.camera_id,
        "condition": firing.condition,
        "start": public["start"],
        "end": public["end"],
        "reached": public["reached"],
        "clip_ids": ",".join(firing.clip_ids),
        "score": max(firing.scores.values(), default=0.0),
    }
    rendered = {k: _escaped(v) if webhook.is_json else str(v) for k, v in values.items()}
    rendered["firing"] = json.dumps(public)
    return string.Template(webhook.body_template).substitute(rendered).encode()


def _escaped(value) -> str:
    return json.dumps(value)[1:-1] if isinstance(value, str) else json.dumps(value)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def request_headers(webhook: Webhook, firing: Firing, body: bytes) -> dict[str, str]:
    headers = dict(webhook.headers)
    headers |= {"Content-Type": webhook.content_type, "Idempotency-Key": firing.firing_id,
                "X-Omnisift-Event": "alert.firing", "User-Agent": "omnisift-alerts/1"}  # fmt: skip
    if webhook.bearer_token is not None:
        headers["Authorization"] = f"Bearer {webhook.bearer_token}"
    if webhook.secret is not None:
        headers[SIGNATURE_HEADER] = signature(webhook.secret, body)
    return headers


def post(
    client: httpx.Client, webhook: Webhook, firing: Firing, policy: AddressPolicy, schemes: tuple[str, ...] = SCHEMES
) -> None:
    """One attempt; DeliveryFailed unless the receiver answers 2xx. The address is checked again each time
    (a name may resolve elsewhere by now)."""
    where = webhook.describe()["url"]
    try:
        check_url(webhook.url, policy, schemes)
    except (ForbiddenSource, SourceUnavailable) as error:
        raise DeliveryFailed(str(error)) from None
    body = render_body(webhook, firing)
    try:
        response = client.post(webhook.url, content=body, headers=request_headers(webhook, firing, body))
    except httpx.HTTPError as error:
        raise DeliveryFailed(f"{where}: {type(error).__name__}") from None
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"{where} answered {response.status_code}: {response.text[:MAX_ERROR_CHARS]!r}")
