"""A local service starts its own private Ray, whatever other Ray cluster runs (or ran) on the machine.

`ray start --head` leaves a ray_current_cluster file that a plain ray.init() would join; the service must
not (it would then crash: "num_cpus and num_gpus must not be provided" when joining)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import ray

from tests.fixtures.network import free_port
from tests.fixtures.service import running_service, wait_for

pytestmark = pytest.mark.e2e  # real Ray clusters

RAY = str(Path(sys.executable).parent / "ray")
CURRENT_CLUSTER = Path("/tmp/ray/ray_current_cluster")


def test_a_local_service_does_not_join_a_cluster_started_with_ray_start(tmp_path):
    port = free_port()
    head = subprocess.Popen(
        [RAY, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=1",
         "--include-dashboard=false", "--disable-usage-stats"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(lambda: CURRENT_CLUSTER.is_file() and str(port) in CURRENT_CLUSTER.read_text(), "ray start", 60)
        with running_service(tmp_path) as service:
            assert httpx.get(f"{service.url}/readyz", timeout=30).status_code == 200
            assert not ray.get_runtime_context().gcs_address.endswith(f":{port}")  # its own cluster
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(timeout=60)
        if CURRENT_CLUSTER.is_file() and str(port) in CURRENT_CLUSTER.read_text():
            CURRENT_CLUSTER.unlink()  # what `ray stop` would do: leave no pointer to the stopped cluster
