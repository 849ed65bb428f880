"""docker-compose.yml and its parts in compose/: docker-compose accepts it with every profile, and everything it
names exists and agrees with the rest (settings, files, volumes, ports, healthchecks, GPUs, non-root images).

No Docker engine is needed: `docker-compose config` only reads and resolves the files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from pydantic import AliasChoices, BaseModel

from services.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_FILE = ROOT / "compose" / "omnisift.env"
PROFILES = {"cpu": {"cpu-worker"}, "relay": {"relay"}, "otel": {"otel-collector"}}
ALWAYS_ON = {"redis", "head", "worker"}
# read by Settings under their standard names, or by Ray, Hugging Face and OpenTelemetry (OTEL_*) themselves
STANDARD_VARIABLES = {"REDIS_URL", "RAY_ADDRESS", "RAY_AUTH_MODE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}
PACKAGE_FILES = {"pyproject.toml", "README.md", "LICENSE", "omnisift_core", "pipeline", "services"}


@pytest.fixture(scope="module")
def compose() -> dict:
    """The file as written (anchors merged), before docker-compose resolves it."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def docker_compose_config(*options: str) -> dict:
    """The configuration docker-compose resolves: env file read in, variables substituted, paths made absolute."""
    if shutil.which("docker-compose") is None:
        pytest.fail(
            "docker-compose is not installed; `make test` installs it (as root), or run "
            "`bash scripts/install-system-packages.sh` to see the apt-get command"
        )
    done = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE_FILE), *options, "config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0, f"docker-compose config {' '.join(options)} failed:\n{done.stderr}"
    return yaml.safe_load(done.stdout)


@pytest.mark.parametrize("profile", [None, *PROFILES])
def test_docker_compose_accepts_the_file_with_each_profile(profile):
    config = docker_compose_config(*(["--profile", profile] if profile else []))
    expected = ALWAYS_ON | PROFILES.get(profile, set())
    assert expected <= set(config["services"])


def test_the_env_file_as_docker_compose_reads_it_is_valid_settings(monkeypatch):
    environment = docker_compose_config()["services"]["head"]["environment"]
    for name in [n for n in os.environ if n.startswith("OMNISIFT_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, str(value))
    settings = Settings()
    assert settings.host == "0.0.0.0" and settings.push_host == "0.0.0.0"  # reachable through published ports
    assert settings.redis_config().url == "redis://redis:6379/0"
    assert settings.ray_address == "head:6380"
    assert settings.uses_tiny_model or settings.model.startswith("/models/")


def env_file_assignments() -> dict[str, str]:
    """NAME -> value of every line of the env file, commented-out assignments (the optional ones) included."""
    found = {}
    for line in ENV_FILE.read_text().splitlines():
        if match := re.fullmatch(r"#? ?([A-Z][A-Z0-9_]*)=(.*)", line):
            found[match[1]] = match[2]
    return found


def settings_variable_names() -> set[str]:
    """Every OMNISIFT_* (or aliased) variable Settings reads, nested fields spelled with __."""
    names = set()
    for name, field in Settings.model_fields.items():
        if isinstance(field.validation_alias, AliasChoices):
            names |= {str(choice) for choice in field.validation_alias.choices}
            continue
        names.add(f"OMNISIFT_{name.upper()}")
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            names |= {f"OMNISIFT_{name.upper()}__{sub.upper()}" for sub in field.annotation.model_fields}
    return names


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each instruction, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in path.read_text().splitlines() if not line.startswith("#")))
    return [(line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1]) for line in text.splitlines() if line]


def final_stage(path: Path) -> list[tuple[str, str]]:
    instructions = dockerfile_instructions(path)
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def built_dockerfiles(compose: dict) -> dict[str, Path]:
    """Service -> the Dockerfile it is built from."""
    found = {}
    for name, service in compose["services"].items():
        if "build" in service:
            build = service["build"] if isinstance(service["build"], dict) else {"context": service["build"]}
            found[name] = ROOT / build["context"] / build.get("dockerfile", "Dockerfile")
    return found


def test_every_variable_in_the_env_file_and_the_image_is_a_real_setting():
    image_variables = {
        pair.split("=", 1)[0]
        for op, arguments in dockerfile_instructions(ROOT / "compose" / "Dockerfile")
        if op == "ENV"
        for pair in arguments.split()
    }
    known = settings_variable_names()
    for name in set(env_file_assignments()) | image_variables:
        if name.startswith("OMNISIFT_"):
            assert name in known, f"{name} is not a field of services.settings.Settings"
        else:
            assert name in STANDARD_VARIABLES or name.startswith("OTEL_"), f"{name} is neither a setting nor standard"


