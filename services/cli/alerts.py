"""`omnisift alerts ...`: standing rules per camera over the REST API, their firings, and a live watch
(docs/architecture.md, "Alerts").

Webhook credentials never go on the command line (where `ps` and shell history would show them): a rule
file (--file, JSON as POST /v1/alerts takes it) or environment variables named by --token-env / --secret-env.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from services.cli.common import ApiKeyOption, CliError, JsonOption, UrlOption, clear_errors, connect
from services.cli.rendering import print_json
from services.http.alert_schemas import AlertRuleOut, FiringOut

alerts_app = typer.Typer(
    help="Standing rules per camera; firings go to a webhook and to `omnisift alerts watch`.", no_args_is_help=True
)

RuleFile = Annotated[
    Path | None, typer.Option("--file", help="The rule as JSON (the body of POST /v1/alerts); '-' reads stdin.")
]


def _read_rule(path: Path) -> dict:
    text = typer.get_text_stream("stdin").read() if str(path) == "-" else path.read_text()
    try:
        rule = json.loads(text)
    except json.JSONDecodeError as error:
        raise CliError(f"{path} is not JSON: {error}") from None
    if not isinstance(rule, dict):
        raise CliError(f"{path} must hold one JSON object (a rule)")
    return rule


def _from_env(variable: str | None, what: str) -> str | None:
    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        raise CliError(f"--{what}-env names {variable}, which is not set in the environment")
    return value


def _rule_from_options(
    name: str | None, condition: str | None, cameras: list[str] | None, level: float | None, lasting: float,
    question: str | None, days: str | None, hours: str | None, cooldown: float, severity: str,
    webhook: str | None, token_env: str | None, secret_env: str | None,
) -> dict:  # fmt: skip
    if name is None or condition is None:
        raise CliError("give --name and --condition (motion, sound, speech or question), or the rule as --file")
    rule: dict = {"name": name, "cameras": cameras or [], "cooldown_s": cooldown, "severity": severity}
    rule["condition"] = {"kind": condition, "min_level": level, "min_duration_s": lasting, "question": question}
    schedule: dict = {}
    if days:
        schedule["days"] = [d.strip().lower() for d in days.split(",")]
    if hours:
        start, sep, end = hours.partition("-")
        if not sep:
            raise CliError(f"--hours takes a window like 22:00-06:00, got {hours!r}")
        schedule |= {"start": start.strip(), "end": end.strip()}
    if schedule:
        rule["schedule"] = schedule
    if webhook is not None:
        rule["webhook"] = {"url": webhook, "bearer_token": _from_env(token_env, "token"),
                           "secret": _from_env(secret_env, "secret")}  # fmt: skip
    elif token_env or secret_env:
        raise CliError("--token-env and --secret-env go with --webhook")
    return rule


def _print_rule(rule: AlertRuleOut) -> None:
    condition = rule.condition
    what = condition.question if condition.kind == "question" else f"{condition.kind} >= {condition.min_level:g}"
    lasting = f" for {condition.min_duration_s:g} s" if condition.min_duration_s else ""
    schedule = rule.schedule
    when = f"{','.join(schedule.days)} {schedule.start}-{schedule.end}"
    target = "no webhook" if rule.webhook is None else f"webhook {rule.webhook.url}"
    state = "" if rule.enabled else " (disabled)"
    typer.echo(
        f"{rule.rule_id}  {rule.name!r}{state} v{rule.version}: {what}{lasting} on "
        f"{', '.join(rule.cameras) or 'every camera'}, {when}, cooldown {rule.cooldown_s:g} s, {rule.severity}, "
        f"{target}"
    )


def _print_firing(firing: FiringOut) -> None:
    scores = ", ".join(f"{k} {v:.2f}" for k, v in firing.scores.items())
    delivery = firing.delivery.state + (f" ({firing.delivery.last_error})" if firing.delivery.last_error else "")
    typer.echo(
        f"{firing.start.isoformat()}  {firing.camera_id}  {firing.rule_name!r} [{firing.severity}]  {scores}  "
        f"clips {', '.join(firing.clip_ids)}  delivery {delivery}"
    )


@alerts_app.command("create")
def create(
    ctx: typer.Context,
    file: RuleFile = None,
    name: Annotated[str | None, typer.Option(help="What to call the rule.")] = None,
    condition: Annotated[str | None, typer.Option(help="motion, sound, speech or question.")] = None,
    camera: Annotated[list[str] | None, typer.Option("--camera", help="Watch this camera (repeatable).")] = None,
    level: Annotated[float | None, typer.Option(help="Score a chunk must reach (default: the timeline's).")] = None,
    lasting: Annotated[float, typer.Option("--for", help="Seconds the condition must last.")] = 0.0,
    question: Annotated[str | None, typer.Option(help="The yes/no question (condition question).")] = None,
    days: Annotated[str | None, typer.Option(help="e.g. mon,tue,wed in the camera's timezone (default: all).")] = None,
    hours: Annotated[str | None, typer.Option(help="Daily window, e.g. 22:00-06:00 (default all day).")] = None,
    cooldown: Annotated[float, typer.Option(help="Seconds of footage after a firing before it fires again.")] = 0.0,
    severity: Annotated[str, typer.Option(help="info, warning or critical.")] = "warning",
    webhook: Annotated[str | None, typer.Option(help="http(s) URL firings are POSTed to.")] = None,
    token_env: Annotated[str | None, typer.Option(help="Environment variable holding a bearer token.")] = None,
    secret_env: Annotated[str | None, typer.Option(help="Environment variable holding the HMAC secret.")] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a rule, from options or from a JSON file (which can carry headers and a body template)."""
    with clear_errors(), connect(ctx.obj, url, api_key) as client:
        rule = _read_rule(file) if file is not None else _rule_from_options(
            name, condition, camera, level, lasting, question, days, hours, cooldown, severity, webhook, token_env,
            secret_env,
        )  # fmt: skip
        created = client.create_alert(rule)
        print_json(created) if as_json else _print_rule(created)


