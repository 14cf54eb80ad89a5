"""symbi_audit: the audit service's domain core.

An append-only, tamper-evident log of audit events: a hash chain plus an RFC 6962 Merkle
tree with C2SP signed checkpoints, inclusion and consistency proofs, queries, exports, an
offline verifier, retention by verified archive, and compliance reports. Nothing here
imports grpc or nats; the service process (``app.py``, ``servicer.py``, ``events.py``)
wires :class:`AuditLog` to them.
"""

from symbi_audit.chain import GENESIS, chain_hash
from symbi_audit.checkpoint import Checkpoint, CheckpointPolicy, SignedCheckpoint
from symbi_audit.errors import NoteError, ProofError
from symbi_audit.event import (
    AuditEvent,
    canonical_json,
    sign_event,
    verify_event_signature,
)
from symbi_audit.export import ExportSummary, export_lines, export_to_file, write_export
from symbi_audit.ingest import IngestRecord, PublisherStatus, classify
from symbi_audit.log import ArchiveResult, AuditLog, EventAuthenticator, LogCheck
from symbi_audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    NodeId,
    NodeReader,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from symbi_audit.note import NoteSigner, NoteVerifier, open_note, sign_note
from symbi_audit.ports import Clock, PublisherKeyring, SystemClock
from symbi_audit.proof import ConsistencyProof, InclusionProof
from symbi_audit.query import EventFilter, LogEntry, Page
from symbi_audit.report import ComplianceReport, ReportItem, ReportRules, build_report
from symbi_audit.store import AuditStore, RangeCheck
from symbi_audit.verify import Problem, ProblemKind, VerifyResult, verify_export, verify_export_file

__all__ = [
    "EMPTY_ROOT",
    "GENESIS",
    "ArchiveResult",
    "AuditEvent",
    "AuditLog",
    "AuditStore",
    "Checkpoint",
    "CheckpointPolicy",
    "Clock",
    "CompactRange",
    "ComplianceReport",
    "ConsistencyProof",
    "EventAuthenticator",
    "EventFilter",
    "ExportSummary",
    "InclusionProof",
    "IngestRecord",
    "LogCheck",
    "LogEntry",
    "NodeId",
    "NodeReader",
    "NoteError",
    "NoteSigner",
    "NoteVerifier",
    "Page",
    "Problem",
    "ProblemKind",
    "ProofError",
    "PublisherKeyring",
    "PublisherStatus",
    "RangeCheck",
    "ReportItem",
    "ReportRules",
    "SignedCheckpoint",
    "SystemClock",
    "VerifyResult",
    "build_report",
    "canonical_json",
    "chain_hash",
    "classify",
    "export_lines",
    "export_to_file",
    "leaf_hash",
    "node_hash",
    "open_note",
    "sign_event",
    "sign_note",
    "verify_consistency",
    "verify_event_signature",
    "verify_export",
    "verify_export_file",
    "verify_inclusion",
    "write_export",
]
