"""The sandbox service process.

Its API answers UNIMPLEMENTED until the sandbox issue wires the domain code in: the process
itself (health, reflection, metrics, NATS, provisioning) is complete.
"""

from __future__ import annotations

from symbi.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc
from symbi_common.service import ApiShell
from symbi_sandbox.settings import SandboxSettings

__all__ = ["build"]


def build(settings: SandboxSettings) -> ApiShell:
    return ApiShell.of(sandbox_pb2, sandbox_pb2_grpc, "SandboxService")
