"""Building blocks for service processes: gRPC bindings from generated modules."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import grpc

from symbi_common.grpc.authz import MethodRules, check_rules
from symbi_common.grpc.server import ServiceBinding

__all__ = ["binding"]


def binding(
    pb2: ModuleType,
    service: str,
    add: Callable[[Any, grpc.aio.Server], None],
    servicer: object,
    *,
    rules: MethodRules | None = None,
) -> ServiceBinding:
    """A :class:`ServiceBinding` from a generated module: ``binding(policy_pb2, "PolicyService",
    policy_pb2_grpc.add_PolicyServiceServicer_to_server, servicer, rules=POLICY_RULES)``.

    ``rules`` (:mod:`symbi_common.grpc.authz`) must decide every method of the service:
    ValueError otherwise, so an RPC added without a decision fails at start-up."""
    descriptor = pb2.DESCRIPTOR.services_by_name[service]
    if rules is not None:
        check_rules(descriptor, rules)
    return ServiceBinding(descriptor.full_name, lambda server: add(servicer, server), rules)
