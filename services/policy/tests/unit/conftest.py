"""Shared fixtures: a small policy set, its entities, and an engine with a recording sink."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from symbi_common.errors import ResourceExhausted
from symbi_policy import (
    AuthzRequest,
    EngineConfig,
    EntitiesDocument,
    PolicyAuditEvent,
    PolicyDocument,
    PolicyEngine,
    SourceSnapshot,
)

BASE_POLICIES = """\
@id("trusted-publish")
permit(principal is Symbi::Agent, action == Symbi::Action::"publish", resource)
when { principal has trust && principal.trust == "trusted" };

@id("no-secret")
@reason("topic secret is off limits")
forbid(principal, action == Symbi::Action::"publish", resource == Symbi::Topic::"secret");

@id("tools-guarded")
@condition("require_approval, rate_limit:10/m")
permit(principal is Symbi::Agent, action == Symbi::Action::"tool_call", resource is Symbi::Tool)
when { resource has verified && resource.verified == true };

@id("tools-audited")
@condition("audit_full")
permit(principal == Symbi::Agent::"a", action == Symbi::Action::"tool_call", resource);

@id("read-public")
permit(principal, action == Symbi::Action::"read_context", resource is Symbi::Dataset)
when { resource has classification && resource.classification == "public" };
"""

BASE_ENTITIES = [
    {"uid": {"type": "Agent", "id": "a"}, "attrs": {"trust": "trusted"}},
    {"uid": {"type": "Agent", "id": "b"}, "attrs": {"trust": "untrusted"}},
    {"uid": {"type": "Topic", "id": "t"}},
    {"uid": {"type": "Topic", "id": "secret"}},
    {"uid": {"type": "McpServer", "id": "srv"}},
    {
        "uid": {"type": "Tool", "id": "grep"},
        "attrs": {"name": "grep", "verified": True},
        "parents": [{"type": "McpServer", "id": "srv"}],
    },
    {"uid": {"type": "Tool", "id": "rm"}, "attrs": {"name": "rm", "verified": False}},
    {"uid": {"type": "Dataset", "id": "pub"}, "attrs": {"classification": "public"}},
    {"uid": {"type": "Dataset", "id": "sec"}, "attrs": {"classification": "secret"}},
]


class RecordingSink:
    """A fake AuditSink that keeps events and can be told to refuse them."""

    def __init__(self) -> None:
        self.events: list[PolicyAuditEvent] = []
        self.refuse = False

    def record(self, event: PolicyAuditEvent) -> None:
        if self.refuse:
            raise ResourceExhausted("audit buffer full (test)")
        self.events.append(event)

    def of_type(self, event_type: str) -> list[PolicyAuditEvent]:
        return [e for e in self.events if e.event_type == event_type]


def snapshot(
    policies: dict[str, str] | None = None,
    entities: list[dict[str, object]] | None = None,
    *,
    version: int = 1,
    entities_version: int = 1,
) -> SourceSnapshot:
    docs = policies if policies is not None else {"base": BASE_POLICIES}
    documents = tuple(PolicyDocument(name, text, version) for name, text in sorted(docs.items()))
    ents = EntitiesDocument(
        json.dumps(BASE_ENTITIES if entities is None else entities), entities_version
    )
    return SourceSnapshot(documents, ents, version)


def req(principal: str, action: str, resource: str, **extra: object) -> AuthzRequest:
    return AuthzRequest.from_mapping(
        {"principal": principal, "action": action, "resource": resource, **extra}
    )


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def make_engine(sink: RecordingSink) -> Callable[..., PolicyEngine]:
    def make(
        config: EngineConfig | None = None, snap: SourceSnapshot | None = None
    ) -> PolicyEngine:
        engine = PolicyEngine(audit=sink, config=config)
        engine.apply(snap or snapshot())
        return engine

    return make


@pytest.fixture
def engine(make_engine: Callable[..., PolicyEngine]) -> PolicyEngine:
    return make_engine()


@pytest.fixture(name="req")
def req_fixture() -> Callable[..., AuthzRequest]:
    """``req('Agent::"a"', "publish", 'Topic::"t"', context={...})``."""
    return req


@pytest.fixture(name="snapshot")
def snapshot_fixture() -> Callable[..., SourceSnapshot]:
    """``snapshot({"doc": text}, entities, version=, entities_version=)``."""
    return snapshot
