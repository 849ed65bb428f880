"""One settings object: environment beats YAML beats defaults; the shipped Serve config builds the application.
(The compose env file is checked against these settings in tests/deploy/test_compose.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet
from pydantic import ValidationError

from omnisift_core.config import ChangeTest, MonitoringBudget, NoveltyBudget
from omnisift_core.errors import InvalidConfig
from pipeline.errors import ForbiddenSource
from services.app import app_builder
from services.models import model_setup
from services.runtime import run_service
from services.settings import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "compose"


def test_environment_overrides_yaml_which_overrides_defaults(tmp_path, monkeypatch):
    config = tmp_path / "omnisift.yaml"
    config.write_text("compression_preset: '35%'\nclip_seconds: 6\nencoder:\n  num_gpus: 1\n  max_batch_size: 2\n")
    monkeypatch.setenv("OMNISIFT_CONFIG", str(config))
    monkeypatch.setenv("OMNISIFT_CLIP_SECONDS", "8")
    settings = Settings()
    assert settings.compression_preset == "35%"  # from the file
    assert settings.clip_seconds == 8  # environment wins
    assert settings.encoder.num_gpus == 1 and settings.encoder.max_batch_size == 2
    assert settings.fps == 2.0  # default


def test_nested_environment_variables_and_standard_names(monkeypatch):
    monkeypatch.setenv("OMNISIFT_ANSWERER__NUM_REPLICAS", "3")
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@db:6379/0")
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    settings = Settings()
    assert settings.answerer.num_replicas == 3
    assert settings.ray_address == "ray://head:10001"
    assert settings.redis_config().url == "redis://:hunter2@db:6379/0"
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("clip_seconds", 7, "multiple of 2"),
        ("compression_preset", "50%", "35%"),
        ("answer_mode", "magic", "llm"),
        ("no_such_setting", 1, "Extra inputs are not permitted"),
        ("default_timezone", "America", "not an IANA timezone name"),
        ("outbound_allow_cidrs", ["10.0.0.0/33"], "not an IP address or CIDR range"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(field, value, message):
    with pytest.raises(ValidationError, match=message):
        Settings(**{field: value})


def test_tiny_model_answers_from_the_timeline_unless_told_otherwise():
    assert not Settings().answers_with_llm
    assert Settings(answer_mode="llm").answers_with_llm
    assert Settings(model="/models/Qwen2.5-Omni-7B").answers_with_llm


def test_shipped_serve_config_builds_the_application(monkeypatch):
    config = yaml.safe_load((COMPOSE / "serve.yaml").read_text())
    application = config["applications"][0]
    assert application["import_path"] == "services.app:app_builder"
    with pytest.raises(InvalidConfig, match="OMNISIFT_SECRET_KEY"):
        app_builder(application["args"])  # a cluster app must share one key for camera credentials
    monkeypatch.setenv("OMNISIFT_SECRET_KEY", Fernet.generate_key().decode())
    app = app_builder(application["args"])
    graph = deployment_graph(app)
    assert set(graph) == {d["name"] for d in application["deployments"]}  # serve.yaml names every deployment
    assert app._bound_deployment.name == "Gateway"  # the HTTP ingress
    assert graph == {"Gateway": ["Ingest", "Answerer"], "Ingest": ["EncoderCompressor"], "EncoderCompressor": [],
                     "Answerer": []}  # fmt: skip


def deployment_graph(app) -> dict[str, list[str]]:
    """Deployment name -> the deployments bound into its constructor, walking the Serve application."""
    graph: dict[str, list[str]] = {}
    pending = [app]
    while pending:
        deployment = pending.pop()._bound_deployment
        bound = [a for a in deployment.init_args if hasattr(a, "_bound_deployment")]
        graph[deployment.name] = [b._bound_deployment.name for b in bound]
        pending += bound
    return graph


def test_the_novelty_video_budget_reaches_the_compressor_and_is_omnisift_only():
    compressor = model_setup(Settings(video_budget="novelty", novelty_still_keep=0.25, change_threshold=0.2)).compressor
    assert compressor.novelty == NoveltyBudget(ChangeTest(change_threshold=0.2, active_share=0.02), still_keep=0.25)
    assert model_setup(Settings()).compressor.novelty is None
    with pytest.raises(ValidationError, match="needs compression_method 'omnisift'"):
        Settings(video_budget="novelty", compression_method="omnizip")


def test_the_monitoring_profile_is_omnisifts_default_and_the_paper_one_setting_away(monkeypatch):
    monitoring = model_setup(Settings())
    assert monitoring.compressor.monitoring == MonitoringBudget()
    monkeypatch.setenv("OMNISIFT_COMPRESSION_PROFILE", "paper")
    paper = model_setup(Settings())
    assert paper.compressor.monitoring is None and paper.fingerprint != monitoring.fingerprint
    monkeypatch.delenv("OMNISIFT_COMPRESSION_PROFILE")
    assert Settings(compression_method="dycoke").profile == "paper"  # the baselines keep their fixed ratios
    assert Settings(video_budget="novelty").profile == "paper"
    with pytest.raises(ValidationError, match="compression_profile 'monitoring' needs compression_method 'omnisift'"):
        Settings(compression_profile="monitoring", compression_method="dycoke")
    with pytest.raises(ValidationError, match="its own video budget"):
        Settings(compression_profile="monitoring", video_budget="novelty")


def test_a_cluster_service_needs_a_shared_store_and_a_shared_secret_key(tmp_path):
    cluster = {"data_dir": tmp_path, "ray_address": "ray://head:10001"}
    with pytest.raises(InvalidConfig, match="set REDIS_URL"), run_service(Settings(**cluster)):
        pass
    with (
        pytest.raises(InvalidConfig, match="OMNISIFT_SECRET_KEY"),
        run_service(Settings(**cluster, redis_url="redis://127.0.0.1:9/0")),
    ):
        pass


def test_the_outbound_address_lists_reach_the_media_policy():
    default = Settings().media_policy().addresses
    with pytest.raises(ForbiddenSource, match="link-local"):
        default.check("169.254.10.20")
    narrowed = Settings(outbound_deny_cidrs=["169.254.169.254/32"], outbound_allow_cidrs=["169.254.0.0/16"])
    addresses = narrowed.media_policy().addresses
    addresses.check("169.254.10.20")  # a link-local camera, allowed on purpose
    for host in ("169.254.169.254", "10.0.0.12", "metadata.google.internal"):
        with pytest.raises(ForbiddenSource):
            addresses.check(host)
