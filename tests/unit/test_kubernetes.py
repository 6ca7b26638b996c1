"""Item 10.7: the Kubernetes manifests render (``kubectl kustomize``, as ``kubectl apply -k``
would) into N replicas per service against external Kafka and MongoDB, with probes,
resources, disruption budgets and autoscaling on consumer lag bounded by the partitions."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from services.catalogue import SERVICES

KUSTOMIZATION = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, str], dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("kubectl is needed to render deploy/kubernetes")
        pytest.skip("kubectl is not installed")
    out = subprocess.run([kubectl, "kustomize", str(KUSTOMIZATION)], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out)}


def config(rendered) -> dict[str, str]:
    [found] = [d for (kind, _), d in rendered.items() if kind == "ConfigMap"]
    return found["data"]


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_runs_replicated_probed_bounded_and_non_root(rendered, service):
    deployment = rendered[("Deployment", f"escrow-{service}")]
    assert deployment["spec"]["replicas"] >= 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    [container] = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert {"requests", "limits"} <= set(container["resources"])
    assert container["image"].startswith("registry.example.com/escrow-platform:")
    sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
    assert sources >= {"escrow-secrets"} and any(s.startswith("escrow-config") for s in sources)
    assert rendered[("PodDisruptionBudget", f"escrow-{service}")]["spec"]["minAvailable"] >= 1
    assert ("Service", f"escrow-{service}") in rendered


@pytest.mark.parametrize("service", SERVICES)
def test_autoscaling_follows_consumer_lag_up_to_the_partitions(rendered, service):
    hpa = rendered[("HorizontalPodAutoscaler", f"escrow-{service}")]["spec"]
    [metric] = hpa["metrics"]
    assert metric["external"]["metric"]["name"] == "escrow_consumer_lag"
    assert metric["external"]["metric"]["selector"]["matchLabels"]["group"] == f"escrow-{service}"
    assert hpa["minReplicas"] >= 2
    assert hpa["maxReplicas"] <= int(config(rendered)["TOPIC_PARTITIONS"]), \
        "replicas beyond the partitions of a topic would idle"


def test_the_platform_points_at_external_kafka_and_a_mongodb_replica_set(rendered):
    data = config(rendered)
    assert "replicaSet=" in data["MONGODB_URL"] and data["ESCROW_ENV"] == "production"
    assert int(data["TOPIC_REPLICATION_FACTOR"]) >= 3
    assert not [d for (kind, _), d in rendered.items() if kind == "Secret"], \
        "secrets are created by the operator, never committed"


def test_the_console_runs_replicated_probed_and_non_root_and_proxies_to_the_services(rendered):
    deployment = rendered[("Deployment", "escrow-console")]
    assert deployment["spec"]["replicas"] >= 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    [container] = pod["containers"]
    assert container["command"] == ["python", "-m", "services.console"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert {"requests", "limits"} <= set(container["resources"])
    assert container["image"].startswith("registry.example.com/escrow-platform:")
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["HTTP_PORT"] == "8006"
    for service in SERVICES:  # each through its Service, on the port that Service serves
        [port] = rendered[("Service", f"escrow-{service}")]["spec"]["ports"]
        assert env[f"{service.upper()}_URL"] == f"http://escrow-{service}:{port['port']}"
    assert rendered[("PodDisruptionBudget", "escrow-console")]["spec"]["minAvailable"] >= 1
    assert rendered[("Service", "escrow-console")]["spec"]["ports"][0]["port"] == 8006
    assert rendered[("HorizontalPodAutoscaler", "escrow-console")]["spec"]["minReplicas"] >= 2
