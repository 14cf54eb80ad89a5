"""The task runner of one worker node: start → stream output → exit → remove, always.

:class:`SandboxRunner` is an async context manager. Entering it reads the engine's runtimes
(which tiers this node offers), prepares the work directory and reconciles: containers that
carry this node's labels but another runner instance's id are left from an earlier run (the
process was killed); they are removed and reported in :attr:`SandboxRunner.lost_tasks` so the
caller can report their tasks lost. Leaving it stops every running task (grace period, then
kill) and removes its container.

:meth:`SandboxRunner.start` validates, chooses the tier, creates and starts the container and
returns an :class:`Execution` once it runs; anything wrong (malformed task, unknown image,
tier unavailable, start failure) raises a :class:`SymbiError` and leaves nothing behind. Each
execution is then supervised by a task in the runner's task group: its output is pumped into
a bounded :class:`LogBuffer`, its wall-clock timeout is enforced, a stop request (preemption)
gets a grace period, and whatever happens — exit, OOM kill, timeout, stop, engine failure,
cancellation — the container, its channel and its directory are removed before the
:class:`TaskResult` is published.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, Protocol, Self

from symbi_common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    SymbiError,
    Unavailable,
)
from symbi_sandbox.blockdev import BlockDevice, NoBlockDevice, find_block_device
from symbi_sandbox.channel.bandwidth import bytes_per_second
from symbi_sandbox.engine import ContainerEngine, EngineInfo
from symbi_sandbox.hardening import (
    LABEL_AGENT,
    LABEL_ATTEMPT,
    LABEL_DISPATCH,
    LABEL_INSTANCE,
    LABEL_MANAGED,
    LABEL_NODE,
    LABEL_TASK,
    build_container_spec,
)
from symbi_sandbox.logs import LogBuffer, LogChunk
from symbi_sandbox.risk import RiskAssessor
from symbi_sandbox.task import LimitPolicy, ResolvedLimits, ResourceLimits, TaskSpec
from symbi_sandbox.tiers import Tier, TierChoice, choose_tier
from symbi_sandbox.workspace import TaskDirectory, UidPool, Workspace

__all__ = [
    "AGENT_SDK_PATH",
    "ChannelEndpoint",
    "ChannelHost",
    "Execution",
    "ExecutionState",
    "LostTask",
    "NodeInfo",
    "RunnerConfig",
    "SandboxRunner",
    "TaskResult",
]

_log = logging.getLogger(__name__)

AGENT_SDK_PATH = Path(__file__).resolve().parent / "agent_sdk"
_OOM_EXIT = 137


class ExecutionState(enum.Enum):
    """Where an execution is. Mirrors ``symbi.sandbox.v1.ExecutionState`` (plus ``LOST``)."""

    STARTING = "starting"
    RUNNING = "running"
    EXITED = "exited"
    OOM_KILLED = "oom_killed"
    TIMED_OUT = "timed_out"
    KILLED = "killed"  # stopped on request (preemption, cancel, node shutdown)
    REFUSED = "refused"  # never ran: malformed, unknown image, tier unavailable, start failed
    LOST = "lost"  # the engine failed under it; its container was removed

    @property
    def terminal(self) -> bool:
        return self not in (ExecutionState.STARTING, ExecutionState.RUNNING)


@dataclass(frozen=True)
class TaskResult:
    """How an execution ended. ``exit_code`` is ``None`` when the task never ran."""

    task_id: str
    agent_id: str
    attempt: int
    state: ExecutionState
    exit_code: int | None
    reason: str
    tier: Tier | None
    container_id: str | None
    started_at_ms: int | None
    finished_at_ms: int
    log_bytes: int = 0

    @property
    def succeeded(self) -> bool:
        return self.state is ExecutionState.EXITED and self.exit_code == 0


@dataclass(frozen=True)
class LostTask:
    """A container of an earlier run found (and removed) at reconciliation."""

    task_id: str
    agent_id: str
    attempt: int
    container_id: str
    container_state: str
    instance_id: str
    dispatch_id: str = ""


@dataclass(frozen=True)
class NodeInfo:
    """What this node offers and holds (for heartbeats and ``NodeInfo``)."""

    node_id: str
    memory_total_mb: int
    memory_free_mb: int  # total less the memory limits of running tasks
    cpu_total_millicores: int
    cpu_free_millicores: int
    tiers: tuple[Tier, ...]
    channel_tiers: tuple[Tier, ...]  # tiers on which the agent socket works
    running_task_ids: tuple[str, ...]
    docker_version: str
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    disk_io_tiers: tuple[Tier, ...] = ()  # tiers on which a disk_io_mbps limit is enforced

    @property
    def running_tasks(self) -> int:
        return len(self.running_task_ids)


class ChannelEndpoint(Protocol):
    """One task's open agent socket."""

    async def aclose(self) -> None:
        """Stops serving the socket and ends its connections."""
        ...


