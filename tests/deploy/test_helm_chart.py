"""The Helm chart: real Helm lint and render (helm-python-sdk), every manifest validated
against the Kubernetes schemas, and the rendered config accepted by every service."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from symbi_common.config import ServiceSettings, load_settings
from symbi_common.errors import ConfigError
from symbi_common.launcher import SERVICES, module_for

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "symbi"
KUBERNETES_VERSIONS = ("1.30.0", "1.33.0")


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    chart = helm.Chart.load(str(CHART))
    try:
        rendered = chart.render(values or {}, name="symbi", namespace="agents")
    finally:
        chart.close()
    documents = []
    for name, text in sorted(rendered.items()):
        if name.endswith(".yaml"):
            documents.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return documents


def test_lint_is_clean() -> None:
    result = helm.lint(str(CHART), strict=True)
    assert result["errors"] == []
    assert [m for m in result["messages"] if m["severity"] > 1] == []


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_kubernetes(version: str) -> None:
    documents = render()
    kinds = sorted(doc["kind"] for doc in documents)
    assert kinds.count("StatefulSet") == 6  # every service but the sandbox
    assert kinds.count("DaemonSet") == 1
    for doc in documents:
        kubernetes_validate.validate(doc, version, strict=True)


def test_pods_are_hardened() -> None:
    for doc in render():
        if doc["kind"] not in ("StatefulSet", "DaemonSet"):
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
        if doc["kind"] == "StatefulSet":
            assert pod["securityContext"]["runAsNonRoot"] is True


def rendered_config(values: dict[str, Any] | None = None) -> str:
    config_map = next(doc for doc in render(values) if doc["kind"] == "ConfigMap")
    return str(config_map["data"]["config.toml"])


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_accepts_the_rendered_config(
    service: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        rendered_config(
            {"config": {"log_level": "debug", "security": {"default_sandbox_tier": "docker"}}}
        )
    )
    monkeypatch.setenv("SYMBI_CONFIG_PATH", str(path))
    settings_module = importlib.import_module(f"{module_for(service)}.settings")
    settings_cls = next(
        value
        for name, value in vars(settings_module).items()
        if name.endswith("Settings") and getattr(value, "service_name", None) == service
    )
    settings = load_settings(settings_cls)
    assert settings.nats.url == "nats://nats:4222"
    assert settings.nats.replicas == 3
    assert settings.security.default_sandbox_tier == "docker"
    assert str(settings.keys_dir) == "/etc/symbi/keys"
    assert settings.log_level == "debug"
    # gRPC listens on the pod network with mTLS from the mounted Secret.
    assert settings.grpc.host == "0.0.0.0"
    assert settings.grpc.mtls
    assert str(settings.grpc.tls_cert_file) == "/etc/symbi/tls/tls.crt"
    assert str(settings.grpc.tls_key_file) == "/etc/symbi/tls/tls.key"
    assert str(settings.grpc.tls_ca_file) == "/etc/symbi/tls/ca.crt"
    assert settings.grpc.allow_insecure is False


def workloads(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [doc for doc in render(values) if doc["kind"] in ("StatefulSet", "DaemonSet")]


def test_every_pod_mounts_the_grpc_tls_secret_and_probes_over_mtls() -> None:
    documents = workloads({"grpc": {"tls": {"secretName": "my-grpc-tls"}}})
    assert len(documents) == 7
    for doc in documents:
        pod = doc["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["grpc-tls"]["secret"]["secretName"] == "my-grpc-tls"
        container = pod["containers"][0]
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["grpc-tls"] == {
            "name": "grpc-tls",
            "mountPath": "/etc/symbi/tls",
            "readOnly": True,
        }
        # Kubernetes' gRPC probe cannot speak TLS: the service's own certificate asks.
        probes = [container["readinessProbe"]]
        if doc["kind"] == "StatefulSet":
            probes.append(container["livenessProbe"])
        for probe in probes:
            assert "grpc" not in probe
            assert probe["exec"]["command"] == ["python", "-m", "symbi_common.grpc.probe"]


def test_plaintext_grpc_needs_the_explicit_escape_hatch() -> None:
    chart = helm.Chart.load(str(CHART))
    try:
        with pytest.raises(helm.HelmError, match="allowInsecure"):
            chart.render({"grpc": {"tls": {"enabled": False}}}, name="symbi", namespace="agents")
    finally:
        chart.close()
    values = {"grpc": {"tls": {"enabled": False}, "allowInsecure": True}}
    config = rendered_config(values)
    assert "allow_insecure = true" in config
    assert "tls_cert_file" not in config
    for doc in workloads(values):
        pod = doc["spec"]["template"]["spec"]
        assert "grpc-tls" not in {v["name"] for v in pod["volumes"]}
        assert "grpc" in pod["containers"][0]["readinessProbe"]
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def test_a_rendered_config_without_tls_or_escape_hatch_stops_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The chart never renders this; a hand-edited config map would, and the service refuses.
    config = rendered_config({"grpc": {"tls": {"enabled": False}, "allowInsecure": True}})
    path = tmp_path / "config.toml"
    path.write_text(config.replace("allow_insecure = true\n", ""))
    monkeypatch.setenv("SYMBI_CONFIG_PATH", str(path))
    with pytest.raises(ConfigError, match=r"gRPC would listen on 0\.0\.0\.0 without TLS"):
        load_settings(ServiceSettings)


def test_values_are_checked_by_the_schema() -> None:
    chart = helm.Chart.load(str(CHART))
    try:
        with pytest.raises(helm.HelmError, match="url"):
            chart.render({"nats": {"url": "http://not-nats"}}, name="symbi", namespace="agents")
    finally:
        chart.close()


def test_services_can_be_switched_off_and_monitoring_on() -> None:
    documents = render(
        {
            "services": {"context": {"enabled": False}},
            "telemetry": {"serviceMonitor": {"enabled": True}},
        }
    )
    names = {doc["metadata"]["name"] for doc in documents if doc["kind"] == "StatefulSet"}
    assert "symbi-context" not in names
    assert "symbi-policy" in names
    assert any(doc["kind"] == "ServiceMonitor" for doc in documents)
