"""Building blocks for service processes: gRPC bindings and the API shell.

:class:`ApiShell` is a complete service process (health, reflection, metrics, NATS,
provisioning) whose API methods answer UNIMPLEMENTED. It is what a service runs until its own
implementation lands, so that the platform can be started and probed as a whole; it claims
nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import grpc

from symbi_common.grpc.server import ServiceBinding
from symbi_common.jetstream.spec import BucketSpec, StreamSpec
from symbi_common.runner import Runtime

__all__ = ["ApiShell", "binding"]


def binding(
    pb2: ModuleType, service: str, add: Callable[[Any, grpc.aio.Server], None], servicer: object
) -> ServiceBinding:
    """A :class:`ServiceBinding` from a generated module: ``binding(policy_pb2, "PolicyService",
    policy_pb2_grpc.add_PolicyServiceServicer_to_server, servicer)``."""
    full_name = pb2.DESCRIPTOR.services_by_name[service].full_name
    return ServiceBinding(full_name, lambda server: add(servicer, server))


class ApiShell:
    """A service process with no API implementation yet (every method: UNIMPLEMENTED)."""

    def __init__(self, bindings: Sequence[ServiceBinding]) -> None:
        self._bindings = tuple(bindings)

    @classmethod
    def of(cls, pb2: ModuleType, pb2_grpc: ModuleType, service: str) -> ApiShell:
        """The shell of one generated service: its base servicer answers UNIMPLEMENTED."""
        servicer = getattr(pb2_grpc, f"{service}Servicer")()
        add = getattr(pb2_grpc, f"add_{service}Servicer_to_server")
        return cls([binding(pb2, service, add, servicer)])

    def grpc_bindings(self) -> Sequence[ServiceBinding]:
        return self._bindings

    def streams(self) -> Sequence[StreamSpec]:
        return ()

    def buckets(self) -> Sequence[BucketSpec]:
        return ()

    async def start(self, runtime: Runtime) -> None:
        return None

    async def close(self) -> None:
        return None
