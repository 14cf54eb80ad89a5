"""Settings of the audit service (see symbi_common.config for the shared sections)."""

from __future__ import annotations

from typing import ClassVar

from symbi_common.config import GrpcSection, ServiceSettings, TelemetrySection

__all__ = ["AuditSettings"]


class AuditSettings(ServiceSettings):
    service_name: ClassVar[str] = "audit"

    grpc: GrpcSection = GrpcSection(port=50054)
    telemetry: TelemetrySection = TelemetrySection(metrics_port=9467)
