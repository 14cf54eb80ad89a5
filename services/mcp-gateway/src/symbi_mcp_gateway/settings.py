"""Settings of the mcp-gateway service (see symbi_common.config for the shared sections)."""

from __future__ import annotations

from typing import ClassVar

from symbi_common.config import GrpcSection, ServiceSettings, TelemetrySection

__all__ = ["McpGatewaySettings"]


class McpGatewaySettings(ServiceSettings):
    service_name: ClassVar[str] = "mcp-gateway"

    grpc: GrpcSection = GrpcSection(port=50056)
    telemetry: TelemetrySection = TelemetrySection(metrics_port=9469)
