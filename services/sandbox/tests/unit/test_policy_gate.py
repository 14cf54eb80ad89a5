"""PolicyGate: decisions become refusals, conditions are honoured, every call is audited."""

from __future__ import annotations

from typing import Any

import pytest

from symbi_common.errors import PermissionDenied, ResourceExhausted, Unavailable
from symbi_common.policy_client import EntityRef, PolicyDecision, PolicyQuestion
from symbi_sandbox.channel.ports import AgentContext
from symbi_sandbox.policy_gate import BusEgressPolicy, PolicyGate, entity, strip_guard_tags

CTX = AgentContext(task_id="t1", agent_id="agent-1", node_id="node-1")
TOPIC = EntityRef("Topic", "news")


class Client:
    def __init__(self, *answers: PolicyDecision) -> None:
        self.answers = list(answers)
        self.questions: list[PolicyQuestion] = []

    async def evaluate(self, question: PolicyQuestion) -> PolicyDecision:
        self.questions.append(question)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail

    async def record(self, event_type: str, *, details: Any, agent_id: str) -> None:
        if self.fail:
            raise Unavailable("audit stream down")
        self.events.append((event_type, details))


def gate(client: Client, recorder: Recorder | None = None) -> PolicyGate:
    return PolicyGate(client, recorder or Recorder(), node_id="node-1")  # type: ignore[arg-type]


async def test_allow_is_audited_and_the_question_names_the_agent() -> None:
    client, recorder = Client(PolicyDecision("allow", ("ok",))), Recorder()
    await gate(client, recorder).authorize(
        CTX, "publish", "publish", TOPIC, entities=[entity("Topic", "news")]
    )
    question = client.questions[0]
    assert question.principal == EntityRef("Agent", "agent-1")
    assert question.entities[0]["uid"] == {"type": "Symbi::Topic", "id": "news"}
    assert {"time", "hour"} <= set(question.context)
    [(event_type, details)] = recorder.events
    assert event_type == "sandbox.channel.publish"
    assert details["decision"] == "allow"
    assert details["resource"] == "Topic::news"


async def test_deny_and_fail_closed_refuse_with_different_codes() -> None:
    recorder = Recorder()
    with pytest.raises(PermissionDenied, match="not today"):
        await gate(Client(PolicyDecision("deny", ("not today",))), recorder).authorize(
            CTX, "publish", "publish", TOPIC
        )
    with pytest.raises(Unavailable) as closed:
        await gate(Client(PolicyDecision.closed("timeout"))).authorize(
            CTX, "publish", "publish", TOPIC
        )
    assert closed.value.reason == "POLICY_UNAVAILABLE"
    assert recorder.events[0][1]["decision"] == "deny"


async def test_an_unwritable_audit_record_refuses_the_call() -> None:
    with pytest.raises(Unavailable) as refused:
        await gate(Client(PolicyDecision("allow")), Recorder(fail=True)).authorize(
            CTX, "publish", "publish", TOPIC
        )
    assert refused.value.reason == "AUDIT_UNAVAILABLE"


async def test_conditions() -> None:
    limited = gate(Client(PolicyDecision("allow_with_conditions", conditions=("rate_limit:2/m",))))
    for _ in range(2):
        await limited.authorize(CTX, "send", "send_message", EntityRef("Agent", "agent-2"))
    with pytest.raises(ResourceExhausted):
        await limited.authorize(CTX, "send", "send_message", EntityRef("Agent", "agent-2"))
    other_task = AgentContext(task_id="t2", agent_id="agent-1", node_id="node-1")
    await limited.authorize(other_task, "send", "send_message", EntityRef("Agent", "agent-2"))

    approval = gate(
        Client(PolicyDecision("allow_with_conditions", conditions=("require_approval",)))
    )
    with pytest.raises(PermissionDenied) as refused:
        await approval.authorize(CTX, "tool", "tool_call", EntityRef("Tool", "a/b"))
    assert refused.value.reason == "APPROVAL_REQUIRED"

    recorder = Recorder()
    full = gate(
        Client(PolicyDecision("allow_with_conditions", conditions=("audit_full",))), recorder
    )
    await full.authorize(CTX, "tool", "tool_call", EntityRef("Tool", "a/b"), arguments={"q": 1})
    assert recorder.events[0][1]["arguments"] == {"q": 1}


async def test_an_unknown_recipient_is_vouched_for_on_a_second_ask() -> None:
    unknown = PolicyDecision("deny", ('unknown resource Symbi::Agent::"agent-2": not in ...',))
    client = Client(unknown, PolicyDecision("allow"))
    vouched = entity("Agent", "agent-2")
    await gate(client).authorize(
        CTX, "send", "send_message", EntityRef("Agent", "agent-2"), if_unknown=[vouched]
    )
    assert [len(q.entities) for q in client.questions] == [0, 1]
    # A plain deny is not retried.
    client = Client(PolicyDecision("deny", ("forbidden",)))
    with pytest.raises(PermissionDenied):
        await gate(client).authorize(
            CTX, "send", "send_message", EntityRef("Agent", "agent-2"), if_unknown=[vouched]
        )
    assert len(client.questions) == 1


async def test_egress_decisions_name_the_destination() -> None:
    client = Client(PolicyDecision("deny", ("no",)))
    decision = await BusEgressPolicy(gate(client)).check_egress(CTX, "example.com", 443)
    assert not decision.allowed
    question = client.questions[0]
    assert question.action == "network"
    assert question.resource == EntityRef("Resource", "example.com:443")
    assert question.context["destination"] == "example.com"
    assert question.context["port"] == 443


def test_agents_cannot_assert_dsl_guard_tags() -> None:
    assert strip_guard_tags(["a", "dsl-guard:r1=true", " DSL-GUARD:r2=false", "b"]) == ["a", "b"]
    assert strip_guard_tags(None) == []