@alerts_app.command("list")
def list_rules(ctx: typer.Context, url: UrlOption = None, api_key: ApiKeyOption = None, as_json: JsonOption = False):
    """Every rule (webhook credentials are never shown)."""
    with clear_errors(), connect(ctx.obj, url, api_key) as client:
        rules = client.alerts()
        if as_json:
            typer.echo(json.dumps([r.model_dump(mode="json") for r in rules], indent=2))
        elif not rules:
            typer.echo("no alert rules")
        for rule in [] if as_json else rules:
            _print_rule(rule)


@alerts_app.command("show")
def show(
    ctx: typer.Context, rule_id: str, url: UrlOption = None, api_key: ApiKeyOption = None, as_json: JsonOption = False
):
    """One rule."""
    with clear_errors(), connect(ctx.obj, url, api_key) as client:
        rule = client.alert(rule_id)
        print_json(rule) if as_json else _print_rule(rule)


@alerts_app.command("update")
def update(
    ctx: typer.Context,
    rule_id: str,
    file: Annotated[Path, typer.Option("--file", help="The whole new rule as JSON; '-' reads stdin.")],
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
):
    """Replace a rule (its version goes up; send webhook credentials again to keep them)."""
    with clear_errors(), connect(ctx.obj, url, api_key) as client:
        rule = client.update_alert(rule_id, _read_rule(file))
        print_json(rule) if as_json else _print_rule(rule)


@alerts_app.command("delete")
def delete(ctx: typer.Context, rule_id: str, url: UrlOption = None, api_key: ApiKeyOption = None):
    """Delete a rule; its firings stay, undelivered ones are cancelled."""
    with clear_errors(), connect(ctx.obj, url, api_key) as client:
        client.delete_alert(rule_id)
        typer.echo(f"deleted alert rule {rule_id}")


@alerts_app.command("firings")
def firings(
    ctx: typer.Context,
    rule_id: Annotated[str | None, typer.Argument(help="Only this rule's firings.")] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601: firings whose footage starts from then.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    dead: Annotated[bool, typer.Option("--dead", help="Only firings dead-lettered after their last attempt.")] = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
):
    """Firings with their evidence (clips, footage times, scores) and delivery state, oldest first."""
    with clear_errors(), connect(ctx.obj, url, api_key) as client:
        found = client.firings(rule_id, since, limit, dead)
        if as_json:
            typer.echo(json.dumps([f.model_dump(mode="json") for f in found], indent=2))
        elif not found:
            typer.echo("no firings")
        for firing in [] if as_json else found:
            _print_firing(firing)


@alerts_app.command("watch")
def watch(
    ctx: typer.Context,
    last_event_id: Annotated[str | None, typer.Option(help="Resume after this event id (printed with --json).")] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
):
    """Print firings as they are recorded, until Ctrl-C."""
    with clear_errors(), connect(ctx.obj, url, api_key) as client:
        try:
            for event_id, firing in client.firing_stream(last_event_id):
                if as_json:
                    typer.echo(json.dumps({"id": event_id, "firing": firing.model_dump(mode="json")}))
                else:
                    _print_firing(firing)
        except KeyboardInterrupt:
            pass