class ChannelHost(Protocol):
    """Serves agent sockets (implemented by :class:`symbi_sandbox.channel.ChannelServer`)."""

    async def open(
        self, task: TaskSpec, directory: Path, *, egress_bytes_per_s: int = 0
    ) -> ChannelEndpoint:
        """Binds the task's socket inside ``directory`` and starts serving it.

        ``egress_bytes_per_s`` caps the task's egress through the channel (0: unlimited).
        """
        ...


def _default_runtimes() -> Mapping[Tier, str]:
    return MappingProxyType({Tier.DOCKER: "runc", Tier.GVISOR: "runsc"})


@dataclass(frozen=True)
class RunnerConfig:
    """Per-node runner settings."""

    node_id: str
    work_root: Path
    default_tier: Tier = Tier.GVISOR
    runtimes: Mapping[Tier, str] = field(default_factory=_default_runtimes)
    limits: LimitPolicy = field(default_factory=LimitPolicy)
    risk: RiskAssessor = field(default_factory=RiskAssessor)
    max_concurrent_tasks: int = 32
    stop_grace_s: float = 10.0
    uid_base: int = 200_000
    uid_count: int = 4096
    log_buffer_bytes: int = 1024 * 1024
    finished_retention: int = 1024
    sdk_dir: Path | None = AGENT_SDK_PATH
    cleanup_timeout_s: float = 30.0
    #: After exit, reading the rest of the output gives up after this long without any new
    #: bytes, or after ``drain_max_s`` in all (dockerd sends ~3 MB/s of short lines).
    drain_idle_s: float = 5.0
    drain_max_s: float = 60.0
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: Tiers whose runtime honours Docker's blkio throttling. gVisor's sentry does the
    #: container's file I/O through its gofer outside the container's blkio cgroup: measured,
    #: a 1 MB/s read limit does not slow it at all, so gVisor is not listed.
    disk_io_tiers: frozenset[Tier] = frozenset({Tier.DOCKER})
    #: Finds the disk holding Docker's data root (``blockdev.py``; replaced in unit tests).
    find_disk: Callable[[str], BlockDevice] = find_block_device

    def __post_init__(self) -> None:
        if not self.node_id or not all(c.isalnum() or c in "-_." for c in self.node_id):
            raise InvalidArgument(
                f"node_id must be non-empty [A-Za-z0-9_.-], got {self.node_id!r}",
                details={"field": "node_id"},
            )
        if self.max_concurrent_tasks < 1:
            raise InvalidArgument("max_concurrent_tasks must be ≥ 1")
        object.__setattr__(self, "default_tier", Tier.parse(self.default_tier))


