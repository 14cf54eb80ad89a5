"""Settings of the sandbox service (see symbi_common.config for the shared sections)."""

from __future__ import annotations

from typing import ClassVar

from symbi_common.config import GrpcSection, ServiceSettings, TelemetrySection

__all__ = ["SandboxSettings"]


class SandboxSettings(ServiceSettings):
    service_name: ClassVar[str] = "sandbox"
    principal_role: ClassVar[str] = "node"  # the sandbox speaks for its worker node

    grpc: GrpcSection = GrpcSection(port=50057)
    telemetry: TelemetrySection = TelemetrySection(metrics_port=9470)
