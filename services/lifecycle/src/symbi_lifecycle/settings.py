"""Settings of the lifecycle service (see symbi_common.config for the shared sections)."""

from __future__ import annotations

from typing import ClassVar

from symbi_common.config import GrpcSection, ServiceSettings, TelemetrySection

__all__ = ["LifecycleSettings"]


class LifecycleSettings(ServiceSettings):
    service_name: ClassVar[str] = "lifecycle"

    grpc: GrpcSection = GrpcSection(port=50052)
    telemetry: TelemetrySection = TelemetrySection(metrics_port=9465)
