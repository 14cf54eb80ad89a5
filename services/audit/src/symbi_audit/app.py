"""The audit service process.

Its API answers UNIMPLEMENTED until the audit issue wires the domain code in: the process
itself (health, reflection, metrics, NATS, provisioning) is complete.
"""

from __future__ import annotations

from symbi.audit.v1 import audit_pb2, audit_pb2_grpc
from symbi_audit.settings import AuditSettings
from symbi_common.service import ApiShell

__all__ = ["build"]


def build(settings: AuditSettings) -> ApiShell:
    return ApiShell.of(audit_pb2, audit_pb2_grpc, "AuditService")
