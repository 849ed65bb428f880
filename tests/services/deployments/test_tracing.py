"""OpenTelemetry across deployments: spans reach a real OTLP/HTTP endpoint chosen by the standard OTEL_*
variables, and one clip's (or one query's) spans share a trace across processes."""

from __future__ import annotations

import gzip
import http.server
import threading
from collections import defaultdict

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from pipeline.ingest.sample_media import write_sample_video
from tests.fixtures.network import free_port
from tests.fixtures.service import running_service, wait_for, wait_for_job

pytestmark = pytest.mark.e2e  # real Ray Serve, Redis and media servers


class Collector(http.server.ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver on loopback: span name -> list of (trace id, component)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", free_port()), _CollectorHandler)
        self.spans: dict[str, list[tuple[bytes, str]]] = defaultdict(list)
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _CollectorHandler(http.server.BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest.FromString(body)
        with self.server.lock:
            for resource_spans in request.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        self.server.spans[span.name].append((span.trace_id, attributes["omnisift.component"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format, *args) -> None:
        pass


@pytest.fixture(scope="module")
def collector():
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def traced_service(collector, tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OTEL_TRACES_EXPORTER", "otlp")
        env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
        env.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
        with running_service(tmp_path_factory.mktemp("traced"), answer_mode="llm", max_new_tokens=4) as service:
            yield service


def test_a_clip_and_a_query_each_make_one_trace_across_deployments(traced_service, collector, tmp_path):
    media = write_sample_video(tmp_path / "hall.mp4", width=320, height=240, fps=10, duration=10.0)
    with httpx.Client(base_url=traced_service.url, timeout=120) as client:
        with media.path.open("rb") as file:
            job = client.post("/v1/files", files={"file": ("hall.mp4", file)},
                              data={"camera_id": "hall", "start_time": "2026-11-23T09:00:00Z"}).json()  # fmt: skip
        assert wait_for_job(client, job["job_id"])["state"] == "done"
        answer = client.post("/v1/query", json={"question": "what happened at 09:00 on 2026-11-23?"}).json()
        assert answer["answer_source"] == "llm"

    names = ("ingest", "decode", "encode", "compress", "store", "query", "plan", "generate")
    wait_for(lambda: all(collector.spans.get(n) for n in names), f"spans {names} at the collector", 60)
    with collector.lock:
        spans = {name: list(found) for name, found in collector.spans.items()}

    (clip_trace, ingest_component), *_ = spans["ingest"]
    assert ingest_component == "ingest"
    for name in ("encode", "compress", "store"):
        assert (clip_trace, "encoder") in spans[name], f"{name} did not join the clip's trace"
    assert (clip_trace, "ingest") in spans["decode"]

    (query_trace, gateway_component), *_ = spans["query"]
    assert gateway_component == "gateway"
    assert (query_trace, "gateway") in spans["plan"]
    assert (query_trace, "answerer") in spans["generate"], "generate did not join the query's trace"
