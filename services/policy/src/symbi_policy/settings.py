"""Settings of the policy service (see symbi_common.config for the shared sections).

``[policy]`` in the TOML file, or ``SYMBI_POLICY__<KEY>`` in the environment.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from symbi_common.config import GrpcSection, Section, ServiceSettings, TelemetrySection
from symbi_common.crypto.identity import PRINCIPAL_ID_RE
from symbi_policy.engine import EngineConfig

__all__ = ["PolicySection", "PolicySettings"]


class PolicySection(Section):
    """``[policy]``: decisions, audit, the policy bucket and the API's limits."""

    #: Audit every allow too (denies and fail-closed decisions are always audited).
    audit_allows: bool = False
    #: With gRPC mTLS on, install ``platform/grpc`` (if absent): services and users in
    #: ``Role::"operators"`` may call every gRPC method (ADR 0013).
    install_grpc_policy: bool = True
    #: With gRPC mTLS on, users made members of ``Role::"operators"`` at start when they are
    #: not known entities yet (an existing ``User`` entity, perhaps edited, is kept). ``symbi
    #: up --tls`` names its local operator here (ADR 0012 addendum).
    operators: tuple[str, ...] = ()
    #: Decisions remembered per policy-set version (0 turns the cache off).
    decision_cache_size: int = Field(65_536, ge=0, le=10_000_000)
    #: Merged entity sets remembered for requests that carry their own entities.
    request_entities_cache_size: int = Field(256, ge=0, le=100_000)
    #: Compiled documents remembered by the compiler (a write is validated on the loop and
    #: then built from this cache). Builds only compile documents that changed.
    compiler_cache_size: int = Field(4_096, ge=16, le=1_000_000)
    #: Principal partitions kept parsed (one Cedar handle per principal that has
    #: ``principal ==`` policies, e.g. an agent's DSL policies: ~25 KB each). A decision
    #: about a principal whose handle is not kept builds it (~0.1-0.2 ms for 7 policies).
    principal_set_cache_size: int = Field(8_192, ge=0, le=1_000_000)
    #: One evaluation slower than this is a fail-closed deny.
    max_evaluation_ms: float = Field(250.0, gt=0, le=60_000)
    #: Most requests in one EvaluateBatch.
    max_batch: int = Field(1_000, ge=1, le=100_000)
    #: Deny when a policy errors while evaluating (Cedar would skip it).
    fail_on_policy_errors: bool = True
    #: Deny when the resource is not a known entity (the principal always must be).
    require_known_resource: bool = True
    #: Check each request against the schema (context shape, action applies to types).
    validate_requests: bool = True
    #: Audit events waiting for delivery; when full, allows that must be audited are denied.
    audit_queue_size: int = Field(10_000, ge=1, le=10_000_000)
    #: Audit events published at once (each is one acknowledged JetStream publish).
    audit_concurrency: int = Field(64, ge=1, le=4096)
    #: How long a decision request waits for room in a full audit buffer (backpressure)
    #: before it is decided anyway (then unaudited denies are logged and counted, and allows
    #: that must be audited are denied). Also bounded by the request's own deadline.
    audit_wait_s: float = Field(2.0, ge=0, le=300)
    #: How long one audit event is retried before it is given up (logged and counted).
    audit_retry_s: float = Field(30.0, gt=0, le=3600)
    #: Revisions kept per key of the policy bucket (JetStream allows at most 64).
    bucket_history: int = Field(16, ge=16, le=64)
    #: Deadline of each policy-bucket operation.
    store_timeout_s: float = Field(5.0, gt=0, le=300)
    #: How long start-up waits for the first policy set (compiling 10,000 documents takes
    #: ~10-30 s on 2 cores) before the process gives up (exit 1).
    first_build_timeout_s: float = Field(300.0, gt=0, le=3600)
    #: How long a write waits for this replica to have built the change before answering.
    reload_wait_s: float = Field(2.0, ge=0, le=60)
    #: ListPolicies page size when the request gives none, and the most it may ask for.
    list_page_size: int = Field(100, ge=1, le=10_000)
    list_max_page_size: int = Field(1_000, ge=1, le=100_000)
    #: Most entities in one PutEntities / DeleteEntities.
    max_entities_per_request: int = Field(10_000, ge=1, le=1_000_000)
    #: Deadline of publishing a PolicyChanged announcement or a change's audit event.
    announce_timeout_s: float = Field(5.0, gt=0, le=300)

    @field_validator("operators")
    @classmethod
    def _check_operators(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for operator in value:
            if not PRINCIPAL_ID_RE.match(operator):
                raise ValueError(f"operators: {operator!r} is not a principal id")
        return value

    @model_validator(mode="after")
    def _check_pages(self) -> PolicySection:
        if self.list_page_size > self.list_max_page_size:
            raise ValueError("list_page_size must not be above list_max_page_size")
        return self

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            audit_allows=self.audit_allows,
            cache_size=self.decision_cache_size,
            request_entities_cache_size=self.request_entities_cache_size,
            fail_on_policy_errors=self.fail_on_policy_errors,
            require_known_resource=self.require_known_resource,
            validate_requests=self.validate_requests,
            max_evaluation_seconds=self.max_evaluation_ms / 1000,
            max_batch=self.max_batch,
            principal_sets=self.principal_set_cache_size,
        )


class PolicySettings(ServiceSettings):
    service_name: ClassVar[str] = "policy"

    grpc: GrpcSection = GrpcSection(port=50053)
    telemetry: TelemetrySection = TelemetrySection(metrics_port=9466)
    policy: PolicySection = PolicySection()
