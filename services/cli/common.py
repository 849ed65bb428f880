"""What every client command of the `omnisift` CLI shares: the global options, the connection to the service,
and deliberate failures as one line on stderr with exit status 1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
import yaml

from omnisift_core.errors import OmniSiftError
from pipeline.redaction import redact_text
from services.cli.client import ApiError, Client
from services.settings import load_settings

UrlOption = Annotated[
    str | None,
    typer.Option("--url", envvar="OMNISIFT_URL", help="The service, e.g. http://127.0.0.1:8000.", show_default=False),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key", envvar="OMNISIFT_API_KEY", help="Bearer key, when the service has one.", show_default=False
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines instead of text.")]


@dataclass(frozen=True)
class GlobalOptions:
    config: Path | None
    url: str | None
    api_key: str | None


class CliError(Exception):
    """A failure the CLI explains in one line."""


def service_url(options: GlobalOptions, url: str | None) -> str:
    if url or options.url:
        return url or options.url
    settings = load_settings(options.config)
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


def service_key(options: GlobalOptions, api_key: str | None) -> str | None:
    if api_key or options.api_key:
        return api_key or options.api_key
    if options.config is None:
        return None
    key = load_settings(options.config).api_key
    return key.get_secret_value() if key else None


@contextmanager
def connect(options: GlobalOptions, url: str | None, api_key: str | None) -> Iterator[Client]:
    with Client(service_url(options, url), service_key(options, api_key)) as client:
        yield client


@contextmanager
def clear_errors() -> Iterator[None]:
    """Deliberate failures (bad input, the service's refusals, an unreachable service) as one line + exit 1."""
    try:
        yield
    except (CliError, ApiError, OmniSiftError) as error:
        fail(str(error))
    except yaml.YAMLError as error:
        fail(f"the config file is not valid YAML: {error}")
    except OSError as error:
        fail(f"{error.strerror or error}: {error.filename}" if error.filename else str(error))


def fail(message: str) -> None:
    typer.echo(f"error: {' '.join(redact_text(message).split())}", err=True)
    raise typer.Exit(1)
