"""The policy service process.

Its API answers UNIMPLEMENTED until the policy issue wires the domain code in: the process
itself (health, reflection, metrics, NATS, provisioning) is complete.
"""

from __future__ import annotations

from symbi.policy.v1 import policy_pb2, policy_pb2_grpc
from symbi_common.service import ApiShell
from symbi_policy.settings import PolicySettings

__all__ = ["build"]


def build(settings: PolicySettings) -> ApiShell:
    return ApiShell.of(policy_pb2, policy_pb2_grpc, "PolicyService")
