"""The KubeRay RayService manifest: the application of compose/serve.yaml (the same Serve config, which builds),
a CPU head and GPU workers enough for every GPU replica the config can scale to, non-root pods."""

from __future__ import annotations

import importlib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet
from packaging.requirements import Requirement

from tests.services.test_settings import deployment_graph

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "compose" / "kuberay" / "rayservice.yaml"


@pytest.fixture(scope="module")
def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


@pytest.fixture(scope="module")
def serve_config(manifest) -> dict:
    return yaml.safe_load(manifest["spec"]["serveConfigV2"])


def pod_specs(manifest) -> list[dict]:
    cluster = manifest["spec"]["rayClusterConfig"]
    return [cluster["headGroupSpec"]["template"]["spec"]] + [g["template"]["spec"] for g in cluster["workerGroupSpecs"]]


def gpu_deployments(serve_config) -> list[dict]:
    (application,) = serve_config["applications"]
    return [d for d in application["deployments"] if d.get("ray_actor_options", {}).get("num_gpus", 0) > 0]


def test_it_is_a_ray_io_v1_rayservice_with_the_serve_config_of_compose(manifest, serve_config):
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayService"
    assert serve_config == yaml.safe_load((ROOT / "compose" / "serve.yaml").read_text())


def test_its_import_path_builds_the_application_with_every_named_deployment(serve_config, monkeypatch):
    monkeypatch.setenv("OMNISIFT_SECRET_KEY", Fernet.generate_key().decode())  # what every pod gets
    (application,) = serve_config["applications"]
    module, attribute = application["import_path"].split(":")
    builder = getattr(importlib.import_module(module), attribute)
    assert application["import_path"] == "services.app:app_builder"
    graph = deployment_graph(builder(application["args"]))
    assert set(graph) == {d["name"] for d in application["deployments"]}


def test_every_pod_gets_the_one_secret_key_for_camera_credentials(manifest):
    cluster = manifest["spec"]["rayClusterConfig"]
    pods = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    for pod in pods:
        (container,) = pod["template"]["spec"]["containers"]
        env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
        assert env["OMNISIFT_SECRET_KEY"] == {"name": "omnisift", "key": "secret-key"}


def test_the_head_serves_http_and_takes_no_gpu_replicas(manifest, serve_config):
    head = manifest["spec"]["rayClusterConfig"]["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0"
    assert head["rayStartParams"]["dashboard-host"] == "0.0.0.0"  # KubeRay deploys the config through it
    (container,) = head["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["serve"] == serve_config["http_options"]["port"]
    assert "nvidia.com/gpu" not in container["resources"]["limits"]


def test_gpu_workers_have_room_for_every_gpu_replica_the_config_scales_to(manifest, serve_config):
    (group,) = manifest["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    (container,) = group["template"]["spec"]["containers"]
    limits = container["resources"]["limits"]
    gpus_per_pod = int(limits["nvidia.com/gpu"])
    assert gpus_per_pod >= 1
    wanted = gpu_deployments(serve_config)
    assert wanted, "the Serve config puts no replica on a GPU"
    most = sum(d["autoscaling_config"]["max_replicas"] * d["ray_actor_options"]["num_gpus"] for d in wanted)
    assert group["maxReplicas"] * gpus_per_pod >= most
    assert all(int(limits["cpu"]) >= d["ray_actor_options"]["num_cpus"] for d in wanted)
    assert manifest["spec"]["rayClusterConfig"]["enableInTreeAutoscaling"] is True


def test_pods_run_as_non_root_with_the_models_read_only(manifest):
    for spec in pod_specs(manifest):
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
        claims = {v["name"]: v["persistentVolumeClaim"] for v in spec["volumes"]}
        assert claims["models"]["readOnly"] is True
        for container in spec["containers"]:
            mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
            assert mounts["/models"]["readOnly"] is True and "/data" in mounts


def test_the_ray_version_is_one_the_package_accepts(manifest):
    (ray_requirement,) = [r for r in map(Requirement, metadata.requires("omnisift")) if r.name == "ray"]
    assert manifest["spec"]["rayClusterConfig"]["rayVersion"] in ray_requirement.specifier
