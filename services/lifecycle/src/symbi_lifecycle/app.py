"""The lifecycle service process.

Its API answers UNIMPLEMENTED until the lifecycle issue wires the domain code in: the process
itself (health, reflection, metrics, NATS, provisioning) is complete.
"""

from __future__ import annotations

from symbi.lifecycle.v1 import lifecycle_pb2, lifecycle_pb2_grpc
from symbi_common.service import ApiShell
from symbi_lifecycle.settings import LifecycleSettings

__all__ = ["build"]


def build(settings: LifecycleSettings) -> ApiShell:
    return ApiShell.of(lifecycle_pb2, lifecycle_pb2_grpc, "LifecycleService")
