"""The `omnisift` command: run the service (serve, demo) and talk to it over the REST API (ingest, query, events).

Client commands find the service by --url, else OMNISIFT_URL, else the host and port of the settings
(--config / OMNISIFT_CONFIG and OMNISIFT_* variables); the API key likewise. Output is for people unless
--json is given; a failure is one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import json
import runpy
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from services.cli.alerts import alerts_app
from services.cli.common import (
    ApiKeyOption,
    CliError,
    GlobalOptions,
    JsonOption,
    UrlOption,
    clear_errors,
    connect,
    fail,
)
from services.cli.demo import run_demo
from services.cli.rendering import echo_for, print_answer, print_events, print_evidence, print_json, usage_line
from services.http import schemas
from services.settings import load_settings

app = typer.Typer(
    name="omnisift",
    help="Ask what happened on your cameras: answers cite the stored clips and times they used.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals would show the API key
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", envvar="OMNISIFT_CONFIG", help="YAML settings file.", show_default=False),
    ] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    if config is not None and not config.is_file():  # said at once, even when a command would not read it
        fail(f"no such config file: {config}")
    ctx.obj = GlobalOptions(config, url, api_key)


# ---- commands ------------------------------------------------------------------------------------------


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default: the settings' host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default: the settings' port).")] = None,
) -> None:
    """Run the service until Ctrl-C: local Ray, or the Ray cluster at RAY_ADDRESS."""
    with clear_errors():
        overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
        settings = load_settings(ctx.obj.config, **overrides)
        if settings.ray_address is None:
            ensure_port_free(settings.host, settings.port)
        from services.runtime import run_service  # Ray and the model stack: only this command needs them

        where = f"the Ray cluster at {settings.ray_address}" if settings.ray_address else "a local Ray"
        typer.echo(f"starting omnisift on {where} (model {settings.model}, data in {settings.data_dir}) ...")
        with run_service(settings) as running:
            typer.echo(f"omnisift is serving at {running.url} (API docs at {running.url}/docs); Ctrl-C stops it")
            wait_for_stop_signal()
            typer.echo("stopping ...")
        typer.echo("omnisift stopped")


@app.command()
def ingest(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A video file to upload.", show_default=False)],
    camera: Annotated[str, typer.Option("--camera", help="Camera id the clips are stored under.")],
    start_time: Annotated[
        str | None,
        typer.Option(
            help="ISO 8601 wall-clock time of the first frame; without an offset it is read in the "
            "camera's timezone. Default: the file's creation time, else the upload time."
        ),
    ] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA timezone of the camera, e.g. Europe/Berlin.")] = None,
    wait: Annotated[bool, typer.Option(help="Wait until the job is done, with progress.")] = True,
    timeout: Annotated[float | None, typer.Option(help="Give up waiting after this many seconds.")] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Upload a video file and store its clips (progress until done)."""
    with clear_errors():
        if not file.is_file():
            raise CliError(f"no such file: {file}")
        with connect(ctx.obj, url, api_key) as client:
            accepted = client.upload(file, camera, start_time, timezone)
            say = echo_for(as_json)
            say(f"uploaded {file.name}: job {accepted.job_id} for camera {accepted.camera_id}")
            if not wait:
                if as_json:
                    print_json(accepted)
                return
            try:
                job = client.wait_for_job(accepted.job_id, timeout)
            except KeyboardInterrupt:
                raise CliError(f"stopped waiting; job {accepted.job_id} goes on in the service") from None
        if as_json:
            print_json(job)
        if job.state == "failed":
            raise CliError(f"job {job.job_id} failed after {job.clips} clips: {job.error}")
        if not as_json:
            note = f" (last error: {job.error})" if job.error else ""
            typer.echo(f"done: {job.clips} clips stored for camera {job.camera_id}{note}")


@app.command()
def query(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help='e.g. "what happened at 14:03?"', show_default=False)],
    camera: Annotated[list[str] | None, typer.Option("--camera", help="Only this camera (repeatable).")] = None,
    start: Annotated[str | None, typer.Option(help="ISO 8601 start; wins over times in the question.")] = None,
    end: Annotated[str | None, typer.Option(help="ISO 8601 end; wins over times in the question.")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="Longest answer, in tokens.")] = None,
    stream: Annotated[bool, typer.Option("--stream", help="Print the answer as it is generated.")] = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask a question; the answer comes with the clips (evidence) and times it is based on."""
    with clear_errors(), connect(ctx.obj, url, api_key) as client:
        if not stream:
            response = client.query(question, camera, start, end, max_new_tokens)
            if as_json:
                print_json(response)
            else:
                print_answer(response)
            return
        evidence: dict = {}
        for name, data in client.query_stream(question, camera, start, end, max_new_tokens):
            if as_json:
                typer.echo(json.dumps({"event": name, "data": data}))
            elif name == "evidence":
                evidence = data
            elif name == "token":
                typer.echo(data["text"], nl=False)
            elif name == "progress":
                typer.echo(f"[{data['stage']} {data['done']}/{data['total']}]", err=True)
            elif name == "done":
                typer.echo("\n")
                zone = evidence["time_range"]["timezone"]
                print_evidence([schemas.Evidence.model_validate(e) for e in evidence["evidence"]], zone)
                typer.echo(usage_line(data["answer_source"], data["usage"], data["latency_ms"]))


@app.command()
def events(
    ctx: typer.Context,
    camera: Annotated[str | None, typer.Option("--camera", help="Only this camera.")] = None,
    start: Annotated[str | None, typer.Option(help="ISO 8601 start (default: an hour before the end).")] = None,
    end: Annotated[str | None, typer.Option(help="ISO 8601 end (default: now).")] = None,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the event timeline: stretches of motion or sound, per camera."""
    with clear_errors(), connect(ctx.obj, url, api_key) as client:
        found = client.events(camera, start, end)
        if as_json:
            typer.echo(json.dumps([e.model_dump(mode="json") for e in found], indent=2))
        elif not found:
            typer.echo("no events in the range (default: the last hour; set --start and --end)")
        else:
            print_events(found)


