"""What the CLI prints for people: answers with their evidence, events, usage; JSON for machines."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from services.http import schemas


def echo_for(as_json: bool):
    """Progress notes go to stdout for people and to stderr when stdout carries JSON."""
    return lambda text: typer.echo(text, err=as_json)


def print_json(model) -> None:
    typer.echo(json.dumps(model.model_dump(mode="json"), indent=2))


def _console() -> Console:
    return Console(highlight=False, markup=False, width=None if sys.stdout.isatty() else 120)


def _clock(instant: datetime, zone: ZoneInfo, with_date: bool = True) -> str:
    return instant.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def print_answer(response: schemas.QueryResponse) -> None:
    typer.echo(response.answer)
    typer.echo()
    print_evidence(response.evidence, response.time_range.timezone)
    usage = response.usage.model_dump()
    typer.echo(usage_line(response.answer_source, usage, response.latency_ms))
    if response.coverage is not None:
        typer.echo(coverage_line(response.coverage))


def coverage_line(coverage: schemas.Coverage) -> str:
    """'coverage: 2160 clips in range, 58 as tokens (12 from disk), 2102 summarised, 2 thinned stretches'."""
    cold = f" ({coverage.clips_cold} from disk)" if coverage.clips_cold else ""
    line = f"coverage: {_count(coverage.clips_in_range, 'clip')} in range, {coverage.clips_as_tokens} as tokens{cold}, "
    line += f"{coverage.clips_summarised} summarised"
    if coverage.summary_batches:
        line += f" in {coverage.summary_batches} batch summaries"
    if coverage.thinned_ranges:
        line += f", {len(coverage.thinned_ranges)} thinned stretch{'es' * (len(coverage.thinned_ranges) != 1)}"
    return line


def print_evidence(evidence: list[schemas.Evidence], timezone: str) -> None:
    if not evidence:
        typer.echo("evidence: no stored clips in the time range")
        return
    zone = ZoneInfo(timezone)
    table = _table(f"evidence: {_count(len(evidence), 'clip')} (times in {timezone})")
    for name in ("camera", "clip", "activity", "audio salience", "video kept", "audio kept"):
        table.add_column(name, justify="left" if name in ("camera", "clip") else "right")
    for e in evidence:
        same_day = e.start.astimezone(zone).date() == e.end.astimezone(zone).date()
        clip = f"{_clock(e.start, zone)}-{_clock(e.end, zone, not same_day)}"
        numbers = (f"{e.activity:.3f}", f"{e.audio_salience:.3f}", str(e.video_tokens_kept), str(e.audio_tokens_kept))
        table.add_row(e.camera_id, clip, *numbers)
    _console().print(table)


def usage_line(answer_source: str, usage: dict, latency_ms: float) -> str:
    full, sent = usage["full_tokens"], usage["sent_tokens"]
    share = f" ({sent / full:.1%})" if full else ""
    source = {
        "timeline": "the event timeline (answer_source: timeline)",
        "llm": "the language model (answer_source: llm)",
    }.get(answer_source, answer_source)
    return f"sent {sent:,} of {full:,} tokens{share}; answered from {source} in {latency_ms:,.0f} ms"


def print_events(found: list[schemas.Event]) -> None:
    utc = ZoneInfo("UTC")
    table = _table(f"{_count(len(found), 'event')} (times in UTC)")
    for name in ("camera", "start", "end", "triggers", "activity", "audio salience", "speech", "clips"):
        table.add_column(name, justify="left" if name in ("camera", "start", "end", "triggers") else "right")
    for e in found:
        same_day = e.start.date() == e.end.astimezone(utc).date()
        row = (e.camera_id, _clock(e.start, utc), _clock(e.end, utc, not same_day))
        scores = (f"{e.activity:.3f}", f"{e.audio_salience:.3f}", f"{e.speech:.3f}")
        table.add_row(*row, ", ".join(e.triggers), *scores, str(len(e.clip_ids)))
    _console().print(table)


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