class Execution:
    """One task attempt on this node: its state, output and eventual :class:`TaskResult`."""

    def __init__(
        self, task: TaskSpec, choice: TierChoice, limits: ResolvedLimits, log_bytes: int
    ) -> None:
        self.task = task
        self.tier = choice.tier
        self.tier_reason = choice.reason
        self.limits = limits
        self.state = ExecutionState.STARTING
        self.container_id: str | None = None
        self.started_at_ms: int | None = None
        self.output = LogBuffer(log_bytes)
        self._result: asyncio.Future[TaskResult] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._stop_reason = ""
        self._stop_grace_s = 0.0

    @property
    def task_id(self) -> str:
        return self.task.task_id

    @property
    def result(self) -> TaskResult | None:
        """The result once finished, else ``None``."""
        return self._result.result() if self._result.done() else None

    async def wait(self) -> TaskResult:
        """Waits until the execution has finished and its container is gone."""
        return await asyncio.shield(self._result)

    def logs(self, *, from_start: bool = True) -> AsyncIterator[LogChunk]:
        """The task's output (retained part first), following it until the task ends."""
        return self.output.follow(from_start=from_start)

    def _request_stop(self, reason: str, grace_s: float) -> None:
        if not self._stop.is_set():
            self._stop_reason = reason
            self._stop_grace_s = grace_s
            self._stop.set()

    def _finish(self, state: ExecutionState, exit_code: int | None, reason: str) -> TaskResult:
        self.state = state
        self.output.close()
        result = TaskResult(
            task_id=self.task.task_id,
            agent_id=self.task.agent_id,
            attempt=self.task.attempt,
            state=state,
            exit_code=exit_code,
            reason=reason,
            tier=self.tier,
            container_id=self.container_id,
            started_at_ms=self.started_at_ms,
            finished_at_ms=_now_ms(),
            log_bytes=self.output.total_bytes,
        )
        if not self._result.done():
            self._result.set_result(result)
        return result


