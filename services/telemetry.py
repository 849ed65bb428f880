"""OpenTelemetry tracing: spans for decode, encode, compress, store, plan and generate, one trace per clip or
query across deployments (W3C trace context travels with each call as a small dict).

The exporter follows the standard variables: OTEL_TRACES_EXPORTER=otlp|console|none (default none),
OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT for otlp (HTTP/protobuf), OTEL_SERVICE_NAME.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
_configured = False


def otel_environment() -> dict[str, str]:
    """The OTEL_* variables of this process, to hand to the deployments' workers."""
    return {k: v for k, v in os.environ.items() if k.startswith("OTEL_")}


def configure_tracing(component: str) -> None:
    """Install the tracer provider once per process, with the exporter the environment names."""
    global _configured
    if _configured:
        return
    _configured = True
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    if exporter_name == "none":
        return
    service = os.environ.get("OTEL_SERVICE_NAME", "omnisift")
    provider = TracerProvider(resource=Resource.create({"service.name": service, "omnisift.component": component}))
    if exporter_name == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter_name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        raise ValueError(f"OTEL_TRACES_EXPORTER={exporter_name!r} is not supported; use otlp, console or none")
    trace.set_tracer_provider(provider)


tracer = trace.get_tracer("omnisift")


def current_carrier(span: trace.Span | None = None) -> dict[str, str]:
    """The trace context (of `span`, else the current one) as a dict to pass along to another deployment."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=None if span is None else trace.set_span_in_context(span))
    return carrier


@contextmanager
def continued(carrier: Mapping[str, str] | None) -> Iterator[None]:
    """Make the caller's trace context current, so spans opened here join the caller's trace."""
    token = context.attach(_PROPAGATOR.extract(dict(carrier or {})))
    try:
        yield
    finally:
        context.detach(token)
