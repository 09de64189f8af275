"""The Kubernetes manifests: rendered with kustomize and validated against the Kubernetes API
schema of a pinned version (kubernetes-validate, strict: unknown fields are errors), then held to
what operating the system needs (probes, resources, security, settings, autoscaling)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.kustomize import Resource, build, key
from tests.deploy.sampling import sampler_selected_by

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.31.0"  # the oldest Kubernetes these manifests are promised to work on
FOLDERS = {"base": K8S / "base", "production": K8S / "overlays" / "production"}
SERVICES = ("intake", "insight", "priority", "feedback")
CONSUMERS = ("insight", "priority", "feedback")
#: Every journey traced in the base; one in ten, each whole, in production.
SAMPLERS = {"base": "parentbased_always_on", "production": "parentbased_traceidratio 0.1"}


def rendered(which: str) -> list[Resource]:
    return build(FOLDERS[which])


def by_key(resources: list[Resource]) -> dict[tuple[str, str], Resource]:
    return {key(r): r for r in resources}


def container_of(deployment: Resource) -> dict[str, Any]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    found: dict[str, Any] = container
    return found


@pytest.mark.parametrize("which", sorted(FOLDERS))
def test_every_rendered_document_is_valid_for_the_pinned_kubernetes_version(which: str) -> None:
    resources = rendered(which)
    assert resources, "nothing rendered"
    problems = []
    for resource in resources:
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{key(resource)}: {exc.message} at {list(exc.path)}")
    assert not problems, "\n".join(problems)


def test_the_validator_refuses_what_kubernetes_would_refuse() -> None:
    deployment = by_key(rendered("base"))["Deployment", "intake"]
    container_of(deployment)["readinessProbe"]["httpGet"]["paht"] = "/typo"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.skipif(shutil.which("kubectl") is None,
                    reason="kubectl not installed: the Python renderer alone is checked")
@pytest.mark.parametrize("which", sorted(FOLDERS))
def test_the_python_renderer_agrees_with_kubectl_kustomize(which: str) -> None:
    out = subprocess.run(["kubectl", "kustomize", str(FOLDERS[which])], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    assert by_key(rendered(which)) == by_key(list(yaml.safe_load_all(out)))


@pytest.mark.parametrize("which", sorted(FOLDERS))
def test_each_service_has_a_deployment_a_service_and_an_autoscaler(which: str) -> None:
    resources = by_key(rendered(which))
    for name in SERVICES:
        deployment = resources["Deployment", name]
        assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items()
        service = resources["Service", name]
        assert service["spec"]["selector"] == selector
        assert service["spec"]["ports"][0]["targetPort"] == "http"
        hpa = resources["HorizontalPodAutoscaler", name]
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                 "name": name}
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_consumers_never_scale_past_the_partitions_they_can_use() -> None:
    for which in FOLDERS:
        resources = by_key(rendered(which))
        partitions = int(resources["ConfigMap", "golden-thread"]["data"]["GT_TOPIC_PARTITIONS"])
        for name in CONSUMERS:
            assert resources["HorizontalPodAutoscaler", name]["spec"]["maxReplicas"] <= partitions


@pytest.mark.parametrize("which", sorted(FOLDERS))
def test_containers_are_probed_bounded_and_locked_down(which: str) -> None:
    resources = by_key(rendered(which))
    for name in SERVICES:
        pod = resources["Deployment", name]["spec"]["template"]["spec"]
        container = container_of(resources["Deployment", name])
        assert container["args"] == [name]
        assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert "memory" in container["resources"]["limits"]
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True and pod["securityContext"]["runAsNonRoot"] is True
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        image = container["image"]
        assert ":" in image and not image.endswith((":latest", ":")), image


@pytest.mark.parametrize("which", sorted(FOLDERS))
def test_settings_come_from_the_config_map_and_secrets(which: str) -> None:
    resources = by_key(rendered(which))
    config = resources["ConfigMap", "golden-thread"]["data"]
    assert config["OTEL_TRACES_EXPORTER"] == "otlp"
    assert config["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":4318")
    assert all(k.startswith(("GT_", "OTEL_")) for k in config)
    assert not any(word in k for k in config for word in ("SECRET", "PASSWORD", "KEY", "TOKEN"))
    for name in SERVICES:
        sources = container_of(resources["Deployment", name])["envFrom"]
        assert {"configMapRef": {"name": "golden-thread"}} in sources
        assert {"secretRef": {"name": "golden-thread-auth"}} in sources
        assert {"secretRef": {"name": f"golden-thread-{name}"}} in sources
    assert not [k for k in resources if k[0] == "Secret"], "secrets are created, not committed"


@pytest.mark.parametrize("which", sorted(FOLDERS))
def test_trace_sampling_is_named_and_valid(which: str, monkeypatch: pytest.MonkeyPatch) -> None:
    config = by_key(rendered(which))["ConfigMap", "golden-thread"]["data"]
    assert sampler_selected_by(config, monkeypatch) == SAMPLERS[which]


def test_the_production_overlay_names_a_namespace_and_a_registry_image() -> None:
    for resource in rendered("production"):
        assert resource["metadata"]["namespace"] == "golden-thread"
    deployments = [r for r in rendered("production") if r["kind"] == "Deployment"]
    assert {container_of(d)["image"] for d in deployments} == {
        "registry.example.org/golden-thread/golden-thread:0.1.0"}
    intake = by_key(rendered("production"))["HorizontalPodAutoscaler", "intake"]
    assert intake["spec"]["minReplicas"] >= 2
