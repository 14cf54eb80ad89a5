"""Settings of the policy service (see symbi_common.config for the shared sections)."""

from __future__ import annotations

from typing import ClassVar

from symbi_common.config import GrpcSection, ServiceSettings, TelemetrySection

__all__ = ["PolicySettings"]


class PolicySettings(ServiceSettings):
    service_name: ClassVar[str] = "policy"

    grpc: GrpcSection = GrpcSection(port=50053)
    telemetry: TelemetrySection = TelemetrySection(metrics_port=9466)
