"""The lifecycle domain over in-memory ports: creation, policy, requests, recovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from symbi_common.dsl import DslSyntaxError, DslValidationError
from symbi_common.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    Unavailable,
)
from symbi_common.policy_client import PolicyDecision
from symbi_lifecycle.lifecycle import AgentLifecycle, LifecycleConfig
from symbi_lifecycle.states import AgentState

EXAMPLES = Path(__file__).resolve().parents[4] / "examples" / "agents"

AGENT = """
agent worker(x: String) -> String {
    capabilities = ["summarize"]
    policy basics { allow: ["summarize"] }
    with sandbox = "Tier1", max_memory_mb = 256, timeout = 30s { return x; }
}
"""


async def test_create_registers_installs_and_is_ready(lifecycle, gate, sink) -> None:
    stored = await lifecycle.create(AGENT, source_format="dsl", file="w.symbi", owner="alice")
    record = stored.record
    assert record.state is AgentState.READY
    assert record.id.startswith("agent-")
    assert len(record.id) == len("agent-") + 16
    assert (record.name, record.owner, record.tier) == ("worker", "alice", "docker")
    assert (record.memory_mb, record.timeout_ms) == (256, 30_000)
    assert record.capabilities == ("summarize",)
    assert gate.registered == {record.id}
    assert f'Symbi::Agent::"{record.id}"' in gate.installed[record.id]
    assert sink.path(record.id) == ["CREATED", "INITIALIZING", "READY"]
    assert [s.record.seq for s in sink.transitions] == [1, 2, 3]


async def test_create_with_an_id_and_a_taken_id(lifecycle, sink) -> None:
    stored = await lifecycle.create(AGENT, source_format="dsl", agent_id="agent-mine")
    assert stored.record.id == "agent-mine"
    retried = await lifecycle.create(AGENT, source_format="dsl", agent_id="agent-mine")
    assert retried == stored  # the same request again: the same agent, nothing new
    assert len(sink.path("agent-mine")) == 3
    with pytest.raises(AlreadyExists):
        await lifecycle.create(AGENT, source_format="dsl", agent_id="agent-mine", owner="bob")
    with pytest.raises(InvalidArgument, match="not valid"):
        await lifecycle.create(AGENT, source_format="dsl", agent_id="bob")


async def test_malformed_dsl_names_line_and_column(lifecycle, store) -> None:
    broken = 'agent a {\n    capabilities = ["x"]\n    let y = ;\n}\n'
    with pytest.raises(DslSyntaxError) as caught:
        await lifecycle.create(broken, source_format="dsl", file="broken.symbi")
    assert "broken.symbi:3:" in caught.value.message
    assert caught.value.details["line"] == "3"
    assert not store.records


async def test_invalid_definition_is_refused(lifecycle) -> None:
    source = AGENT.replace('"Tier1"', '"firecracker"')
    with pytest.raises(DslValidationError, match="firecracker"):
        await lifecycle.create(source, source_format="dsl")
    with pytest.raises(InvalidArgument, match="empty"):
        await lifecycle.create("  ", source_format="dsl")


@pytest.mark.parametrize("path", sorted(EXAMPLES.iterdir()), ids=lambda p: p.name)
async def test_every_example_creates(lifecycle, path: Path) -> None:
    fmt = {".toml": "toml", ".yaml": "yaml"}.get(path.suffix, "dsl")
    text = path.read_text()  # noqa: ASYNC240 (a small file, in a test)
    stored = await lifecycle.create(text, source_format=fmt, file=path.name)
    assert stored.record.state is AgentState.READY
    assert stored.record.scheduled == (path.name == "nightly_digest.symbi")


async def test_denied_create_ends_failed_for_good(lifecycle, gate, clock) -> None:
    gate.create = PolicyDecision("deny", ("docker agents need approval",))
    stored = await lifecycle.create(AGENT, source_format="dsl")
    record = stored.record
    assert record.state is AgentState.FAILED
    assert "create denied by policy: docker agents need approval" in record.reason
    assert record.restart_at_ms == 0
    assert record.id not in gate.registered  # unregistered again
    assert record.id not in gate.installed
    clock.advance(3600)
    assert not lifecycle.due(record, clock())


async def test_fail_closed_create_recovers_with_backoff(lifecycle, gate, clock, sink) -> None:
    gate.error = Unavailable("nobody serves symbi.rpc.policy.put_entities")
    stored = await lifecycle.create(AGENT, source_format="dsl")
    record = stored.record
    assert record.state is AgentState.FAILED
    assert "not decided" in record.reason
    assert "recovery 1 of 2 in 1 s" in record.reason
    assert record.restart_at_ms == clock() + 1000
    assert not lifecycle.due(record, clock())
    assert await lifecycle.reconcile(stored) is None  # not due yet
    clock.advance(1)
    gate.error = None
    recovered = await lifecycle.reconcile(await lifecycle.get(record.id))
    assert recovered is not None
    assert recovered.record.state is AgentState.READY
    assert recovered.record.restarts == 1
    assert sink.path(record.id) == ["CREATED", "INITIALIZING", "FAILED", "INITIALIZING", "READY"]


async def test_recovery_stops_after_max_restarts(lifecycle, gate, clock) -> None:
    gate.error = Unavailable("down")
    stored = await lifecycle.create(AGENT, source_format="dsl")
    delays = []
    while stored.record.restart_at_ms:
        delays.append(stored.record.restart_at_ms - clock())
        clock.advance(delays[-1] / 1000)
        result = await lifecycle.reconcile(await lifecycle.get(stored.record.id))
        assert result is not None
        stored = result
    assert delays == [1000, 2000]  # doubling backoff, max_restarts = 2
    assert stored.record.state is AgentState.FAILED
    assert stored.record.restarts == 2
    assert "no recovery: 2 of 2 restarts used" in stored.record.reason


async def test_per_agent_max_restarts(lifecycle) -> None:
    source = AGENT.replace("timeout = 30s", "timeout = 30s, max_restarts = 7")
    stored = await lifecycle.create(source, source_format="dsl")
    assert stored.record.max_restarts == 7


async def test_suspend_resume_and_policy_on_resume(lifecycle, gate) -> None:
    agent_id = (await lifecycle.create(AGENT, source_format="dsl")).record.id
    suspended = await lifecycle.suspend(agent_id, reason="maintenance")
    assert suspended.record.state is AgentState.SUSPENDED
    assert suspended.record.reason == "maintenance"
    with pytest.raises(FailedPrecondition, match="from SUSPENDED to SUSPENDED"):
        await lifecycle.suspend(agent_id)
    gate.modify = PolicyDecision("deny", ("frozen by the operator",))
    with pytest.raises(PermissionDenied, match="frozen by the operator"):
        await lifecycle.resume(agent_id)
    assert (await lifecycle.get(agent_id)).record.state is AgentState.SUSPENDED
    gate.modify = PolicyDecision("allow")
    resumed = await lifecycle.resume(agent_id)
    assert resumed.record.state is AgentState.READY


async def test_resume_needs_a_suspended_agent(lifecycle) -> None:
    agent_id = (await lifecycle.create(AGENT, source_format="dsl")).record.id
    with pytest.raises(FailedPrecondition, match="from READY to READY"):
        await lifecycle.resume(agent_id)


async def test_expected_revision_is_compare_and_set(lifecycle) -> None:
    stored = await lifecycle.create(AGENT, source_format="dsl")
    with pytest.raises(Aborted, match="revision"):
        await lifecycle.suspend(stored.record.id, expected_revision=stored.revision - 1)
    moved = await lifecycle.suspend(stored.record.id, expected_revision=stored.revision)
    assert moved.revision > stored.revision


async def test_concurrent_writers_one_wins(lifecycle, store) -> None:
    stored = await lifecycle.create(AGENT, source_format="dsl")
    # Both writers read the same revision; the second write must lose.
    first = stored.record.moved(AgentState.SUSPENDED, reason="a", actor="a", at_ms=1)
    second = stored.record.moved(AgentState.TERMINATING, reason="b", actor="b", at_ms=1)
    await store.write(first, stored.revision)
    with pytest.raises(Aborted):
        await store.write(second, stored.revision)
    assert (await lifecycle.get(stored.record.id)).record.state is AgentState.SUSPENDED


async def test_terminate_unregisters(lifecycle, gate, sink) -> None:
    agent_id = (await lifecycle.create(AGENT, source_format="dsl")).record.id
    ended = await lifecycle.terminate(agent_id, reason="done")
    assert ended.record.state is AgentState.TERMINATED
    assert agent_id not in gate.registered
    assert agent_id not in gate.installed
    assert sink.path(agent_id)[-2:] == ["TERMINATING", "TERMINATED"]
    with pytest.raises(FailedPrecondition, match="from TERMINATED to TERMINATING"):
        await lifecycle.terminate(agent_id)


async def test_terminate_waits_for_policy_and_is_finished_later(lifecycle, gate, clock) -> None:
    agent_id = (await lifecycle.create(AGENT, source_format="dsl")).record.id
    gate.error = Unavailable("policy is down")
    stuck = await lifecycle.terminate(agent_id)
    assert stuck.record.state is AgentState.TERMINATING
    assert await lifecycle.reconcile(stuck) is None  # not stale yet
    clock.advance(11)
    gate.error = None
    done = await lifecycle.reconcile(await lifecycle.get(agent_id))
    assert done is not None
    assert done.record.state is AgentState.TERMINATED
    assert agent_id not in gate.registered


async def test_interrupted_initialization_is_finished(lifecycle, store, gate, clock) -> None:
    stored = await lifecycle.create(AGENT, source_format="dsl")
    # Put the record back to Initializing, as if the process died in the middle.
    stuck = stored.record.moved(AgentState.INITIALIZING, reason="x", actor="x", at_ms=clock())
    written = await store.write(stuck, stored.revision)
    assert not lifecycle.due(written.record, clock())
    clock.advance(11)
    assert lifecycle.due(written.record, clock())
    done = await lifecycle.reconcile(written)
    assert done is not None
    assert done.record.state is AgentState.READY


async def test_history_is_the_transitions(lifecycle) -> None:
    agent_id = (await lifecycle.create(AGENT, source_format="dsl")).record.id
    await lifecycle.suspend(agent_id)
    entries, truncated = await lifecycle.history(agent_id)
    assert not truncated
    assert [(e.transition.from_state, e.transition.to_state) for e in entries] == [
        (None, AgentState.CREATED),
        (AgentState.CREATED, AgentState.INITIALIZING),
        (AgentState.INITIALIZING, AgentState.READY),
        (AgentState.READY, AgentState.SUSPENDED),
    ]
    revisions = [e.revision for e in entries]
    assert revisions == sorted(revisions)


async def test_oversized_source_is_refused(store, gate, sink) -> None:
    small = AgentLifecycle(
        store, gate, sink, actor="x", config=LifecycleConfig(max_source_bytes=100)
    )
    with pytest.raises(InvalidArgument, match="exceeds the 100-byte limit"):
        await small.create(AGENT, source_format="dsl")
