"""Starting and stopping the service: Redis (external or embedded), Ray (local or RAY_ADDRESS), Serve, the app."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# On Linux, Ray replaces a 127.0.0.1 node address with the machine's outward IP and binds its ports there,
# unless this flag is set before ray is first imported. A local service (no RAY_ADDRESS) keeps every Ray
# port on loopback; on a cluster Ray's own addressing applies.
if "RAY_ADDRESS" not in os.environ:
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import ray
from pydantic import SecretStr
from ray import serve

from omnisift_core.errors import InvalidConfig
from pipeline.store.connection import connect
from services.app import build_app
from services.settings import Settings

APP_NAME = "omnisift"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunningService:
    url: str  # the HTTP address of the gateway
    settings: Settings  # as the deployments got them (the embedded Redis URL filled in)


def _local_cpus(settings: Settings) -> int:
    """Logical CPUs for a local Ray: at least what the deployments ask for, so none waits for a slot."""
    asked = [settings.gateway, settings.ingest, settings.encoder] + ([settings.answerer] * settings.answers_with_llm)
    demand = sum(d.num_replicas * d.num_cpus for d in asked)
    return max(os.cpu_count() or 1, int(demand + 0.999))


def start_ray(settings: Settings) -> None:
    if ray.is_initialized():
        raise RuntimeError("Ray is already initialized in this process: run one omnisift service per process")
    if settings.ray_address:
        ray.init(address=settings.ray_address, namespace=APP_NAME)
    else:  # a private local cluster bound to loopback only, whatever other Ray runs (or ran) on the machine
        ray.init(
            address="local",  # never follow RAY_ADDRESS-less discovery (`ray start` leaves ray_current_cluster)
            num_cpus=_local_cpus(settings),
            include_dashboard=False,
            namespace=APP_NAME,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
        )


@contextmanager
def run_service(settings: Settings) -> Iterator[RunningService]:
    """Run the whole service until the block exits; Redis is embedded (and owned here) without REDIS_URL."""
    if settings.ray_address and settings.redis_url is None:
        raise InvalidConfig("on a Ray cluster every node must reach the store: set REDIS_URL to a shared Redis")
    if settings.ray_address and settings.secret_key is None:
        raise InvalidConfig(
            "on a Ray cluster every node must open the stored camera credentials: set OMNISIFT_SECRET_KEY "
            "(e.g. python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
        )
    connection = connect(settings.redis_config())
    deployed = settings
    if settings.redis_url is None:
        deployed = settings.model_copy(update={"redis_url": SecretStr(connection.url)})
    try:
        start_ray(settings)
        # one HTTP proxy, on the head: the gateway's address is the head's, however many nodes there are
        serve.start(proxy_location="HeadOnly", http_options={"host": settings.host, "port": settings.port})
        serve.run(build_app(deployed), name=APP_NAME, route_prefix="/")
        yield RunningService(f"http://{settings.host}:{settings.port}", deployed)
    finally:
        if ray.is_initialized():  # serve.shutdown() on a stopped Ray would start a new one
            serve.shutdown()
            ray.shutdown()
        connection.close()
