"""The service's own parts without I/O: converters, operations over the in-memory source,
the audit publisher, the bus trust rules and the [policy] settings."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from google.protobuf import struct_pb2

from symbi.policy.v1 import policy_pb2
from symbi_common.config import load_settings
from symbi_common.errors import (
    ConfigError,
    InvalidArgument,
    PermissionDenied,
    Unavailable,
)
from symbi_policy import (
    EVENT_DECISION,
    EVENT_ENGINE_FAILURE,
    EntityUid,
    InMemoryPolicySource,
    PolicyAuditEvent,
    PolicyEngine,
    PolicyReloader,
    PolicyStore,
    PolicyValidationError,
    QueueAuditSink,
)
from symbi_policy.audit_publisher import AuditPublisher, audit_details
from symbi_policy.convert import (
    decode_page_token,
    encode_page_token,
    evaluation_to_proto,
    request_from_proto,
    struct_to_dict,
)
from symbi_policy.events import _check_may_ask, _require_service
from symbi_policy.operations import PolicyChange, PolicyOperations, owner_in_force
from symbi_policy.settings import PolicySection, PolicySettings

ALLOW = '@id("pub") permit(principal, action == Symbi::Action::"publish", resource);'


def test_struct_numbers_become_ints_when_integral() -> None:
    struct = struct_pb2.Struct()
    struct.update({"risk_score": 70, "ratio": 0.5, "tags": ["a"], "nested": {"n": 3}})
    assert struct_to_dict(struct) == {
        "risk_score": 70,
        "ratio": 0.5,
        "tags": ["a"],
        "nested": {"n": 3},
    }
    assert type(struct_to_dict(struct)["risk_score"]) is int
    bad = struct_pb2.Struct()
    bad.update({"x": float("nan")})
    with pytest.raises(InvalidArgument, match="finite"):
        struct_to_dict(bad)


def test_request_conversion_names_the_bad_field() -> None:
    message = policy_pb2.AuthorizationRequest(
        principal=policy_pb2.EntityRef(type="Agent", id="a"),
        action='Action::"publish"',
        resource=policy_pb2.EntityRef(type="Symbi::Topic", id="t"),
        entities=[policy_pb2.Entity(uid=policy_pb2.EntityRef(type="Tool", id="x"))],
    )
    request = request_from_proto(message)
    assert request.principal == EntityUid("Symbi::Agent", "a")
    assert request.action == "publish"
    assert request.entities[0]["uid"] == {"type": "Symbi::Tool", "id": "x"}
    message.resource.type = ""
    with pytest.raises(InvalidArgument, match=r"requests\[2\]\.resource\.type"):
        request_from_proto(message, "requests[2]")
    message.resource.type = "Topic"
    message.action = 'Agent::"x"'
    with pytest.raises(InvalidArgument, match=r"request\.action"):
        request_from_proto(message)


def test_page_tokens_round_trip_and_refuse_forgeries() -> None:
    assert decode_page_token(encode_page_token("agents/a-1")) == "agents/a-1"
    for forged in ("!!", "", "YQ==", "not base64 at all"):
        with pytest.raises(InvalidArgument):
            decode_page_token(forged)


@dataclass
class RecordedChanges:
    changes: list[PolicyChange]

    async def announce(self, change: PolicyChange) -> None:
        self.changes.append(change)


async def _operations() -> tuple[PolicyOperations, RecordedChanges, asyncio.Task[None]]:
    source = InMemoryPolicySource()
    engine = PolicyEngine(audit=QueueAuditSink())
    reloader = PolicyReloader(source, engine, build_in_thread=False)
    task = asyncio.create_task(reloader.run())
    await reloader.wait_attempted()
    changes = RecordedChanges([])
    store = PolicyStore(source, engine.compiler, id_owner=owner_in_force(engine))
    operations = PolicyOperations(
        engine, store, reloader, changes, PolicySection(list_page_size=2, reload_wait_s=5)
    )
    return operations, changes, task


async def test_writes_are_in_force_on_return_and_announced() -> None:
    operations, changes, task = await _operations()
    try:
        await operations.put_entities(
            [{"uid": {"type": "Agent", "id": "a"}}, {"uid": {"type": "Topic", "id": "t"}}],
            actor="svc-x",
        )
        document = await operations.put_policy("base", ALLOW, actor="svc-x")
        assert operations.engine.version == document.revision  # read-your-write
        assert [c.kind for c in changes.changes] == ["entities_put", "put"]
        assert changes.changes[0].ids == ('Symbi::Agent::"a"', 'Symbi::Topic::"t"')
        # the same @id in another document is refused from the set in force
        with pytest.raises(PolicyValidationError, match="already used in document 'base'"):
            await operations.put_policy("other", ALLOW, actor="svc-x")
        with pytest.raises(PolicyValidationError, match="delete it"):
            await operations.put_policy("empty", "  // no policies\n", actor="svc-x")
        with pytest.raises(InvalidArgument, match="origin"):
            await operations.put_policy("x", ALLOW, origin="dsl:", actor="svc-x")
        for i in range(3):
            await operations.put_policy(
                f"agents/a{i}",
                ALLOW.replace('"pub"', f'"pub{i}"'),
                origin=f"dsl:a{i}",
                actor="svc-x",
            )
        first = operations.list_policies()
        assert [d.name for d in first.documents] == ["agents/a0", "agents/a1"]
        second = operations.list_policies(page_token=first.next_token)
        assert [d.name for d in second.documents] == ["agents/a2", "base"]
        assert second.next_token == ""
        with pytest.raises(InvalidArgument, match="over the limit"):
            await operations.delete_entities(
                [EntityUid("Symbi::Agent", str(i)) for i in range(20_000)], actor="svc-x"
            )
        version = await operations.delete_entities([EntityUid("Symbi::Agent", "a")], actor="svc-x")
        assert operations.engine.entities_version == version
        assert operations.validate("permit(", file="dir/x.cedar")[0].document == "dir/x"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class FakeRecorder:
    """Fails ``failures`` times, then records."""

    def __init__(self, failures: int = 0, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or Unavailable("down")
        self.recorded: list[tuple[str, Mapping[str, Any], str, uuid.UUID | None]] = []

    async def record(
        self,
        event_type: str,
        *,
        details: Mapping[str, Any] | None = None,
        agent_id: str = "",
        event_id: uuid.UUID | None = None,
    ) -> object:
        if self.failures:
            self.failures -= 1
            raise self.error
        self.recorded.append((event_type, dict(details or {}), agent_id, event_id))
        return None


def _deny_event() -> PolicyAuditEvent:
    return PolicyAuditEvent(
        EVENT_DECISION,
        "deny",
        'Symbi::Agent::"a"',
        "a",
        {
            "request": {
                "principal": 'Symbi::Agent::"a"',
                "action": "publish",
                "resource": 'Symbi::Topic::"s"',
                "context": {},
            },
            "result": {
                "decision": "Deny",
                "reasons": ["no", "never"],
                "conditions": [],
                "policies": ["p1"],
                "version": 4,
                "entities_version": 5,
                "cached": True,
            },
        },
    )


def test_audit_details_follow_the_audit_conventions() -> None:
    flat = audit_details(_deny_event())
    assert flat["decision"] == "deny"
    assert (flat["action"], flat["resource"]) == ("publish", 'Symbi::Topic::"s"')
    assert flat["reason"] == "no; never"
    assert flat["policies"] == ["p1"]
    assert (flat["version"], flat["entities_version"], flat["cached"]) == (4, 5, True)
    failure = PolicyAuditEvent(
        EVENT_ENGINE_FAILURE,
        "deny",
        "",
        "",
        {"request": {"action": "publish"}, "cause": "engine error: boom", "version": 2},
    )
    assert audit_details(failure) == {
        "decision": "deny",
        "principal": "",
        "action": "publish",
        "resource": "",
        "context": {},
        "reason": "engine error: boom",
        "fail_closed": True,
        "version": 2,
    }
    json.dumps(flat, allow_nan=False)  # canonical JSON must accept it


async def test_audit_publisher_retries_then_delivers_and_counts_give_ups() -> None:
    sink = QueueAuditSink(10)
    event = _deny_event()
    sink.record(event)
    recorder = FakeRecorder(failures=2)
    publisher = AuditPublisher(sink, recorder, retry_s=5)
    task = asyncio.create_task(publisher.run())
    try:
        async with asyncio.timeout(5):
            while not recorder.recorded:  # noqa: ASYNC110 (a fake in a unit test)
                await asyncio.sleep(0.01)
        event_type, details, agent_id, event_id = recorder.recorded[0]
        assert (event_type, agent_id, details["decision"]) == (EVENT_DECISION, "a", "deny")
        assert event_id == uuid.UUID(event.event_id)  # the log is idempotent on it
        # A refusal that is not retryable is given up at once, and counted.
        recorder.failures, recorder.error = 1, InvalidArgument("too big")
        sink.record(_deny_event())
        async with asyncio.timeout(5):
            while not publisher.failed:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert publisher.published == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@dataclass
class FakeReceived:
    sender: str
    sender_role: str


def test_bus_trust_rules() -> None:
    mine = request_from_proto(
        policy_pb2.AuthorizationRequest(
            principal=policy_pb2.EntityRef(type="Agent", id="agent-1"),
            action="publish",
            resource=policy_pb2.EntityRef(type="Topic", id="t"),
        )
    )
    _check_may_ask(FakeReceived("svc-x", "service"), [mine])  # type: ignore[arg-type]
    _check_may_ask(FakeReceived("node-1", "node"), [mine])  # type: ignore[arg-type]
    _check_may_ask(FakeReceived("agent-1", "agent"), [mine])  # type: ignore[arg-type]
    with pytest.raises(PermissionDenied, match="only ask about itself"):
        _check_may_ask(FakeReceived("agent-2", "agent"), [mine])  # type: ignore[arg-type]
    with pytest.raises(PermissionDenied):
        _check_may_ask(FakeReceived("node-1-issuer", "issuer"), [mine])  # type: ignore[arg-type]
    _require_service(FakeReceived("svc-x", "service"), "put_policy")  # type: ignore[arg-type]
    with pytest.raises(PermissionDenied, match="services only"):
        _require_service(FakeReceived("node-1", "node"), "put_policy")  # type: ignore[arg-type]


def test_evaluation_to_proto_carries_fail_closed() -> None:
    from symbi_policy import Deny, Evaluation

    deny = Deny(policies=(), version=3, entities_version=4, reasons=("x",), fail_closed=True)
    result = evaluation_to_proto(Evaluation(deny, False))
    assert result.decision == policy_pb2.DECISION_DENY
    assert result.fail_closed
    assert (result.version, result.entities_version) == (3, 4)


def test_policy_settings_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMBI_CONFIG_PATH", "")
    monkeypatch.setenv("SYMBI_POLICY__AUDIT_ALLOWS", "true")
    monkeypatch.setenv("SYMBI_POLICY__DECISION_CACHE_SIZE", "0")
    settings = load_settings(PolicySettings)
    config = settings.policy.engine_config()
    assert config.audit_allows
    assert config.cache_size == 0
    monkeypatch.setenv("SYMBI_POLICY__BUCKET_HISTORY", "8")
    with pytest.raises(ConfigError, match="bucket_history"):
        load_settings(PolicySettings)


def _per_entity_snapshot(entities: dict[str, str], version: int) -> Any:
    from symbi_policy import EntitiesDocument, PolicyDocument, SourceSnapshot
    from symbi_policy.source import join_entities

    by_uid = {
        EntityUid("Symbi::Agent", agent): json.dumps(
            {
                "attrs": {"trust": trust},
                "parents": [],
                "uid": {"id": agent, "type": "Symbi::Agent"},
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        for agent, trust in entities.items()
    }
    trusted = (
        '@id("t") permit(principal is Symbi::Agent, action == Symbi::Action::"publish", '
        'resource) when { principal has trust && principal.trust == "trusted" };'
    )
    return SourceSnapshot(
        (PolicyDocument("base", trusted, 1),),
        EntitiesDocument(join_entities(by_uid), version, by_uid=by_uid),
        1,
    )


def test_entity_sets_grow_by_adding_and_rebuild_on_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import cedarpy

    from symbi_policy import Allow, AuthzRequest, Deny

    engine = PolicyEngine(audit=QueueAuditSink(), config=None)
    extra = [{"uid": {"type": "Topic", "id": "t"}}]

    def decide(agent: str) -> Any:
        return engine.evaluate(
            AuthzRequest.from_mapping(
                {
                    "principal": f'Agent::"{agent}"',
                    "action": "publish",
                    "resource": 'Topic::"t"',
                    "entities": extra,
                }
            )
        )

    engine.apply(_per_entity_snapshot({"a": "trusted"}, 2))
    first = engine.state.entities
    assert isinstance(decide("a"), Allow)
    # Adding: the new handle is built from the old one, without parsing the whole set.
    full_parses: list[str] = []
    parse = cedarpy.Entities.from_json_str

    def counting(text: str, schema: Any = None) -> Any:
        full_parses.append(text)
        return parse(text, schema)

    monkeypatch.setattr(cedarpy.Entities, "from_json_str", counting)
    engine.apply(_per_entity_snapshot({"a": "trusted", "b": "trusted"}, 3))
    assert full_parses == []
    grown = engine.state.entities
    assert grown.texts is not None
    assert grown.uids == first.uids | {EntityUid("Symbi::Agent", "b")}
    assert isinstance(decide("b"), Allow)
    assert decide("b").entities_version == 3
    # Changing an entity's attributes: a full rebuild, and the change counts.
    engine.apply(_per_entity_snapshot({"a": "trusted", "b": "untrusted"}, 4))
    assert len(full_parses) == 1
    assert isinstance(decide("b"), Deny)
    # Removing: unknown again.
    engine.apply(_per_entity_snapshot({"b": "untrusted"}, 5))
    assert "unknown principal" in decide("a").reasons[0]
    # An added entity the schema refuses fails the build, naming it; the set stays.
    bad = _per_entity_snapshot({"b": "untrusted"}, 6)
    broken = dict(bad.entities.by_uid)
    broken[EntityUid("Symbi::Agent", "c")] = json.dumps(
        {"uid": {"type": "Symbi::Agent", "id": "c"}, "attrs": {"trust": 7}, "parents": []}
    )
    from symbi_policy import EntitiesDocument, SourceSnapshot
    from symbi_policy.source import join_entities

    with pytest.raises(PolicyValidationError, match=r'Symbi::Agent::"c"'):
        engine.apply(
            SourceSnapshot(
                bad.policies,
                EntitiesDocument(join_entities(broken), 6, by_uid=broken),
                1,
            )
        )
    assert engine.entities_version == 5


async def test_a_full_audit_buffer_holds_decisions_back_until_it_drains() -> None:
    from symbi_policy import AuthzRequest

    source = InMemoryPolicySource()
    await source.upsert_entities(
        [
            {"uid": {"type": "Symbi::Agent", "id": "a"}, "attrs": {}, "parents": []},
            {"uid": {"type": "Symbi::Topic", "id": "t"}, "attrs": {}, "parents": []},
        ]
    )
    sink = QueueAuditSink(4)
    engine = PolicyEngine(audit=sink)
    reloader = PolicyReloader(source, engine, build_in_thread=False)
    task = asyncio.create_task(reloader.run())
    try:
        await reloader.wait_attempted()
        while sink.get_nowait() is not None:  # the install events
            pass
        operations = PolicyOperations(
            engine,
            PolicyStore(source),
            reloader,
            RecordedChanges([]),
            PolicySection(audit_wait_s=5),
            audit=sink,
        )
        deny = AuthzRequest.from_mapping(
            {"principal": 'Agent::"a"', "action": "publish", "resource": 'Topic::"t"'}
        )
        for _ in range(3):
            await operations.admit(1)
            operations.evaluate(deny)  # default deny: audited
        assert len(sink) == 3
        admitted = asyncio.create_task(operations.admit(1))  # needs room for 2
        await asyncio.sleep(0.01)
        assert not admitted.done()
        sink.get_nowait()
        async with asyncio.timeout(1):
            await admitted
        assert operations.unthrottled == 0
        # A wait that runs out lets the request through (and counts it).
        operations.evaluate(deny)
        short = PolicyOperations(
            engine,
            PolicyStore(source),
            reloader,
            RecordedChanges([]),
            PolicySection(audit_wait_s=0.01),
            audit=sink,
        )
        await short.admit(1)
        assert short.unthrottled == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_operators_setting_takes_principal_ids_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMBI_CONFIG_PATH", "")
    monkeypatch.setenv("SYMBI_POLICY__OPERATORS", '["alice", "bob"]')
    assert load_settings(PolicySettings).policy.operators == ("alice", "bob")
    monkeypatch.setenv("SYMBI_POLICY__OPERATORS", '["alice", "bad id\\""]')
    with pytest.raises(ConfigError, match="operators"):
        load_settings(PolicySettings)
