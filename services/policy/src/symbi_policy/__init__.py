"""Symbi's policy domain: Cedar policies as code, decisions in microseconds, hot reload.

The public surface (private modules re-exported here):

* :class:`PolicyEngine` decides :class:`AuthzRequest` s into :class:`Allow`,
  :class:`Deny` or :class:`AllowWithConditions`, against an :class:`EngineState` it swaps
  atomically (``prepare`` / ``install`` / ``apply``).
* :class:`PolicyStore` validates writes into a :class:`PolicySource` (the port; the service
  keeps it in JetStream KV, :mod:`symbi_policy.kv_source`; :class:`InMemoryPolicySource`
  is in process).
* :class:`PolicyReloader` follows the source and keeps the engine's state current.
* :class:`AuditSink` is the port decisions are audited through (:class:`QueueAuditSink`
  is a bounded in-process buffer).
* :class:`PolicyCompiler` checks Cedar documents; errors are :class:`PolicyValidationError`
  with :class:`PolicyProblem` s naming document, policy, line and column.
"""

from symbi_policy.annotations import CONDITION_NAMES, Condition, RateLimit
from symbi_policy.audit import (
    EVENT_DECISION,
    EVENT_ENGINE_FAILURE,
    EVENT_SET_INSTALLED,
    EVENT_SET_REJECTED,
    AuditSink,
    PolicyAuditEvent,
    QueueAuditSink,
)
from symbi_policy.compiler import CompiledDocument, CompiledPolicy, PolicyCompiler
from symbi_policy.decision import Allow, AllowWithConditions, Decision, Deny, decision_to_dict
from symbi_policy.engine import (
    EngineConfig,
    EngineState,
    EngineStats,
    EngineStatus,
    Evaluation,
    PolicyEngine,
    Rejection,
)
from symbi_policy.entities import EntityUid
from symbi_policy.errors import PolicyProblem, PolicyValidationError
from symbi_policy.reload import PolicyReloader
from symbi_policy.request import AuthzRequest
from symbi_policy.source import (
    EntitiesDocument,
    EntitiesPut,
    EntityDeleted,
    EntityPut,
    InMemoryPolicySource,
    PolicyDeleted,
    PolicyDocument,
    PolicyPut,
    PolicySource,
    SourceEvent,
    SourceSnapshot,
)
from symbi_policy.store import PolicyStore

__all__ = [
    "CONDITION_NAMES",
    "EVENT_DECISION",
    "EVENT_ENGINE_FAILURE",
    "EVENT_SET_INSTALLED",
    "EVENT_SET_REJECTED",
    "Allow",
    "AllowWithConditions",
    "AuditSink",
    "AuthzRequest",
    "CompiledDocument",
    "CompiledPolicy",
    "Condition",
    "Decision",
    "Deny",
    "EngineConfig",
    "EngineState",
    "EngineStats",
    "EngineStatus",
    "EntitiesDocument",
    "EntitiesPut",
    "EntityDeleted",
    "EntityPut",
    "EntityUid",
    "Evaluation",
    "InMemoryPolicySource",
    "PolicyAuditEvent",
    "PolicyCompiler",
    "PolicyDeleted",
    "PolicyDocument",
    "PolicyEngine",
    "PolicyProblem",
    "PolicyPut",
    "PolicyReloader",
    "PolicySource",
    "PolicyStore",
    "PolicyValidationError",
    "QueueAuditSink",
    "RateLimit",
    "Rejection",
    "SourceEvent",
    "SourceSnapshot",
    "decision_to_dict",
]
