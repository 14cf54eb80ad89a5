"""The context service process.

Its API answers UNIMPLEMENTED until the context issue wires the domain code in: the process
itself (health, reflection, metrics, NATS, provisioning) is complete.
"""

from __future__ import annotations

from symbi.context.v1 import context_pb2, context_pb2_grpc
from symbi_common.service import ApiShell
from symbi_context.settings import ContextSettings

__all__ = ["build"]


def build(settings: ContextSettings) -> ApiShell:
    return ApiShell.of(context_pb2, context_pb2_grpc, "ContextService")
