"""The runner's life cycle against a fake engine (the real one: tests/integration)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from types import MappingProxyType

import pytest

from symbi_common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from symbi_sandbox.engine import EngineInfo, ManagedContainer, RuntimeInfo
from symbi_sandbox.hardening import (
    LABEL_AGENT,
    LABEL_INSTANCE,
    LABEL_MANAGED,
    LABEL_NODE,
    LABEL_TASK,
    ContainerSpec,
)
from symbi_sandbox.runner import (
    ChannelEndpoint,
    ExecutionState,
    RunnerConfig,
    SandboxRunner,
)
from symbi_sandbox.task import ResourceLimits, TaskSpec
from symbi_sandbox.tiers import Tier


class FakeContainer:
    def __init__(self, cid: str, spec: ContainerSpec | None, labels: Mapping[str, str]) -> None:
        self.cid = cid
        self.spec = spec
        self.labels = dict(labels)
        self.state = "created"
        self.exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.oom = False
        self.output: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()
        self.signals: list[str] = []

    def finish(self, code: int) -> None:
        if not self.exit.done():
            self.state = "exited"
            self.exit.set_result(code)
            self.output.put_nowait(None)


class FakeEngine:
    """Commands: ("exit", N), ("echo", text), ("sleep",), ("oom",), ("term-ok",)."""

    def __init__(self, runtimes: Mapping[str, tuple[str, ...]] | None = None) -> None:
        self.runtimes = runtimes or {"runc": (), "runsc": ("--network=none", "--host-uds=open")}
        self.containers: dict[str, FakeContainer] = {}
        self.removed: list[str] = []
        self._ids = itertools.count(1)

    async def info(self) -> EngineInfo:
        return EngineInfo(
            "fake",
            4 * 1024**3,
            2,
            MappingProxyType({n: RuntimeInfo(n, a) for n, a in self.runtimes.items()}),
        )

    async def create(self, spec: ContainerSpec) -> str:
        if spec.image == "missing/image":
            raise NotFound("image missing/image not present", reason="IMAGE_NOT_FOUND")
        if any(c.spec and c.spec.name == spec.name for c in self.containers.values()):
            raise AlreadyExists("name in use")
        cid = f"c{next(self._ids):012d}"
        self.containers[cid] = FakeContainer(cid, spec, spec.labels)
        return cid

    def add_orphan(self, labels: Mapping[str, str]) -> str:
        cid = f"o{next(self._ids):012d}"
        self.containers[cid] = FakeContainer(cid, None, labels)
        self.containers[cid].state = "running"
        return cid

    async def start(self, container_id: str) -> None:
        c = self.containers[container_id]
        assert c.spec is not None
        command = c.spec.command
        if command and command[0] == "nonexistent":
            raise InvalidArgument("executable file not found", reason="COMMAND_NOT_FOUND")
        c.state = "running"
        if command[0] == "exit":
            c.finish(int(command[1]))
        elif command[0] == "echo":
            c.output.put_nowait(("stdout", command[1].encode()))
            c.output.put_nowait(("stderr", b"warn"))
            c.finish(0)
        elif command[0] == "oom":
            c.oom = True
            c.finish(137)

    async def wait(self, container_id: str, timeout_s: float) -> int:
        return await asyncio.wait_for(asyncio.shield(self.containers[container_id].exit), timeout_s)

    async def oom_killed(self, container_id: str) -> bool:
        return self.containers[container_id].oom

    async def stop(self, container_id: str, grace_s: float) -> None:
        c = self.containers.get(container_id)
        if c is not None:
            c.signals.append(f"TERM/{grace_s:g}")
            c.finish(0 if c.spec and c.spec.command[0] == "term-ok" else 143)

    async def kill(self, container_id: str) -> None:
        c = self.containers.get(container_id)
        if c is not None:
            c.signals.append("KILL")
            c.finish(137)

    async def remove(self, container_id: str) -> None:
        c = self.containers.pop(container_id, None)
        if c is not None:
            c.finish(137)
            self.removed.append(container_id)

    async def output(self, container_id: str) -> AsyncIterator[tuple[str, bytes]]:
        c = self.containers[container_id]
        while (item := await c.output.get()) is not None:
            yield item

    async def list_managed(self, labels: Mapping[str, str]) -> list[ManagedContainer]:
        return [
            ManagedContainer(c.cid, c.cid, c.state, MappingProxyType(c.labels))
            for c in self.containers.values()
            if all(c.labels.get(k) == v for k, v in labels.items())
        ]

    async def aclose(self) -> None:
        return None


class FakeEndpoint:
    def __init__(self) -> None:
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


class FakeChannels:
    def __init__(self) -> None:
        self.opened: list[tuple[str, Path, FakeEndpoint]] = []
        self.rates: list[int] = []

    async def open(
        self, task: TaskSpec, directory: Path, *, egress_bytes_per_s: int = 0
    ) -> ChannelEndpoint:
        endpoint = FakeEndpoint()
        self.rates.append(egress_bytes_per_s)
        self.opened.append((task.task_id, directory, endpoint))
        return endpoint


def config(tmp_path: Path, **kw: object) -> RunnerConfig:
    return RunnerConfig(node_id="node-1", work_root=tmp_path / "work", **kw)  # type: ignore[arg-type]


def spec(task_id: str, *command: str, **kw: object) -> TaskSpec:
    return TaskSpec(
        task_id=task_id,
        agent_id="agent-1",
        image=str(kw.pop("image", "symbi/busybox")),
        command=command,
        **kw,  # type: ignore[arg-type]
    )


async def test_exit_code_output_and_everything_removed(tmp_path: Path) -> None:
    engine, channels = FakeEngine(), FakeChannels()
    async with SandboxRunner(engine, config(tmp_path), channels=channels) as runner:
        execution = await runner.start(spec("t1", "echo", "hello"))
        result = await execution.wait()
        assert result.state is ExecutionState.EXITED
        assert result.exit_code == 0
        assert result.succeeded
        assert execution.output.text("stdout") == "hello"
        assert execution.output.text("stderr") == "warn"
        assert engine.containers == {}
        _, directory, endpoint = channels.opened[0]
        assert endpoint.closed
        assert not directory.exists()
        assert runner.get("t1").result == result  # kept for Get after the end
        assert result.tier is Tier.GVISOR  # the config default


async def test_non_zero_exit_and_oom_are_distinct(tmp_path: Path) -> None:
    async with SandboxRunner(FakeEngine(), config(tmp_path), channels=FakeChannels()) as runner:
        failed = await runner.run(spec("t1", "exit", "3"))
        oom = await runner.run(spec("t2", "oom", limits=ResourceLimits(memory_mb=32)))
    assert (failed.state, failed.exit_code) == (ExecutionState.EXITED, 3)
    assert not failed.succeeded
    assert oom.state is ExecutionState.OOM_KILLED
    assert "32 MB" in oom.reason


async def test_timeout_kills_and_reports_timed_out(tmp_path: Path) -> None:
    engine = FakeEngine()
    async with SandboxRunner(engine, config(tmp_path), channels=FakeChannels()) as runner:
        execution = await runner.start(spec("t1", "sleep", limits=ResourceLimits(timeout_s=0.05)))
        cid = execution.container_id
        result = await execution.wait()
    assert result.state is ExecutionState.TIMED_OUT
    assert "0.05 s" in result.reason
    assert cid in engine.removed


async def test_stop_uses_grace_then_reports_killed(tmp_path: Path) -> None:
    engine = FakeEngine()
    async with SandboxRunner(engine, config(tmp_path), channels=FakeChannels()) as runner:
        execution = await runner.start(spec("t1", "term-ok"))
        container = engine.containers[execution.container_id or ""]
        result = await runner.stop("t1", grace_s=2, reason="preempted by a critical task")
    assert result.state is ExecutionState.KILLED
    assert result.reason == "preempted by a critical task"
    assert container.signals == ["TERM/2"]
    assert engine.containers == {}


async def test_refusals_leave_nothing(tmp_path: Path) -> None:
    engine, channels = FakeEngine(), FakeChannels()
    async with SandboxRunner(engine, config(tmp_path), channels=channels) as runner:
        with pytest.raises(NotFound, match="not present"):
            await runner.start(spec("t1", "exit", "0", image="missing/image"))
        with pytest.raises(InvalidArgument, match="executable"):
            await runner.start(spec("t2", "nonexistent"))
        assert runner.get("t1").state is ExecutionState.REFUSED
        assert runner.get("t2").result is not None
        assert engine.containers == {}
        assert all(endpoint.closed for _, _, endpoint in channels.opened)
        assert list((tmp_path / "work").iterdir()) == []
        assert runner.running() == []


async def test_unavailable_tier_is_refused(tmp_path: Path) -> None:
    engine = FakeEngine(runtimes={"runc": ()})
    async with SandboxRunner(engine, config(tmp_path), channels=FakeChannels()) as runner:
        assert runner.available_tiers == {Tier.DOCKER}
        with pytest.raises(FailedPrecondition, match="offers: docker"):
            await runner.start(spec("t1", "exit", "0"))  # default gvisor: not downgraded
        ok = await runner.run(spec("t2", "exit", "0", tier=Tier.DOCKER))
        assert ok.succeeded
        with pytest.raises(FailedPrecondition):
            await runner.start(spec("t3", "exit", "0", tier=Tier.DOCKER, min_tier=Tier.GVISOR))
    assert engine.containers == {}


async def test_channel_on_gvisor_needs_host_sockets(tmp_path: Path) -> None:
    engine = FakeEngine(runtimes={"runc": (), "runsc": ("--network=none",)})
    async with SandboxRunner(engine, config(tmp_path), channels=FakeChannels()) as runner:
        info = await runner.node_info()
        assert info.tiers == (Tier.DOCKER, Tier.GVISOR)
        assert info.channel_tiers == (Tier.DOCKER,)
        with pytest.raises(FailedPrecondition, match="host-uds"):
            await runner.start(spec("t1", "exit", "0"))
        result = await runner.run(spec("t2", "exit", "0", channel=False))
        assert result.tier is Tier.GVISOR


async def test_capacity_and_duplicates(tmp_path: Path) -> None:
    cfg = config(tmp_path, max_concurrent_tasks=1)
    async with SandboxRunner(FakeEngine(), cfg, channels=FakeChannels()) as runner:
        await runner.start(spec("t1", "sleep"))
        with pytest.raises(AlreadyExists):
            await runner.start(spec("t1", "sleep"))
        with pytest.raises(ResourceExhausted):
            await runner.start(spec("t2", "sleep"))
        info = await runner.node_info()
        assert info.running_task_ids == ("t1",)
        assert info.memory_free_mb == info.memory_total_mb - 256
        await runner.stop("t1", grace_s=0)


async def test_shutdown_stops_running_tasks(tmp_path: Path) -> None:
    engine = FakeEngine()
    async with SandboxRunner(engine, config(tmp_path), channels=FakeChannels()) as runner:
        executions = [await runner.start(spec(f"t{i}", "sleep")) for i in range(3)]
    for execution in executions:
        assert execution.result is not None
        assert execution.result.state is ExecutionState.KILLED
        assert "shutting down" in execution.result.reason
    assert engine.containers == {}


async def test_cancelled_runner_still_removes_containers(tmp_path: Path) -> None:
    engine = FakeEngine()
    started = asyncio.Event()

    async def body() -> None:
        async with SandboxRunner(engine, config(tmp_path), channels=FakeChannels()) as runner:
            await runner.start(spec("t1", "sleep"))
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(body())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert engine.containers == {}


async def test_reconcile_reports_and_removes_orphans_of_this_node_only(tmp_path: Path) -> None:
    engine = FakeEngine()
    labels = {LABEL_MANAGED: "1", LABEL_NODE: "node-1", LABEL_INSTANCE: "dead-instance"}
    orphan = engine.add_orphan({**labels, LABEL_TASK: "lost-1", LABEL_AGENT: "agent-9"})
    other_node = engine.add_orphan({**labels, LABEL_NODE: "node-2", LABEL_TASK: "x"})
    stale_dir = tmp_path / "work" / "lost-1-a1"
    stale_dir.mkdir(parents=True)
    async with SandboxRunner(engine, config(tmp_path), channels=FakeChannels()) as runner:
        assert [(t.task_id, t.agent_id, t.container_id) for t in runner.lost_tasks] == [
            ("lost-1", "agent-9", orphan)
        ]
        assert orphan not in engine.containers
        assert other_node in engine.containers
        assert not stale_dir.exists()
        # Reconciling again while tasks run leaves this runner's own containers alone.
        execution = await runner.start(spec("t1", "sleep"))
        assert await runner.reconcile() == []
        assert execution.container_id in engine.containers
        await runner.stop("t1", grace_s=0)


async def test_log_followers_end_with_the_task(tmp_path: Path) -> None:
    async with SandboxRunner(FakeEngine(), config(tmp_path), channels=FakeChannels()) as runner:
        execution = await runner.start(spec("t1", "echo", "streamed"))
        chunks = [c async for c in execution.logs()]
        assert b"".join(c.data for c in chunks if c.stream == "stdout") == b"streamed"


async def test_not_accepting_after_exit(tmp_path: Path) -> None:
    runner = SandboxRunner(FakeEngine(), config(tmp_path), channels=FakeChannels())
    async with runner:
        pass
    with pytest.raises(Exception, match="not accepting"):
        await runner.start(spec("t1", "exit", "0"))
    with pytest.raises(NotFound):
        runner.get("nope")
