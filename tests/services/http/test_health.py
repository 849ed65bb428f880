"""Liveness follows the store: /healthz stays 200 through a short outage and turns 503 once the store has
been unreachable for longer than `store_grace_s`, then recovers with it (in-process, a real redis-server)."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from services.deployments.gateway import Gateway
from services.deployments.ingest import Ingest
from services.http.app import create_api
from services.settings import Settings
from tests.fixtures.in_process import InProcessHandle

GRACE_S = 1.0


def test_healthz_fails_only_after_the_store_is_down_past_the_grace_period(redis_servers, tmp_path):
    redis = redis_servers(persistence=False)
    settings = Settings(data_dir=tmp_path, redis_url=redis.url, store_grace_s=GRACE_S, alert_worker=False)
    ingest = Ingest(settings, encoder=None)
    gateway = Gateway(settings, InProcessHandle(ingest), answerer=None)
    with TestClient(create_api(gateway, settings)) as client:
        assert client.get("/healthz").status_code == 200
        redis.kill()
        down_at = time.monotonic()
        assert client.get("/healthz").status_code == 200  # within the grace period: a blip, not a death
        while time.monotonic() - down_at <= GRACE_S:
            time.sleep(0.1)
        dead = client.get("/healthz")
        assert dead.status_code == 503 and dead.json()["error"]["code"] == "store_down"
        assert "has not answered for" in dead.json()["error"]["message"]
        redis.start()
        assert client.get("/healthz").status_code == 200
    ingest.close()
