"""The scheduler service process.

Its API answers UNIMPLEMENTED until the scheduler issue wires the domain code in: the process
itself (health, reflection, metrics, NATS, provisioning) is complete.
"""

from __future__ import annotations

from symbi.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from symbi_common.service import ApiShell
from symbi_scheduler.settings import SchedulerSettings

__all__ = ["build"]


def build(settings: SchedulerSettings) -> ApiShell:
    return ApiShell.of(scheduler_pb2, scheduler_pb2_grpc, "SchedulerService")