@app.command()
def purge(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", help="Delete without asking.")] = False,
    url: UrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete every stored clip and the store's model fingerprint, so the store takes tokens of another model
    or compression setting (camera settings and streams stay)."""
    with clear_errors(), connect(ctx.obj, url, api_key) as client:
        if not yes and not _confirmed("Delete every stored clip of the service?"):
            raise CliError("nothing deleted (pass --yes to delete without asking)")
        purged = client.purge()
        if as_json:
            print_json(purged)
        else:
            typer.echo(f"deleted {purged.clips_removed} clips from store namespace {purged.namespace}")


@app.command()
def demo(
    ctx: typer.Context,
    file: Annotated[
        Path | None, typer.Option(help="Your own video file (default: a generated CCTV-style sample).")
    ] = None,
    camera: Annotated[str, typer.Option(help="Camera id for the demo footage.")] = "demo-cam",
    data_dir: Annotated[
        Path | None, typer.Option(help="Where the embedded Redis keeps its data (default: a temporary dir).")
    ] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the data directory and the sample afterwards.")] = False,
) -> None:
    """Zero setup: make a sample clip with known events, run the service, ingest it and ask about it."""
    with clear_errors():
        if file is not None and not file.is_file():
            raise CliError(f"no such file: {file}")
        run_demo(file=file, camera=camera, data_dir=data_dir, keep=keep, config=ctx.obj.config)


@app.command()
def train(
    ctx: typer.Context,
    manifest: Annotated[
        Path, typer.Argument(help='JSON Lines: {"video": path, "answer": text, "question"?: text} per line.')
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the selector (.safetensors).")],
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the manifest.")] = 1,
    learning_rate: Annotated[float, typer.Option(min=0.0, help="AdamW learning rate (cosine schedule).")] = 1e-5,
    batch_size: Annotated[int, typer.Option(min=1, help="Examples per optimizer step.")] = 8,
    max_clips: Annotated[int, typer.Option(min=1, help="Clips per video at most (from its start).")] = 6,
    seed: Annotated[int, typer.Option(help="Example order, and the initial weights of a new selector.")] = 0,
) -> None:
    """Train the OmniSIFT audio selector on captioned videos (STE; encoders and language model frozen).

    Uses the model and compression preset of the settings; continues from the configured selector
    (selector_weights, else the checkpoint's own) or starts a new one. Set selector_weights to the
    output to serve with it.
    """
    with clear_errors():
        if not manifest.is_file():
            raise CliError(f"no such manifest: {manifest}")
        settings = load_settings(ctx.obj.config)
        from omnisift_core.train import StepReport, TrainingConfig  # torch: only this command needs it
        from services.training import train_from_manifest

        def report(step: StepReport) -> None:
            typer.echo(f"step {step.step}/{step.steps}  loss {step.loss:.4f}  lr {step.learning_rate:.2e}")

        config = TrainingConfig(
            settings.removal_ratios, learning_rate, epochs, batch_size, seed, settings.novelty_budget()
        )
        train_from_manifest(settings, manifest, output, config, max_clips, report)
        typer.echo(f"selector written to {output}; serve with OMNISIFT_SELECTOR_WEIGHTS={output.resolve()}")


BENCHMARKS = ("compressor", "prefill", "ingest", "store", "service", "soak", "sizing", "alerts", "quality")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(BENCHMARKS)}.", show_default=False)],
) -> None:
    """Run one of the benchmarks behind the README's figures; options after `--` go to it (`-- --help`)."""
    with clear_errors():
        if name not in BENCHMARKS:
            raise CliError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
        checkout = Path(__file__).resolve().parents[2]  # the benchmarks ship with the source, not the package
        if not (checkout / "benchmarks" / f"{name}.py").is_file():
            raise CliError("the benchmarks are scripts of the source checkout; install omnisift from it (make install)")
        sys.path.insert(0, str(checkout))
        sys.argv = [f"omnisift bench {name}", *ctx.args]
        runpy.run_module(f"benchmarks.{name}", run_name="__main__", alter_sys=True)


app.add_typer(alerts_app, name="alerts")


def main() -> None:
    app()


# ---- settings, connection, errors ----------------------------------------------------------------------


def _confirmed(question: str) -> bool:
    """Ask on the terminal; no answer (no terminal, end of input) is no."""
    try:
        return typer.confirm(question, default=False)
    except typer.Abort:
        return False


def ensure_port_free(host: str, port: int) -> None:
    """Fail early, in words, when the HTTP port is taken (Serve would otherwise retry binding quietly)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise CliError(f"cannot listen on {host}:{port} ({error.strerror}); choose another with --port") from None


def wait_for_stop_signal() -> None:
    """Block until Ctrl-C (SIGINT) or SIGTERM."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(1.0):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    main()
