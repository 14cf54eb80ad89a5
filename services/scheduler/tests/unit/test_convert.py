"""Protobuf ↔ domain converters (contract C3 shapes, API defaults)."""

from __future__ import annotations

import pytest

from symbi.bus.v1 import events_pb2
from symbi.common.v1 import common_pb2
from symbi.scheduler.v1 import scheduler_pb2 as pb
from symbi_common.errors import InvalidArgument
from symbi_scheduler import (
    AgentTransition,
    DispatchOrder,
    Priority,
    ResourceRequest,
    SandboxTier,
    StopOrder,
    TaskOutcome,
    TaskRecord,
    TaskState,
    TransitionKind,
)
from symbi_scheduler.convert import (
    NodeDefaults,
    RequestDefaults,
    assignment_from_order,
    event_name,
    heartbeat_from_proto,
    result_from_status,
    spec_from_request,
    status_for_transition,
    stop_from_order,
    task_to_proto,
)

DEFAULTS = RequestDefaults(
    memory_mb=512, cpu_millicores=1000, execution_timeout_s=600.0, tier=SandboxTier.GVISOR
)
Status = events_pb2.TaskStatus


def test_zero_fields_take_the_defaults_and_the_run_spec_travels_as_payload() -> None:
    request = pb.ScheduleAgentRequest(
        agent_id="agent-1", image="img", command=["run"], env={"A": "1"}, code=b"x"
    )
    spec = spec_from_request(request, DEFAULTS, "t1")
    assert spec.resources == ResourceRequest(
        memory_mb=512, cpu_millicores=1000, execution_timeout_s=600.0
    )
    assert spec.priority is Priority.NORMAL
    assert spec.tier is SandboxTier.GVISOR
    assert spec.preemptible is True
    order = DispatchOrder(
        dispatch_id="t1-1",
        task_id="t1",
        agent_id="agent-1",
        node_id="node-a",
        attempt=1,
        priority=spec.priority,
        tier=spec.tier,
        resources=spec.resources,
        not_after=1000.5,
        preempts=("v1",),
        payload=spec.payload,
    )
    a = assignment_from_order(order, now=999.0)
    assert (a.image, list(a.command), dict(a.env), a.code) == ("img", ["run"], {"A": "1"}, b"x")
    assert (a.dispatch_id, a.not_after_ms, a.dispatched_at_ms) == ("t1-1", 1_000_500, 999_000)
    assert list(a.preempts) == ["v1"]
    assert a.node_id == "node-a"
    assert a.tier == common_pb2.SANDBOX_TIER_GVISOR
    assert a.priority == common_pb2.PRIORITY_NORMAL
    assert a.limits.memory_mb == 512
    assert a.limits.execution_timeout.seconds == 600


def test_explicit_fields_win() -> None:
    limits = common_pb2.ResourceLimits(memory_mb=64, cpu_millicores=250, max_processes=8)
    limits.execution_timeout.FromSeconds(30)
    request = pb.ScheduleAgentRequest(
        agent_id="agent-1",
        priority=common_pb2.PRIORITY_CRITICAL,
        tier=common_pb2.SANDBOX_TIER_DOCKER,
        limits=limits,
        preemptible=False,
        node_selector={"zone": "eu"},
    )
    spec = spec_from_request(request, DEFAULTS, "t2")
    assert spec.priority is Priority.CRITICAL
    assert spec.tier is SandboxTier.DOCKER
    assert spec.preemptible is False
    assert spec.resources.execution_timeout_s == 30
    assert dict(spec.node_selector) == {"zone": "eu"}
    rec = TaskRecord(spec=spec, state=TaskState.QUEUED, seq=0, enqueued_at=5.0, updated_at=5.0)
    task = task_to_proto(rec)
    assert task.limits.max_processes == 8
    assert task.state == pb.TASK_STATE_QUEUED
    assert not task.has_exit_code


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("priority", 9, "unknown priority"),
        ("tier", 9, "unknown sandbox tier"),
        ("agent_id", "", "agent_id"),
        ("node_selector", {"bad key!": "x"}, "node_selector"),
    ],
)
def test_malformed_requests_name_the_field(field: str, value: object, words: str) -> None:
    request = pb.ScheduleAgentRequest(agent_id="agent-1")
    if isinstance(value, dict):
        getattr(request, field).update(value)
    else:
        setattr(request, field, value)
    with pytest.raises(InvalidArgument, match=words):
        spec_from_request(request, DEFAULTS, "t3")


def test_stop_reasons_are_the_contract_words() -> None:
    def reason(why: str) -> str:
        return stop_from_order(StopOrder("node-a", "t", "t-1", why), grace_ms=5).reason

    assert reason("preempted by critical task c") == "preempted"
    assert reason("cancelled: operator") == "cancelled"
    assert reason("start not acknowledged in time") == "start not acknowledged in time"


