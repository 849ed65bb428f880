"""A real multi-node Ray cluster on this machine: `ray start --head` and two more nodes with raylets of their
own on 127.0.0.1, each with a custom resource. The app is deployed over it with two ingest replicas (one per
worker node) and two encoder replicas; four cameras (two pulled from an RTSP server, two pushing to us) and
an uploaded file are ingested. Then one worker node is SIGKILLed, raylet and workers: its cameras resume on
the other node within 30 s with the outage recorded as a gap, every clip stored before the kill stays
readable, and questions are answered throughout."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
import ray
from cryptography.fernet import Fernet
from ray._private.authentication_test_utils import reset_auth_token_state

from pipeline.ingest.sample_media import write_sample_video
from pipeline.store.anchor_store import AnchorStore
from pipeline.store.connection import RedisConfig, connect
from pipeline.store.registry import Registry
from tests.fixtures.media_servers import RtspCamera, RtspPublisher
from tests.fixtures.network import free_port
from tests.fixtures.service import running_service, wait_for, wait_for_job

pytestmark = pytest.mark.e2e  # a real Ray cluster, Serve, Redis and media servers

RAY = str(Path(sys.executable).parent / "ray")
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}  # loopback-only test cluster


@contextmanager
def loopback_cluster_env() -> Iterator[None]:
    """RAY_ENV for this process while the test cluster is used; afterwards Ray's cached config is re-read, so
    later modules' local clusters (token auth, Ray's default) are not joined with auth left disabled."""
    try:
        with pytest.MonkeyPatch.context() as env:
            for key, value in RAY_ENV.items():
                env.setenv(key, value)
            yield
    finally:
        reset_auth_token_state()


LEASE_S = 6.0
CLIP_S = 4
TAKEOVER_S = 30.0
PULLED, PUSHED = ("gate", "yard"), ("door", "hall")


class RayNode:
    """One `ray start --block` on 127.0.0.1 in a process group of its own: its raylet and workers die with it.
    Every port is its own (raylets on one machine would otherwise race for the same defaults)."""

    def __init__(self, name: str, logdir: Path, workers: range, *args: str):
        self.name = name
        self.log = logdir / f"ray-{name}.log"
        resources = {name: 1} | ({} if name == "head" else {"worker": 1})  # where replicas may go shows by name
        ports = [f"--{flag}={free_port()}" for flag in ("node-manager-port", "object-manager-port",
                 "metrics-export-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
                 "runtime-env-agent-port")]  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [RAY, "start", "--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats", "--num-cpus=4",
                 f"--resources={json.dumps(resources)}", *ports, f"--min-worker-port={workers.start}",
                 f"--max-worker-port={workers.stop - 1}", *args],
                env=os.environ | RAY_ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        wait_for(self._up, f"ray node {name} to start", 120)

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"ray start for {self.name} exited:\n{self.log.read_text()[-2000:]}")
        return "Ray runtime started" in self.log.read_text()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory) -> Iterator[dict[str, RayNode]]:
    logdir, port = tmp_path_factory.mktemp("ray"), free_port()
    head = ("--head", f"--port={port}", "--include-dashboard=false", f"--ray-client-server-port={free_port()}")
    started = {"head": RayNode("head", logdir, range(40000, 40400), *head)}
    try:
        for i, name in enumerate(("node_b", "node_c"), start=1):
            started[name] = RayNode(
                name, logdir, range(40000 + 400 * i, 40400 + 400 * i), f"--address=127.0.0.1:{port}"
            )
        with loopback_cluster_env():
            ray.init(address=f"127.0.0.1:{port}")
            try:
                wait_for(lambda: sum(n["Alive"] for n in ray.nodes()) == 3, "three live Ray nodes", 120)
                node_ids = {name: _node_with(name) for name in started}
            finally:
                ray.shutdown()
            for node, node_id in node_ids.items():
                started[node].node_id = node_id
            started["head"].address = f"127.0.0.1:{port}"
            yield started
    finally:
        for node in reversed(list(started.values())):
            node.kill()
        current = Path("/tmp/ray/ray_current_cluster")
        if current.is_file() and str(port) in current.read_text():
            current.unlink()


def push_ports(count: int) -> tuple[int, int]:
    """`count` consecutive free loopback ports: where push-mode cameras publish."""
    while True:
        first = free_port()
        if all(_free(p) for p in range(first, first + count)):
            return first, first + count - 1


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _node_with(resource: str) -> str:
    (node,) = [n["NodeID"] for n in ray.nodes() if n["Alive"] and resource in n["Resources"]]
    return node


@pytest.fixture(scope="module")
def service(nodes, redis_servers, tmp_path_factory):
    redis = redis_servers()
    settings = {
        "redis_url": redis.url,
        "ray_address": nodes["head"].address,
        "secret_key": Fernet.generate_key().decode(),
        "clip_seconds": CLIP_S,
        "ingest_lease_s": LEASE_S,
        "push_ports": push_ports(2),
        "gateway": {"num_cpus": 0.5, "resources": {"head": 0.1}},
        "ingest": {"num_replicas": 2, "max_replicas_per_node": 1, "num_cpus": 0.5, "resources": {"worker": 0.1}},
        "encoder": {"num_replicas": 2, "max_replicas_per_node": 1},
    }
    with loopback_cluster_env(), running_service(tmp_path_factory.mktemp("svc"), **settings) as running:
        yield running


def test_a_dead_nodes_cameras_resume_elsewhere_and_nothing_stored_is_lost(nodes, service, tmp_path):
    media = write_sample_video(tmp_path / "loop.mp4", width=320, height=240, fps=10, duration=12.0)
    cameras = [RtspCamera(tmp_path).start() for _ in PULLED]
    publishers: list[RtspPublisher] = []
    asked = Questions(service.url)
    try:
        with httpx.Client(base_url=service.url, timeout=120) as http:
            for camera_id, camera in zip(PULLED, cameras, strict=True):
                assert http.post("/v1/streams", json={"camera_id": camera_id, "url": camera.url}).status_code == 201
            for camera_id in PUSHED:
                created = http.post("/v1/streams", json={"camera_id": camera_id, "push": True})
                assert created.status_code == 201, created.text
                publishers.append(RtspPublisher(media.path, created.json()["push_url"], tmp_path).start())
            with media.path.open("rb") as file:  # its bytes reach whichever node's ingest replica takes it
                job = http.post("/v1/files", files={"file": ("loop.mp4", file)}, data={"camera_id": "upload"})
            assert wait_for_job(http, job.json()["job_id"])["state"] == "done"
            every = (*PULLED, *PUSHED)
            wait_for(lambda: all(status(http, c)["clips"] >= 1 for c in every), "a stored clip from every camera", 300)

            registry, store = stores(service)
            holders = {c: r.holder for c, r in registry.reports(list(every)).items()}
            on_nodes = {holder.split(".")[0] for holder in holders.values()}
            node_b, node_c = nodes["node_b"].node_id[:8], nodes["node_c"].node_id[:8]
            assert on_nodes == {node_b, node_c}, holders  # ingest replicas on two nodes, two cameras each
            moving = sorted(c for c, h in holders.items() if h.startswith(node_b))
            before = {c: [m.clip_id for m in store.clips(c)] for c in (*every, "upload")}

            asked.start()
            nodes["node_b"].kill()
            killed_at = datetime.now(timezone.utc)
            began = time.monotonic()

            def resumed() -> bool:
                reports = registry.reports(moving)
                return all(c in reports and reports[c].holder.startswith(node_c) and reports[c].connected
                           for c in moving)  # fmt: skip

            wait_for(resumed, "the dead node's cameras to resume on the other node", 120)
            assert time.monotonic() - began <= TAKEOVER_S
            for camera_id in moving:
                gaps = registry.gaps(camera_id)
                assert any("taken over" in g.reason and g.start <= killed_at <= g.end for g in gaps), gaps
            wait_for(lambda: all(status(http, c)["lag_s"] is not None and newest_end(store, c) > killed_at
                                 for c in moving), "new clips from the moved cameras", 180)  # fmt: skip
            stored_before = [clip_id for clip_ids in before.values() for clip_id in clip_ids]
            assert len(stored_before) >= 7  # every camera's first clips and the upload's
            for clip_id in stored_before:
                assert http.get(f"/v1/clips/{clip_id}").status_code == 200, clip_id
        asked.stop()
        assert asked.answered >= 5 and asked.failed == [], asked.failed
    finally:
        asked.stop()
        for publisher in publishers:
            publisher.stop()
        for camera in cameras:
            camera.stop()


def status(http: httpx.Client, camera_id: str) -> dict:
    response = http.get(f"/v1/streams/{camera_id}")
    assert response.status_code == 200, response.text
    return response.json()


def stores(service) -> tuple[Registry, AnchorStore]:
    connection = connect(RedisConfig(url=service.settings.redis_url.get_secret_value()))
    return Registry(connection.client), AnchorStore.open(connection, None)


def newest_end(store: AnchorStore, camera_id: str) -> datetime:
    clips = store.clips(camera_id)
    return clips[-1].end if clips else datetime.min.replace(tzinfo=timezone.utc)


class Questions:
    """Asks a question every half second in the background; keeps count of answers and failures."""

    def __init__(self, url: str):
        self.url = url
        self.answered = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._ask, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def _ask(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self._stop.wait(0.5):
                try:
                    response = http.post("/v1/query", json={"question": "what happened in the last minute?"})
                except httpx.HTTPError as error:
                    self.failed.append(repr(error))
                    continue
                if response.status_code == 200:
                    self.answered += 1
                else:
                    self.failed.append(f"{response.status_code} {response.text[:200]}")