class SandboxRunner:
    """Runs tasks in hardened containers on this node (see the module docstring)."""

    def __init__(
        self,
        engine: ContainerEngine,
        config: RunnerConfig,
        *,
        channels: ChannelHost | None = None,
        on_start: Callable[[Execution], None] | None = None,
    ) -> None:
        self._engine = engine
        self._config = config
        self._channels = channels
        # Told of every execution once its container runs, before any of its output is read.
        self._on_start = on_start
        self.instance_id = uuid.uuid4().hex[:16]
        self._workspace = Workspace(config.work_root)
        self._uids = UidPool(config.uid_base, config.uid_count)
        self._active: dict[str, Execution] = {}
        self._finished: OrderedDict[str, Execution] = OrderedDict()
        self._group: asyncio.TaskGroup | None = None
        self._engine_info: EngineInfo | None = None
        self._tiers: frozenset[Tier] = frozenset()
        self._channel_tiers: frozenset[Tier] = frozenset()
        self._lost: tuple[LostTask, ...] = ()
        self._broken: dict[Tier, str] = {}  # tiers whose probe failed, and why
        self._disk: BlockDevice | None = None
        self._disk_problem = "Docker's data root is not known yet"
        self._disk_reported: str | None = None
        self._closing = False

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        await self.refresh_node()
        await asyncio.to_thread(self._workspace.prepare)
        self._lost = tuple(await self.reconcile())
        group = asyncio.TaskGroup()
        await group.__aenter__()
        self._group = group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.shutdown()
        finally:
            group, self._group = self._group, None
            if group is not None:
                await group.__aexit__(exc_type, exc, tb)

    async def shutdown(self, grace_s: float | None = None) -> None:
        """Refuses new tasks, stops running ones (grace, then kill) and waits for cleanup."""
        self._closing = True
        grace = self._config.stop_grace_s if grace_s is None else grace_s
        running = list(self._active.values())
        for execution in running:
            execution._request_stop("the node's sandbox service is shutting down", grace)
        if running:
            budget = grace + self._config.cleanup_timeout_s
            _, pending = await asyncio.wait(
                [asyncio.ensure_future(e.wait()) for e in running], timeout=budget
            )
            for waiter in pending:
                waiter.cancel()
            if pending:
                _log.error("%d executions did not finish within %.0f s", len(pending), budget)

    @property
    def node_id(self) -> str:
        return self._config.node_id

    @property
    def lost_tasks(self) -> tuple[LostTask, ...]:
        """Tasks whose containers were left by an earlier run (found when entering)."""
        return self._lost

    @property
    def available_tiers(self) -> frozenset[Tier]:
        return self._tiers

    @property
    def broken_tiers(self) -> Mapping[Tier, str]:
        """Tiers registered in the engine whose probe failed, and why (see probe_tiers)."""
        return MappingProxyType(dict(self._broken))

    async def refresh_node(self) -> EngineInfo:
        """Re-reads the engine (runtimes registered now decide the tiers offered)."""
        info = await self._engine.info()
        self._engine_info = info
        tiers: set[Tier] = set()
        channel_tiers: set[Tier] = set()
        for tier, runtime in self._config.runtimes.items():
            registered = info.runtimes.get(runtime)
            if registered is None or tier in self._broken:
                continue
            tiers.add(tier)
            if tier is not Tier.GVISOR or _gvisor_allows_host_sockets(registered.args):
                channel_tiers.add(tier)
        self._tiers = frozenset(tiers)
        self._channel_tiers = frozenset(channel_tiers)
        await self._find_disk(info)
        if Tier.GVISOR in tiers and Tier.GVISOR not in channel_tiers:
            _log.warning(
                "runtime %s is registered without --host-uds=open: gVisor tasks cannot use the "
                "agent socket; add it to the runtime's runtimeArgs in /etc/docker/daemon.json",
                self._config.runtimes[Tier.GVISOR],
            )
        return info

    async def _find_disk(self, info: EngineInfo) -> None:
        known = self._disk
        if not info.docker_root_dir:
            self._disk, self._disk_problem = None, "dockerd does not name its data root"
        else:
            try:
                self._disk = await asyncio.to_thread(self._config.find_disk, info.docker_root_dir)
            except NoBlockDevice as exc:
                self._disk, self._disk_problem = None, str(exc)
        if self._disk is not None and self._disk != known:
            _log.info(
                "disk I/O limits throttle %s (%s) on tiers %s",
                self._disk.path,
                self._disk.number,
                ", ".join(t.label for t in sorted(self.disk_io_tiers)) or "none",
            )
        elif self._disk is None and self._disk_problem != self._disk_reported:
            self._disk_reported = self._disk_problem
            _log.warning(
                "disk I/O limits cannot be enforced on this node: %s; tasks that ask for one "
                "are refused (DISK_IO_LIMIT_UNAVAILABLE)",
                self._disk_problem,
            )

    @property
    def disk_io_tiers(self) -> frozenset[Tier]:
        """Tiers offered here on which a ``disk_io_mbps`` limit is enforced."""
        if self._disk is None:
            return frozenset()
        return self._tiers & self._config.disk_io_tiers

    def disk_io_unavailable(self, tier: Tier) -> str | None:
        """Why a disk I/O limit cannot be enforced on ``tier`` here (``None``: it can)."""
        if self._disk is None:
            return self._disk_problem
        if tier not in self._config.disk_io_tiers:
            return (
                f"the {tier.label} tier's runtime does its file I/O outside the container's "
                "block I/O cgroup, so Docker's throttling does not reach it"
            )
        return None

    # ------------------------------------------------------------------ queries

    def get(self, task_id: str) -> Execution:
        """The running or recently finished execution of ``task_id``."""
        found = self._active.get(task_id) or self._finished.get(task_id)
        if found is None:
            raise NotFound(f"no execution of task {task_id!r} on node {self.node_id}")
        return found

    def running(self) -> list[Execution]:
        return list(self._active.values())

    async def node_info(self) -> NodeInfo:
        info = self._engine_info or await self.refresh_node()
        running = list(self._active.values())
        memory_total = info.memory_bytes // (1024 * 1024)
        cpu_total = info.cpus * 1000
        return NodeInfo(
            node_id=self.node_id,
            memory_total_mb=memory_total,
            memory_free_mb=max(0, memory_total - sum(e.limits.memory_mb for e in running)),
            cpu_total_millicores=cpu_total,
            cpu_free_millicores=max(0, cpu_total - sum(e.limits.cpu_millicores for e in running)),
            tiers=tuple(sorted(self._tiers)),
            channel_tiers=tuple(sorted(self._channel_tiers)),
            disk_io_tiers=tuple(sorted(self.disk_io_tiers)),
            running_task_ids=tuple(e.task_id for e in running),
            docker_version=info.server_version,
            labels=self._config.labels,
        )

    # ------------------------------------------------------------------ reconcile

    async def reconcile(self) -> list[LostTask]:
        """Removes this node's containers that belong to no live execution of this runner."""
        found = await self._engine.list_managed({LABEL_MANAGED: "1", LABEL_NODE: self.node_id})
        ours = {e.container_id for e in self._active.values()}
        lost: list[LostTask] = []
        for container in found:
            if container.container_id in ours:
                continue
            if container.labels.get(LABEL_INSTANCE) == self.instance_id:
                continue  # being started right now by this runner
            labels = container.labels
            try:
                attempt = int(labels.get(LABEL_ATTEMPT, "1"))
            except ValueError:
                attempt = 1
            lost.append(
                LostTask(
                    task_id=labels.get(LABEL_TASK, ""),
                    agent_id=labels.get(LABEL_AGENT, ""),
                    attempt=attempt,
                    container_id=container.container_id,
                    container_state=container.state,
                    instance_id=labels.get(LABEL_INSTANCE, ""),
                    dispatch_id=labels.get(LABEL_DISPATCH, ""),
                )
            )
            _log.warning(
                "removing container %s of task %s left by an earlier run (state %s)",
                container.container_id[:12],
                labels.get(LABEL_TASK),
                container.state,
            )
            await self._engine.remove(container.container_id)
            await asyncio.to_thread(self._workspace.remove, lost[-1].task_id, attempt)
        if not self._active:
            for leftover in await asyncio.to_thread(self._workspace.leftovers):
                await asyncio.to_thread(_rmtree, leftover)
        return lost

    # ------------------------------------------------------------------ run

    async def start(self, task: TaskSpec) -> Execution:
        """Starts ``task``; returns once its container runs. Raises (leaving nothing) if refused."""
        if self._group is None or self._closing:
            raise Unavailable(f"sandbox runner on {self.node_id} is not accepting tasks")
        if task.task_id in self._active:
            raise AlreadyExists(
                f"task {task.task_id!r} is already running on node {self.node_id}",
                reason="TASK_RUNNING",
            )
        if len(self._active) >= self._config.max_concurrent_tasks:
            raise ResourceExhausted(
                f"node {self.node_id} runs {len(self._active)} tasks, its maximum",
                reason="NODE_FULL",
            )
        limits = self._config.limits.resolve(task.limits)
        assessed = self._config.risk.assess(task.risk).tier if task.risk is not None else None
        choice = choose_tier(
            requested=task.tier,
            default=self._config.default_tier,
            available=self._tiers,
            assessed=assessed,
            policy_minimum=task.min_tier,
        )
        if limits.disk_io_mbps > 0:
            why = self.disk_io_unavailable(choice.tier)
            if why is not None and task.limits.disk_io_mbps:
                raise FailedPrecondition(
                    f"task.limits.disk_io_mbps = {limits.disk_io_mbps} cannot be enforced on "
                    f"tier {choice.tier.label} on node {self.node_id}: {why}",
                    reason="DISK_IO_LIMIT_UNAVAILABLE",
                    details={"field": "limits.disk_io_mbps", "tier": choice.tier.label},
                )
            if why is not None:
                # The node's default, not the task's request: applied where it can be
                # (reported once at start, see _find_disk).
                limits = replace(limits, disk_io_mbps=0)
        if task.channel:
            if self._channels is None:
                raise FailedPrecondition(
                    "the task asks for the agent channel but this runner serves none",
                    reason="NO_CHANNEL",
                )
            if choice.tier not in self._channel_tiers:
                raise FailedPrecondition(
                    f"the agent channel does not work on tier {choice.tier.label} on this node: "
                    f"runtime {self._config.runtimes[choice.tier]} lacks --host-uds=open",
                    reason="CHANNEL_UNAVAILABLE",
                )
        execution = Execution(task, choice, limits, self._config.log_buffer_bytes)
        self._active[task.task_id] = execution
        try:
            await self._launch(execution)
        except BaseException as exc:
            self._active.pop(task.task_id, None)
            reason = exc.message if isinstance(exc, SymbiError) else f"start failed: {exc!r}"
            execution._finish(ExecutionState.REFUSED, None, reason)
            self._retain(execution)
            raise
        if self._on_start is not None:
            try:
                self._on_start(execution)
            except Exception:  # an observer must not fail a task that runs
                _log.exception("start observer failed for task %s", task.task_id)
        return execution

    async def run(self, task: TaskSpec) -> TaskResult:
        """Starts ``task`` and waits for its result."""
        return await (await self.start(task)).wait()

    async def stop(
        self, task_id: str, *, grace_s: float | None = None, reason: str = "stopped on request"
    ) -> TaskResult:
        """Stops a running task (SIGTERM, SIGKILL after the grace period); returns its result."""
        execution = self.get(task_id)
        self.request_stop(task_id, grace_s=grace_s, reason=reason)
        return await execution.wait()

    def request_stop(
        self, task_id: str, *, grace_s: float | None = None, reason: str = "stopped on request"
    ) -> Execution | None:
        """Asks a running task to stop without waiting; ``None`` when it is not running here.

        The first request wins: a later one (another reason, another grace) changes nothing.
        """
        execution = self._active.get(task_id)
        if execution is None:
            return None
        grace = self._config.stop_grace_s if grace_s is None else grace_s
        execution._request_stop(reason, max(0.0, grace))
        return execution

    async def probe_tiers(self, image: str, *, timeout_s: float = 60.0) -> dict[Tier, str | None]:
        """Runs a trivial hardened container on every offered tier; drops tiers that fail.

        A runtime can be registered in dockerd and still be unable to start containers (a
        broken runsc install, a kernel without what it needs); such a tier is no longer
        offered, so tasks that need it are refused instead of failing at start. Returns, per
        tier probed, ``None`` when it works or why it does not. A missing probe image proves
        nothing either way: the tier stays offered.
        """
        outcome: dict[Tier, str | None] = {}
        for tier in sorted(self._tiers):
            probe = TaskSpec(
                task_id=f"probe-{tier.label}-{self.instance_id}",
                agent_id="symbi-probe",
                image=image,
                command=("true",),
                tier=tier,
                channel=False,
                limits=ResourceLimits(timeout_s=timeout_s),
            )
            problem: str | None = None
            try:
                result = await (await self.start(probe)).wait()
                if not result.succeeded:
                    problem = f"probe container ended {result.state.value}: {result.reason}"
            except SymbiError as exc:
                if exc.reason == "IMAGE_NOT_FOUND":
                    _log.warning("cannot probe tier %s: %s", tier.label, exc.message)
                    outcome[tier] = None
                    continue
                problem = exc.message
            finally:
                self._finished.pop(probe.task_id, None)
            outcome[tier] = problem
            if problem is not None:
                _log.error("tier %s does not work on this node: %s", tier.label, problem)
                self._broken[tier] = problem
                self._tiers = self._tiers - {tier}
                self._channel_tiers = self._channel_tiers - {tier}
        return outcome

    async def _launch(self, execution: Execution) -> None:
        task = execution.task
        uid = self._uids.acquire()
        directory: TaskDirectory | None = None
        endpoint: ChannelEndpoint | None = None
        try:
            directory = await asyncio.to_thread(
                self._workspace.create, task.task_id, task.attempt, task.code
            )
            if task.channel and self._channels is not None:
                endpoint = await self._channels.open(
                    task,
                    directory.channel,
                    egress_bytes_per_s=bytes_per_second(execution.limits.network_io_mbps),
                )
            spec = build_container_spec(
                task,
                tier=execution.tier,
                runtime=self._config.runtimes[execution.tier],
                limits=execution.limits,
                node_id=self.node_id,
                instance_id=self.instance_id,
                uid=uid,
                channel_dir=str(directory.channel) if endpoint is not None else None,
                sdk_dir=str(self._config.sdk_dir) if self._config.sdk_dir else None,
                code_dir=str(directory.code) if directory.code else None,
                disk_device=self._disk.path if self._disk is not None else None,
            )
            execution.container_id = await self._engine.create(spec)
            execution.started_at_ms = _now_ms()
            await self._engine.start(execution.container_id)
            execution.state = ExecutionState.RUNNING
        except BaseException:
            await _shielded(self._release(execution, uid, endpoint, directory is not None))
            raise
        assert self._group is not None
        self._group.create_task(
            self._supervise(execution, uid, endpoint), name=f"sandbox-task-{task.task_id}"
        )
        _log.info(
            "task %s (agent %s) running in %s on %s (%s)",
            task.task_id,
            task.agent_id,
            execution.container_id[:12],
            execution.tier.label,
            execution.tier_reason,
        )

    async def _supervise(
        self, execution: Execution, uid: int, endpoint: ChannelEndpoint | None
    ) -> None:
        state, exit_code, reason = ExecutionState.LOST, None, "supervisor ended unexpectedly"
        pump = asyncio.create_task(self._pump(execution), name=f"sandbox-out-{execution.task_id}")
        try:
            state, exit_code, reason = await self._await_exit(execution)
            await self._drain(execution, pump)
        except asyncio.CancelledError:
            state, reason = ExecutionState.KILLED, "the sandbox runner was cancelled"
            raise
        except Exception as exc:
            _log.exception("supervising task %s failed", execution.task_id)
            state, reason = ExecutionState.LOST, f"engine failure while running: {exc}"
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await _shielded(asyncio.gather(pump, return_exceptions=True))
            await _shielded(self._release(execution, uid, endpoint, True))
            self._active.pop(execution.task_id, None)
            result = execution._finish(state, exit_code, reason)
            self._retain(execution)
            _log.info(
                "task %s finished: %s exit=%s (%s)",
                execution.task_id,
                result.state.value,
                result.exit_code,
                result.reason,
            )

    async def _await_exit(self, execution: Execution) -> tuple[ExecutionState, int | None, str]:
        cid = execution.container_id
        assert cid is not None
        timeout = execution.limits.timeout_s
        waiter = asyncio.create_task(
            self._engine.wait(cid, timeout + self._config.stop_grace_s * 2 + 60.0)
        )
        stopper = asyncio.create_task(execution._stop.wait())
        try:
            done, _ = await asyncio.wait(
                [waiter, stopper], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if waiter in done:
                code = waiter.result()
                if code != 0 and await self._engine.oom_killed(cid):
                    return ExecutionState.OOM_KILLED, code, _oom_reason(execution)
                if code == _OOM_EXIT and execution.tier is Tier.GVISOR:
                    # gVisor's own OOM killer ends the task with SIGKILL without a cgroup OOM
                    # event, so Docker does not always flag it; nothing else sends SIGKILL to a
                    # task we did not stop.
                    return (
                        ExecutionState.OOM_KILLED,
                        code,
                        _oom_reason(execution)
                        + " (SIGKILL inside gVisor; Docker did not flag OOM)",
                    )
                return ExecutionState.EXITED, code, f"exited with code {code}"
            if stopper in done:
                grace = execution._stop_grace_s
                await self._engine.stop(cid, grace)
                code = await asyncio.wait_for(waiter, self._config.cleanup_timeout_s + grace)
                return ExecutionState.KILLED, code, execution._stop_reason
            await self._engine.kill(cid)
            code = await asyncio.wait_for(waiter, self._config.cleanup_timeout_s)
            return (
                ExecutionState.TIMED_OUT,
                code,
                f"killed at its wall-clock timeout of {timeout:g} s",
            )
        finally:
            for helper in (waiter, stopper):
                helper.cancel()
            await asyncio.gather(waiter, stopper, return_exceptions=True)

    async def _drain(self, execution: Execution, pump: asyncio.Task[None]) -> None:
        """Lets the output stream end after exit: it does once dockerd has sent the rest.

        The deadline is on progress, not on size: draining goes on while output keeps coming
        (at most ``drain_max_s``) and gives up after ``drain_idle_s`` without any.
        """
        deadline = time.monotonic() + self._config.drain_max_s
        seen = execution.output.total_bytes
        while not pump.done():
            wait = min(self._config.drain_idle_s, deadline - time.monotonic())
            if wait <= 0:
                break
            await asyncio.wait([pump], timeout=wait)
            if execution.output.total_bytes == seen and not pump.done():
                break  # no progress for drain_idle_s
            seen = execution.output.total_bytes
        if not pump.done():
            _log.warning(
                "output of task %s not drained after exit (%d bytes read); cut",
                execution.task_id,
                execution.output.total_bytes,
            )

    async def _pump(self, execution: Execution) -> None:
        assert execution.container_id is not None
        try:
            async for stream, data in self._engine.output(execution.container_id):
                execution.output.append(stream, data)
        except SymbiError as exc:
            _log.warning("output of task %s cut: %s", execution.task_id, exc)

    async def _release(
        self,
        execution: Execution,
        uid: int,
        endpoint: ChannelEndpoint | None,
        has_directory: bool,
    ) -> None:
        task = execution.task
        try:
            if execution.container_id is not None:
                await self._remove_container(execution.container_id)
            if endpoint is not None:
                try:
                    await asyncio.wait_for(endpoint.aclose(), self._config.cleanup_timeout_s)
                except Exception:
                    _log.exception("closing the channel of task %s failed", task.task_id)
            if has_directory:
                await asyncio.to_thread(self._workspace.remove, task.task_id, task.attempt)
        finally:
            self._uids.release(uid)

    async def _remove_container(self, container_id: str) -> None:
        deadline = time.monotonic() + self._config.cleanup_timeout_s
        delay = 0.1
        while True:
            try:
                await self._engine.remove(container_id)
                return
            except SymbiError as exc:
                if time.monotonic() + delay > deadline:
                    # Reconciliation at the next start removes it (it carries our labels).
                    _log.error("could not remove container %s: %s", container_id[:12], exc)
                    return
                await asyncio.sleep(delay)  # back-off between retries, not a wait for state
                delay = min(delay * 2, 2.0)

    def _retain(self, execution: Execution) -> None:
        self._finished[execution.task_id] = execution
        self._finished.move_to_end(execution.task_id)
        while len(self._finished) > self._config.finished_retention:
            self._finished.popitem(last=False)


def _oom_reason(execution: Execution) -> str:
    return f"killed by the out-of-memory killer at its {execution.limits.memory_mb} MB limit"


def _gvisor_allows_host_sockets(args: tuple[str, ...]) -> bool:
    # runsc refuses connect() to host Unix sockets unless told otherwise; the agent socket is
    # a host socket bind-mounted into the sandbox.
    for i, arg in enumerate(args):
        value = None
        if arg.startswith(("--host-uds=", "-host-uds=")):
            value = arg.split("=", 1)[1]
        elif arg in ("--host-uds", "-host-uds") and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(("--fsgofer-host-uds", "-fsgofer-host-uds")):
            value = "all" if "=false" not in arg else "none"
        if value in ("open", "all"):
            return True
    return False


async def _shielded(aw: Awaitable[Any]) -> None:
    """Runs cleanup to completion even when the caller is being cancelled."""
    future = asyncio.ensure_future(aw)
    try:
        await asyncio.shield(future)
    except asyncio.CancelledError:
        await future  # finish the cleanup, then let the cancellation through
        raise


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _now_ms() -> int:
    return int(time.time() * 1000)
