"""Item 10.6: the compose stack and the image, checked without a Docker engine: every
service healthy only when ready and started only after what it needs, images pinned,
secrets only from the env file, files referenced present, MongoDB a replica set, topics
from an init job, the image running as a non-root user."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from services.catalogue import SERVICES

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
SERVICES_OF_COMPOSE = COMPOSE["services"]
TOP_LEVEL = {"name", "services", "volumes", "networks", "secrets", "configs"}
SERVICE_KEYS = {"image", "build", "command", "entrypoint", "environment", "env_file", "ports",
                "volumes", "depends_on", "healthcheck", "restart", "hostname", "profiles", "secrets"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
PINNED = re.compile(r"^[\w./-]+(:[\w.-]*\d[\w.-]*|@sha256:[0-9a-f]{64})$")


def test_the_compose_file_has_the_shape_of_the_compose_specification():
    # x-* are extension fields (merged into services through YAML anchors)
    assert {k for k in COMPOSE if not k.startswith("x-")} <= TOP_LEVEL
    for name, service in SERVICES_OF_COMPOSE.items():
        assert set(service) <= SERVICE_KEYS, (name, set(service) - SERVICE_KEYS)
        assert "image" in service or "build" in service, name
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in SERVICES_OF_COMPOSE and rule["condition"] in CONDITIONS, (name, dependency)
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source in COMPOSE.get("volumes", {}) or (DEPLOY / source).exists(), (name, source)


@pytest.mark.parametrize("name", SERVICES)
def test_each_platform_service_is_healthy_when_ready_and_waits_for_its_dependencies(name):
    service = SERVICES_OF_COMPOSE[name]
    assert "/health/ready" in " ".join(service["healthcheck"]["test"])
    assert f"127.0.0.1:{service['environment']['HTTP_PORT']}" in " ".join(service["healthcheck"]["test"])
    depends = service["depends_on"]
    assert {d: depends[d]["condition"] for d in ("kafka", "mongo", "mailpit")} == \
        dict.fromkeys(("kafka", "mongo", "mailpit"), "service_healthy")
    assert depends["topics"]["condition"] == "service_completed_successfully"


def test_the_console_is_healthy_when_ready_and_starts_once_the_five_services_are_healthy():
    console = SERVICES_OF_COMPOSE["console"]
    assert console["command"] == ["python", "-m", "services.console"]
    assert "127.0.0.1:8006/health/ready" in " ".join(console["healthcheck"]["test"])
    assert {name: rule["condition"] for name, rule in console["depends_on"].items()} == \
        dict.fromkeys(SERVICES, "service_healthy")
    assert console["env_file"] == [{"path": ".env", "required": True}]
    for name in SERVICES:  # its proxy reaches each service where compose serves it
        port = SERVICES_OF_COMPOSE[name]["environment"]["HTTP_PORT"]
        assert console["environment"][f"{name.upper()}_URL"] == f"http://{name}:{port}"


def test_every_image_is_pinned_and_every_long_running_server_has_a_healthcheck():
    for name, service in SERVICES_OF_COMPOSE.items():
        if "build" not in service:
            assert PINNED.match(service["image"]), (name, service["image"])
            assert ":latest" not in service["image"]
        if name not in ("topics",) and not service.get("profiles"):
            assert "healthcheck" in service, name


def test_no_secret_is_written_in_the_compose_file_and_the_env_file_is_required():
    text = (DEPLOY / "docker-compose.yml").read_text()
    for secret in ("AUTH_SECRET", "PAYMENT_DATA_KEY", "BANK_WEBHOOK_KEYS"):
        assert f"{secret}:" not in text and f"{secret}=" not in text
    for name in SERVICES:
        assert SERVICES_OF_COMPOSE[name]["env_file"] == [{"path": ".env", "required": True}]
    example = dict(line.split("=", 1) for line in (DEPLOY / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert example["ESCROW_ENV"] == "production"
    assert all(example[s] == "" for s in ("AUTH_SECRET", "PAYMENT_DATA_KEY", "BANK_WEBHOOK_KEYS"))


def test_mongodb_is_a_replica_set_and_topics_come_from_an_init_job():
    assert "--replSet" in SERVICES_OF_COMPOSE["mongo"]["command"]
    assert "replicaSet=" in SERVICES_OF_COMPOSE["order"]["environment"]["MONGODB_URL"]
    topics = SERVICES_OF_COMPOSE["topics"]
    script = " ".join(topics["command"])
    assert "--partitions" in script and "--replication-factor" in script and "retention.ms" in script
    assert {"TOPIC_PARTITIONS", "TOPIC_REPLICATION_FACTOR", "DEAD_LETTER_RETENTION_MS"} <= set(topics["environment"])
    assert SERVICES_OF_COMPOSE["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_the_observability_profile_brings_collector_prometheus_and_grafana():
    profiled = {n for n, s in SERVICES_OF_COMPOSE.items() if "observability" in s.get("profiles", [])}
    assert profiled == {"otel-collector", "prometheus", "grafana"}


def test_the_image_is_pinned_copies_what_exists_and_runs_as_a_non_root_user():
    dockerfile = (DEPLOY / "Dockerfile").read_text().splitlines()
    instructions = [line.split(None, 1) for line in dockerfile if line and not line.startswith("#")
                    and not line.startswith(" ")]
    froms = [rest for op, rest in instructions if op == "FROM"]
    assert froms and all(PINNED.match(f.split()[0]) for f in froms), froms
    for op, rest in instructions:
        if op == "COPY" and "--from" not in rest:
            for source in rest.split()[:-1]:
                assert (DEPLOY.parent / source).exists(), source
    users = [rest.strip() for op, rest in instructions if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert re.search(r'uv==\d', "\n".join(dockerfile)), "uv is pinned"
