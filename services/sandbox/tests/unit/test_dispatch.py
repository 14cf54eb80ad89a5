"""The node's side of contract C3 against a fake engine and a fake publisher.

The real thing (NATS, Docker, the sandbox as a process) is tests/integration/test_service.py;
here the orderings that two streams cannot make deterministic are pinned down.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import duration_pb2
from google.protobuf.message import Message

from symbi.bus.v1 import envelope_pb2, events_pb2
from symbi.common.v1 import common_pb2
from symbi_common.bus import Received
from symbi_common.bus.secure_bus import content_type_of
from symbi_common.errors import PermissionDenied
from symbi_sandbox.dispatch import TaskDispatcher
from symbi_sandbox.hardening import (
    LABEL_AGENT,
    LABEL_ATTEMPT,
    LABEL_DISPATCH,
    LABEL_INSTANCE,
    LABEL_MANAGED,
    LABEL_NODE,
    LABEL_TASK,
)
from symbi_sandbox.journal import DispatchJournal, DispatchRecord
from symbi_sandbox.nursery import Nursery
from symbi_sandbox.reporting import StatusOutbox
from symbi_sandbox.runner import RunnerConfig, SandboxRunner
from symbi_testing import eventually

from .test_runner import FakeChannels, FakeEngine

State = events_pb2.TaskStatus.State
NODE = "node-1"


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    async def record(self, event_type: str, *, details: Any = None, agent_id: str = "") -> None:
        self.events.append((event_type, agent_id, dict(details or {})))

    def types(self) -> list[str]:
        return [e[0] for e in self.events]


@dataclass
class Node:
    dispatcher: TaskDispatcher
    runner: SandboxRunner
    engine: FakeEngine
    journal: DispatchJournal
    outbox: StatusOutbox
    published: list[events_pb2.TaskStatus]
    recorder: Recorder

    def states(self, task_id: str) -> list[str]:
        return [
            State.Name(s.state).removeprefix("STATE_")
            for s in self.published
            if s.task_id == task_id
        ]

    async def settled(self, task_id: str, *states: str) -> None:
        def check() -> bool:
            assert self.states(task_id) == list(states)
            return True

        await eventually(check, timeout=5)


def received(
    message: Message, *, sender: str = "svc-scheduler-1", role: str = "service"
) -> Received:
    return Received(
        subject="symbi.task.node-1",
        sender=sender,
        sender_role=role,
        payload=message.SerializeToString(),
        content_type=content_type_of(message),
        msg_id="m1",
        envelope=envelope_pb2.Envelope(),
    )


def order(
    task_id: str, *command: str, dispatch_id: str = "", not_after_s: float = 30, **kw: Any
) -> events_pb2.TaskAssignment:
    now = int(time.time() * 1000)
    return events_pb2.TaskAssignment(
        task_id=task_id,
        agent_id="agent-1",
        attempt=1,
        tier=common_pb2.SANDBOX_TIER_DOCKER,
        limits=common_pb2.ResourceLimits(execution_timeout=duration_pb2.Duration(seconds=30)),
        image=kw.pop("image", "symbi/busybox"),
        command=list(command),
        dispatch_id=dispatch_id or f"{task_id}-1",
        not_after_ms=now + int(not_after_s * 1000),
        node_id=NODE,
        **kw,
    )


@contextlib.asynccontextmanager
async def node(
    tmp_path: Path, engine: FakeEngine | None = None, **config: Any
) -> AsyncIterator[Node]:
    engine = engine or FakeEngine()
    runner = SandboxRunner(
        engine,
        RunnerConfig(node_id=NODE, work_root=tmp_path / "work", stop_grace_s=0.1, **config),
        channels=FakeChannels(),
    )
    journal = DispatchJournal(tmp_path / "journal.jsonl", retention_s=3600)
    recovery = await journal.open()
    published: list[events_pb2.TaskStatus] = []

    async def publish(status: events_pb2.TaskStatus, msg_id: str) -> None:
        published.append(status)

    outbox = StatusOutbox(journal, publish, node_id=NODE)
    nursery = Nursery("test")
    recorder = Recorder()
    async with runner:
        loops = [asyncio.create_task(nursery.run()), asyncio.create_task(outbox.run())]
        try:
            await nursery.ready()
            dispatcher = TaskDispatcher(
                runner,
                journal,
                outbox,
                nursery,
                recorder,  # type: ignore[arg-type]
                node_id=NODE,
                preempt_grace_s=0.1,
            )
            await dispatcher.recover(recovery, runner.lost_tasks)
            yield Node(dispatcher, runner, engine, journal, outbox, published, recorder)
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
    await journal.aclose()


async def test_started_then_final_and_a_dispatch_id_starts_once(tmp_path: Path) -> None:
    async with node(tmp_path) as n:
        await n.dispatcher.on_assignment(received(order("t1", "exit", "3")))
        await n.settled("t1", "STARTED", "FAILED")
        assert n.published[-1].exit_code == 3
        assert {s.dispatch_id for s in n.published} == {"t1-1"}
        await n.dispatcher.on_assignment(received(order("t1", "exit", "0")))  # delivered again
        await n.outbox.drained()
        assert n.states("t1") == ["STARTED", "FAILED"]
        assert len(n.engine.removed) == 1
        assert "sandbox.task.started" in n.recorder.types()
        assert "sandbox.task.finished" in n.recorder.types()


async def test_only_services_may_order_work(tmp_path: Path) -> None:
    async with node(tmp_path) as n:
        with pytest.raises(PermissionDenied):
            await n.dispatcher.on_assignment(
                received(order("t1", "exit", "0"), sender="agent-7", role="agent")
            )
        stop = events_pb2.TaskStop(task_id="t1", reason="cancelled")
        with pytest.raises(PermissionDenied):
            await n.dispatcher.on_stop(received(stop, sender="node-2", role="node"))
        assert n.published == []


async def test_an_expired_order_is_never_started_and_gets_no_status(tmp_path: Path) -> None:
    async with node(tmp_path) as n:
        await n.dispatcher.on_assignment(received(order("late", "exit", "0", not_after_s=-1)))
        assert "sandbox.dispatch.expired" in n.recorder.types()
        assert n.journal.known("late-1")
        await n.outbox.drained()
        assert n.published == []
        assert n.engine.containers == {}


async def test_a_stop_that_overtakes_its_order_is_applied_when_the_order_arrives(
    tmp_path: Path,
) -> None:
    async with node(tmp_path) as n:
        stop = events_pb2.TaskStop(task_id="t1", reason="cancelled", dispatch_id="t1-1")
        await n.dispatcher.on_stop(received(stop))
        await n.dispatcher.on_assignment(received(order("t1", "sleep")))
        await n.settled("t1", "STOPPED")
        assert n.published[-1].reason == "cancelled"
        assert n.engine.removed == []  # never created


async def test_preempted_tasks_are_reported_before_the_start_that_preempts_them(
    tmp_path: Path,
) -> None:
    async with node(tmp_path) as n:
        await n.dispatcher.on_assignment(received(order("low", "sleep")))
        await n.settled("low", "STARTED")
        await n.dispatcher.on_assignment(received(order("high", "exit", "0", preempts=["low"])))
        await n.settled("high", "STARTED", "SUCCEEDED")
        order_of = [(s.task_id, State.Name(s.state)) for s in n.published]
        assert order_of.index(("low", "STATE_STOPPED")) < order_of.index(("high", "STATE_STARTED"))
        stopped = next(
            s for s in n.published if s.task_id == "low" and s.state == State.STATE_STOPPED
        )
        assert stopped.reason == "preempted"


async def test_refusals_and_retryable_failures(tmp_path: Path) -> None:
    async with node(tmp_path, max_concurrent_tasks=1) as n:
        await n.dispatcher.on_assignment(received(order("bad", "exit", "0", image="missing/image")))
        await n.settled("bad", "REFUSED")
        assert n.published[-1].reason.startswith("IMAGE_NOT_FOUND:")
        await n.dispatcher.on_assignment(
            received(order("bad-env", "exit", "0", env={"SYMBI_X": "1"}))
        )
        await n.settled("bad-env", "REFUSED")
        assert n.published[-1].reason.startswith("MALFORMED_TASK:")
        wrong = order("elsewhere", "exit", "0")
        wrong.node_id = "node-2"
        await n.dispatcher.on_assignment(received(wrong))
        await n.settled("elsewhere", "REFUSED")
        # A full node is not the task's fault: LOST, so that the scheduler places it elsewhere.
        await n.dispatcher.on_assignment(received(order("a", "sleep")))
        await n.settled("a", "STARTED")
        await n.dispatcher.on_assignment(received(order("b", "exit", "0")))
        await n.settled("b", "LOST")
        assert n.published[-1].reason.startswith("NODE_FULL:")
        assert n.dispatcher.running_task_ids() == ("a",)
        # An operator's kill of a dispatched task is a cancellation for the platform.
        assert n.dispatcher.operator_stop("a", 0.1) == "cancelled"
        n.runner.request_stop("a", grace_s=0.1, reason="cancelled")
        await n.settled("a", "STARTED", "STOPPED")
        assert n.published[-1].reason == "cancelled"


async def test_recovery_reports_what_the_last_run_left(tmp_path: Path) -> None:
    journal = DispatchJournal(tmp_path / "journal.jsonl", retention_s=3600)
    await journal.open()
    now = int(time.time() * 1000)
    for task_id in ("ran", "never"):
        await journal.accept(DispatchRecord(f"{task_id}-1", task_id, "agent-1", 1, 0, now))
    unsent = events_pb2.TaskStatus(task_id="ran", dispatch_id="ran-1", state=State.STATE_STARTED)
    await journal.record_status(unsent, final=False)
    await journal.aclose()
    engine = FakeEngine()
    engine.add_orphan(
        {
            LABEL_MANAGED: "1",
            LABEL_NODE: NODE,
            LABEL_INSTANCE: "dead-instance",
            LABEL_TASK: "ran",
            LABEL_AGENT: "agent-1",
            LABEL_ATTEMPT: "1",
            LABEL_DISPATCH: "ran-1",
        }
    )
    async with node(tmp_path, engine) as n:
        await n.settled("ran", "STARTED", "LOST")  # the unsent status first, then the loss
        await n.settled("never", "LOST")
        assert "container" in n.published[1].reason
        assert engine.containers == {}
        assert n.recorder.types().count("sandbox.task.lost") == 2
        assert n.journal.unfinished() == []
