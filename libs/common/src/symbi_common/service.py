"""Building blocks for service processes: gRPC bindings from generated modules."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import grpc

from symbi_common.grpc.server import ServiceBinding

__all__ = ["binding"]


def binding(
    pb2: ModuleType, service: str, add: Callable[[Any, grpc.aio.Server], None], servicer: object
) -> ServiceBinding:
    """A :class:`ServiceBinding` from a generated module: ``binding(policy_pb2, "PolicyService",
    policy_pb2_grpc.add_PolicyServiceServicer_to_server, servicer)``."""
    full_name = pb2.DESCRIPTOR.services_by_name[service].full_name
    return ServiceBinding(full_name, lambda server: add(servicer, server))
