"""Settings of the context service (see symbi_common.config for the shared sections)."""

from __future__ import annotations

from typing import ClassVar

from symbi_common.config import GrpcSection, ServiceSettings, TelemetrySection

__all__ = ["ContextSettings"]


class ContextSettings(ServiceSettings):
    service_name: ClassVar[str] = "context"

    grpc: GrpcSection = GrpcSection(port=50055)
    telemetry: TelemetrySection = TelemetrySection(metrics_port=9468)
