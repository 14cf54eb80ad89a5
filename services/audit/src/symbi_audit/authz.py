"""Who may call which AuditService method (ADR 0013).

Reading events (queries, exports, reports) is ``read_audit`` on ``AuditLog::"default"``;
archiving is ``administer`` on it. Checkpoints, proofs, verification and status reveal
hashes and sizes only, and are open to every admitted caller (anyone may verify the log).
"""

from __future__ import annotations

from symbi_common.grpc.authz import OPEN, ByPolicy, MethodRules, Resource

__all__ = ["AUDIT_LOG", "AUDIT_RULES"]

AUDIT_LOG = Resource("AuditLog", "default")

_READ = ByPolicy("read_audit", AUDIT_LOG)

AUDIT_RULES: MethodRules = {
    "Query": _READ,
    "QueryStream": _READ,
    "GetEvent": _READ,
    "Export": _READ,
    "Report": _READ,
    "GetCheckpoint": OPEN,
    "GetInclusionProof": OPEN,
    "GetConsistencyProof": OPEN,
    "Verify": OPEN,
    "GetStatus": OPEN,
    "Archive": ByPolicy("administer", AUDIT_LOG),
}
