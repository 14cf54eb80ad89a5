"""Settings of the scheduler service (see symbi_common.config for the shared sections)."""

from __future__ import annotations

from typing import ClassVar

from symbi_common.config import GrpcSection, ServiceSettings, TelemetrySection

__all__ = ["SchedulerSettings"]


class SchedulerSettings(ServiceSettings):
    service_name: ClassVar[str] = "scheduler"

    grpc: GrpcSection = GrpcSection(port=50051)
    telemetry: TelemetrySection = TelemetrySection(metrics_port=9464)
