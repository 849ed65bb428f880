"""The Ray Serve application, wired in one place (docs/architecture.md, "Data flow"):

    HTTP -> Gateway -+-> Ingest (one worker per camera / file job) -> EncoderCompressor -> anchor store (Redis)
                     +-> Answerer (language half; only when answers come from the LLM)

Replicas, CPUs, GPUs and batching come from the settings, never from code.
"""

from __future__ import annotations

from ray import serve
from ray.serve import Application

from omnisift_core.errors import InvalidConfig
from services.deployments.answerer import Answerer
from services.deployments.encoder import EncoderCompressor
from services.deployments.gateway import Gateway
from services.deployments.ingest import Ingest
from services.settings import DeploymentOptions, Settings
from services.telemetry import otel_environment

GRACEFUL_STOP_S = 2.0


def _deployment(cls: type, options: DeploymentOptions):
    actor_options = {
        "num_cpus": options.num_cpus,
        "num_gpus": options.num_gpus,
        "resources": options.resources,
        "runtime_env": {"env_vars": otel_environment()},
    }
    return serve.deployment(cls).options(
        num_replicas=options.num_replicas,
        max_replicas_per_node=options.max_replicas_per_node,
        ray_actor_options=actor_options,
        graceful_shutdown_wait_loop_s=0.2,  # requests in flight are checked this often while stopping ...
        graceful_shutdown_timeout_s=GRACEFUL_STOP_S,  # ... and given this long, so `serve` stops in seconds
    )


def build_app(settings: Settings) -> Application:
    encoder = _deployment(EncoderCompressor, settings.encoder).bind(settings)
    ingest = _deployment(Ingest, settings.ingest).bind(settings, encoder)
    answerer = _deployment(Answerer, settings.answerer).bind(settings) if settings.answers_with_llm else None
    return _deployment(serve.ingress()(Gateway), settings.gateway).bind(settings, ingest, answerer)


def app_builder(args: dict[str, str]) -> Application:
    """For `serve run` / `serve deploy` config files: `import_path: services.app:app_builder`, `args` are settings.

    Such an app runs on a cluster, so every node must seal and open camera credentials with one key."""
    settings = Settings(**args)
    if settings.secret_key is None:
        raise InvalidConfig("set OMNISIFT_SECRET_KEY (the same Fernet key) on every node of the cluster")
    return build_app(settings)