def test_every_file_the_compose_file_names_exists(compose):
    for service, dockerfile in built_dockerfiles(compose).items():
        assert dockerfile.is_file(), f"{service}: no Dockerfile {dockerfile}"
    for name, service in compose["services"].items():
        if "env_file" in service:
            assert (ROOT / service["env_file"]).is_file()
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("./"):  # configuration from the repository (MODELS_DIR is the operator's)
                assert (ROOT / source).is_file(), f"{name}: no {source}"


def test_every_dependency_is_a_service_that_starts_without_a_profile(compose):
    for name, service in compose["services"].items():
        for dependency in service.get("depends_on", []):
            assert dependency in compose["services"], f"{name} depends on no service {dependency}"
            assert not compose["services"][dependency].get("profiles"), f"{name} depends on optional {dependency}"


def test_named_volumes_are_declared_and_used(compose):
    used = {
        mount.split(":")[0]
        for service in compose["services"].values()
        for mount in service.get("volumes", [])
        if not mount.startswith((".", "/", "$"))
    }
    assert used == set(compose["volumes"])
    assert "redis-data:/data" in compose["services"]["redis"]["volumes"]


def test_redis_keeps_an_append_only_file(compose):
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"


def test_every_service_has_a_healthcheck_and_restarts(compose):
    for name, service in compose["services"].items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", f"{name} is not restarted"
    assert "/healthz" in " ".join(compose["services"]["head"]["healthcheck"]["test"])
    assert compose["services"]["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert compose["services"]["worker"]["healthcheck"]["test"] == ["CMD", "ray", "status"]


def test_optional_services_sit_behind_their_profiles(compose):
    for name, service in compose["services"].items():
        profiles = set(service.get("profiles", []))
        assert profiles == {p for p, services in PROFILES.items() if name in services}, name


def test_gpu_workers_reserve_a_gpu_each_and_the_model_replicas_ask_for_one(compose):
    worker = compose["services"]["worker"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"] and device["count"] == 1
    assert worker["build"]["args"]["TORCH_INDEX"] == "https://pypi.org/simple"  # PyPI's CUDA wheel
    assert "--num-cpus=0" in worker["command"]  # only GPU-asking replicas land on a GPU worker
    settings = env_file_assignments()
    assert settings["OMNISIFT_ENCODER__NUM_GPUS"] == settings["OMNISIFT_ANSWERER__NUM_GPUS"] == "1"
    assert settings["OMNISIFT_ENCODER__NUM_CPUS"] == settings["OMNISIFT_ANSWERER__NUM_CPUS"] == "0"
    cpu_worker = compose["services"]["cpu-worker"]
    assert "deploy" not in cpu_worker and "--num-gpus=0" in cpu_worker["command"]


def test_the_head_publishes_the_gateway_and_push_ports_the_settings_name(compose):
    settings = env_file_assignments()
    head = compose["services"]["head"]
    first, last = yaml.safe_load(settings["OMNISIFT_PUSH_PORTS"])
    assert head["ports"] == [
        f"{settings['OMNISIFT_PORT']}:{settings['OMNISIFT_PORT']}",
        f"{first}-{last}:{first}-{last}",
    ]
    assert f"127.0.0.1:{settings['OMNISIFT_PORT']}/healthz" in " ".join(head["healthcheck"]["test"])
    relay_port = int(compose["services"]["relay"]["ports"][0].split(":")[0])
    assert not first <= relay_port <= last


def test_every_node_joins_the_head_the_settings_name(compose):
    ray_address = env_file_assignments()["RAY_ADDRESS"]
    host, port = ray_address.split(":")
    assert host == "head" and f"--port={port}" in compose["services"]["head"]["command"][0]
    for name in ("worker", "cpu-worker"):
        assert f"--address={ray_address}" in compose["services"][name]["command"]
    assert "omnisift serve" in compose["services"]["head"]["command"][0]  # RAY_ADDRESS: serve on that cluster


def test_images_run_as_non_root_with_no_model_weights_inside(compose):
    for name, dockerfile in built_dockerfiles(compose).items():
        users = [arguments for op, arguments in final_stage(dockerfile) if op == "USER"]
        assert users and users[-1] not in ("root", "0"), f"{name}: {dockerfile.name} runs as root"
    for name, service in compose["services"].items():
        if "build" not in service:
            assert service.get("user") not in (None, "root", "0"), f"{name} runs as root"
    image = ROOT / "compose" / "Dockerfile"
    copied = {source for op, arguments in final_stage(image) if op == "COPY" for source in arguments.split()[:-1]}
    assert copied <= PACKAGE_FILES  # the package, never a checkpoint
    context = Path(f"{image}.dockerignore").read_text().splitlines()
    assert {line[1:] for line in context if line.startswith("!")} == PACKAGE_FILES  # nothing else is sent
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            if ":/models" in mount:
                assert mount.endswith(":ro"), f"{name} mounts the models writable"