@pytest.mark.parametrize(
    ("state", "outcome", "reason"),
    [
        (Status.STATE_SUCCEEDED, TaskOutcome.COMPLETED, ""),
        (Status.STATE_FAILED, TaskOutcome.FAILED, "failed: exit 3"),
        (Status.STATE_OOM_KILLED, TaskOutcome.FAILED, "oom_killed: exit 3"),
        (Status.STATE_TIMED_OUT, TaskOutcome.FAILED, "timed_out: exit 3"),
        (Status.STATE_REFUSED, TaskOutcome.FAILED, "refused: exit 3"),
        (Status.STATE_STOPPED, TaskOutcome.STOPPED, "exit 3"),
        (Status.STATE_LOST, TaskOutcome.LOST, "exit 3"),
    ],
)
def test_final_statuses_become_results(state: int, outcome: TaskOutcome, reason: str) -> None:
    status = Status(
        task_id="t",
        node_id="node-a",
        dispatch_id="t-1",
        state=state,  # type: ignore[arg-type]
        reason="" if state == Status.STATE_SUCCEEDED else "exit 3",
        exit_code=3,
    )
    result = result_from_status(status)
    assert (result.outcome, result.reason, result.exit_code) == (outcome, reason, 3)


@pytest.mark.parametrize(
    ("kind", "state", "reason"),
    [
        (TransitionKind.SUSPENDED, Status.STATE_STOPPED, "preempted"),
        (TransitionKind.CANCELLED, Status.STATE_STOPPED, "cancelled"),
        (TransitionKind.REQUEUED, Status.STATE_LOST, "node gone; requeued"),
        (TransitionKind.FAILED, Status.STATE_FAILED, "node gone"),
    ],
)
def test_transitions_become_statuses_for_lifecycle(
    kind: TransitionKind, state: int, reason: str
) -> None:
    t = AgentTransition("agent-1", "t", kind, 10.0, "node-a", "node gone", "t-2", 2)
    status = status_for_transition(t, now=11.0)
    assert status is not None
    assert (status.state, status.reason) == (state, reason)
    assert (status.dispatch_id, status.attempt, status.agent_id) == ("t-2", 2, "agent-1")


def test_running_is_left_to_the_node() -> None:
    t = AgentTransition("agent-1", "t", TransitionKind.RUNNING, 10.0)
    assert status_for_transition(t, now=11.0) is None


def test_heartbeats_carry_capacity_tiers_labels_and_running_tasks() -> None:
    hb = events_pb2.NodeHeartbeat(
        node_id="node-a",
        memory_total_mb=8192,
        cpu_total_millicores=4000,
        tiers=[common_pb2.SANDBOX_TIER_GVISOR, 42],  # an unknown (newer) tier is ignored
        labels={"zone": "eu"},
        running_task_ids=["t1"],
    )
    beat = heartbeat_from_proto(hb, NodeDefaults(max_tasks=7, disk_io_mbps=10, network_io_mbps=20))
    assert beat.capacity.vector == (8192, 4000, 10, 20)
    assert beat.capacity.max_tasks == 7
    assert beat.tiers == frozenset({SandboxTier.GVISOR})
    assert dict(beat.labels) == {"zone": "eu"}
    assert beat.running == frozenset({"t1"})
    assert beat.disk_io_tiers is None  # not reported: an older node, unknown
    hb.disk_io_tiers_reported = True
    assert heartbeat_from_proto(hb, NodeDefaults(1, 0, 0)).disk_io_tiers == frozenset()
    hb.disk_io_tiers.extend([common_pb2.SANDBOX_TIER_GVISOR, common_pb2.SANDBOX_TIER_DOCKER])
    # Kept to the tiers the node offers.
    assert heartbeat_from_proto(hb, NodeDefaults(1, 0, 0)).disk_io_tiers == frozenset(
        {SandboxTier.GVISOR}
    )
    with pytest.raises(InvalidArgument):
        heartbeat_from_proto(events_pb2.NodeHeartbeat(node_id="bad.node"), NodeDefaults(1, 0, 0))


def test_event_names() -> None:
    spec_rec = TaskRecord(
        spec=spec_from_request(pb.ScheduleAgentRequest(agent_id="agent-1"), DEFAULTS, "t"),
        state=TaskState.QUEUED,
        seq=0,
        enqueued_at=0.0,
        updated_at=0.0,
    )
    assert event_name(spec_rec) == "queued"
    assert event_name(spec_rec.evolve(attempt=1)) == "requeued"
    assert event_name(spec_rec.evolve(state=TaskState.STOPPING)) == "preempted"
    assert event_name(spec_rec.evolve(state=TaskState.COMPLETED)) == "succeeded"
