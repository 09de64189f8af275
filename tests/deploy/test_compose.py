"""docker-compose.yml: validated by a real Compose implementation (Debian's `docker-compose`,
whose `config` command checks the file against the Compose schema and resolves it without any
Docker engine), then held to what running the system needs: health checks, restart policies,
pinned images, traces to the collector, every topic created, Prometheus scraping every service.

`docker-compose` comes from Debian (`apt-get install docker-compose`); .ci/run installs it. If it
is missing these tests fail and say so: they never pass without having validated the file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import dockerfile
import pytest
import yaml

from contracts.topics import ALL_TOPICS
from tests.deploy.sampling import sampler_selected_by

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SERVICES = ("intake", "insight", "priority", "feedback")
REQUIRED_ENV = {"GT_INTAKE_VAULT_MASTER_KEY": "test-master-key",
                "GT_AUTH_JWT_SECRET": "test-secret-of-at-least-32-characters"}
RESTART_POLICIES = {"always", "unless-stopped", "on-failure"}
PINNED = re.compile(r"^[^:@\s]+(:[^:@\s]*\d[^:@\s]*)?(@sha256:[0-9a-f]{64})?$")


def docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        pytest.fail("docker-compose is not installed, so docker-compose.yml cannot be validated: "
                    "apt-get install docker-compose (Debian's package; .ci/run installs it)")
    return found


def run_config(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GT_", "COMPOSE_"))}
    return subprocess.run(
        [docker_compose(), "--project-directory", str(path.parent), "-f", str(path), "config"],
        capture_output=True, text=True, env=clean | env, timeout=120, check=False)


@cache
def resolved() -> dict[str, Any]:
    """The file as docker-compose resolved it (anchors merged, variables substituted)."""
    done = run_config(COMPOSE_FILE, REQUIRED_ENV)
    assert done.returncode == 0, f"docker-compose config refused the file:\n{done.stderr}"
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = resolved()["services"]
    return found


def one_shot_jobs() -> set[str]:
    """Services others wait for to complete (kafka-topics): they exit, so no health check."""
    return {name for s in services().values() for name, dep in s.get("depends_on", {}).items()
            if dep.get("condition") == "service_completed_successfully"}


def test_the_compose_file_is_valid() -> None:
    assert set(SERVICES) <= set(services())
    assert {"kafka", "postgres", "otel-collector", "jaeger", "prometheus"} <= set(services())


def test_the_validator_refuses_an_invalid_file(tmp_path: Path) -> None:
    broken = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    broken["services"]["intake"]["helthcheck"] = broken["services"]["intake"].pop("healthcheck",
                                                                                  None)
    (tmp_path / "docker-compose.yml").write_text(yaml.safe_dump(broken), encoding="utf-8")
    done = run_config(tmp_path / "docker-compose.yml", REQUIRED_ENV)
    assert done.returncode != 0 and "helthcheck" in done.stderr, done.stderr


@pytest.mark.parametrize("missing", sorted(REQUIRED_ENV))
def test_it_will_not_start_without_its_secrets(missing: str) -> None:
    done = run_config(COMPOSE_FILE, {k: v for k, v in REQUIRED_ENV.items() if k != missing})
    assert done.returncode != 0 and missing in done.stderr, done.stderr


def test_every_service_has_a_restart_policy_and_a_health_check() -> None:
    jobs = one_shot_jobs()
    assert jobs == {"kafka-topics"}
    for name, service in services().items():
        if name in jobs:
            assert service.get("restart") == "on-failure", name  # retried until it succeeds
            continue
        assert service.get("restart") in RESTART_POLICIES, f"{name}: restart policy"
        check = service.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name}: health check"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_every_image_is_pinned_to_a_version() -> None:
    for name, service in services().items():
        image = service.get("image")
        assert image, f"{name}: no image (a built service names its tag too)"
        assert PINNED.match(image) and ":" in image, f"{name}: {image} is not pinned"
        assert not image.endswith(":latest"), f"{name}: {image}"
        build = service.get("build")
        if build:  # and the images it is built from
            path = Path(build["context"]) / build.get("dockerfile", "Dockerfile")
            froms = [c.value for c in dockerfile.parse_file(str(path)) if c.cmd == "FROM"]
            stages = {f[2] for f in froms if len(f) == 3}
            for base in (f[0] for f in froms if f[0] not in stages):
                assert PINNED.match(base) and ":" in base and not base.endswith(":latest"), \
                    f"{path}: FROM {base} is not pinned"


def test_the_services_wait_for_their_infrastructure_and_check_readiness() -> None:
    for name in SERVICES:
        service = services()[name]
        depends = {k: v["condition"] for k, v in service["depends_on"].items()}
        assert depends["kafka"] == "service_healthy" and depends["postgres"] == "service_healthy"
        assert depends["kafka-topics"] == "service_completed_successfully"
        assert "/health/ready" in " ".join(service["healthcheck"]["test"])
        assert service["command"] == [name]
        env = service["environment"]
        database = urlparse(env["GT_DATABASE_URL"])
        assert database.hostname == "postgres" and database.path == f"/{name}"
        assert env["GT_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_one_database_per_service_is_created() -> None:
    sql = (ROOT / "deploy" / "postgres" / "init-databases.sql").read_text(encoding="utf-8")
    assert set(re.findall(r"CREATE DATABASE (\w+);", sql)) == set(SERVICES)
    mounts = services()["postgres"]["volumes"]
    assert any(str(v.get("source", v)).endswith("init-databases.sql") if isinstance(v, dict)
               else "init-databases.sql" in v for v in mounts)


def test_every_topic_is_created_before_the_services_start() -> None:
    job = services()["kafka-topics"]
    script = " ".join(job["command"]) if isinstance(job["command"], list) else job["command"]
    created = set(re.findall(r"\b[a-z]+\.[a-z]+\.v\d+\b", script))
    assert created == set(ALL_TOPICS)
    kafka = services()["kafka"]["environment"]
    assert "broker,controller" == kafka["KAFKA_PROCESS_ROLES"], "KRaft, no ZooKeeper"
    assert str(kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]) == "false"


def test_traces_go_to_the_collector_and_on_to_jaeger() -> None:
    for name in SERVICES:
        env = services()[name]["environment"]
        assert env["OTEL_TRACES_EXPORTER"] == "otlp"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    collector = services()["otel-collector"]
    [mount] = [v for v in collector["volumes"] if "otel-collector.yaml" in str(v)]
    config = yaml.safe_load((ROOT / "deploy" / "otel-collector.yaml").read_text(encoding="utf-8"))
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    defined = {kind: set(config.get(kind, {})) for kind in ("receivers", "processors",
                                                             "exporters", "connectors")}
    for pipeline, parts in config["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for part in parts.get(kind, []):
                assert part in defined[kind] | defined["connectors"], f"{pipeline}: {part}"
    assert set(config["service"]["extensions"]) <= set(config["extensions"])
    jaeger = config["exporters"]["otlp/jaeger"]["endpoint"]
    assert jaeger.split(":")[0] == "jaeger" and "jaeger" in services()
    assert "otlp/jaeger" in config["service"]["pipelines"]["traces"]["exporters"]
    assert any(p["published"] in (16686, "16686") for p in services()["jaeger"]["ports"]
               ) or "16686:16686" in str(services()["jaeger"]["ports"])
    assert "13133" in " ".join(collector["healthcheck"]["test"])
    assert mount


def test_every_trace_is_recorded_and_the_file_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SERVICES:
        env = services()[name]["environment"]
        assert sampler_selected_by(env, monkeypatch) == "parentbased_always_on", name


def test_prometheus_scrapes_every_service_and_the_collector() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text(encoding="utf-8"))
    targets = {t for job in config["scrape_configs"] for group in job["static_configs"]
               for t in group["targets"]}
    assert {f"{name}:8000" for name in SERVICES} <= targets
    assert "otel-collector:8889" in targets
    [job] = [j for j in config["scrape_configs"] if "intake:8000" in str(j)]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert any("prometheus.yml" in str(v) for v in services()["prometheus"]["volumes"])


def test_the_service_image_is_small_non_root_and_health_checked() -> None:
    lines = dockerfile.parse_file(str(ROOT / "deploy" / "Dockerfile"))
    stages = [i for i, line in enumerate(lines) if line.cmd == "FROM"]
    assert len(stages) >= 2, "multi-stage: the build tools stay in the build stage"
    final = lines[stages[-1]:]
    assert [c.value[0] for c in final if c.cmd == "COPY" and "--from=build" in c.flags]
    users = [c.value[0] for c in final if c.cmd == "USER"]
    assert users and users[-1] not in ("root", "0"), "runs as a non-root user"
    [health] = [c for c in final if c.cmd == "HEALTHCHECK"]
    assert "/health/ready" in " ".join(health.value)
    assert not [c for c in final if c.cmd == "RUN" and re.search(r"apt-get install|gcc", c.value[0])]
    ignore = (ROOT / "deploy" / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    assert "*" in ignore and "!eventcore/" in ignore  # only the sources: never the virtualenv
