"""The sandbox service process: the node's runner wired to gRPC and to the secure bus.

Start-up (after the process joined the bus as ``node-<instance>``): the node's issuer
certificate is published (agents it certifies chain to it); dockerd is reached; the runner
reconciles containers an earlier run left and probes every tier; the dispatch journal is
read; what the earlier run left unfinished is reported; then the status outbox, the task
queue, the stop orders and the heartbeats run. Shutdown stops the running tasks (short grace)
and removes their containers; statuses not yet published stay in the journal and are
published by the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from types import MappingProxyType

from symbi.bus.v1 import events_pb2
from symbi.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc
from symbi_common.bus import load_credentials
from symbi_common.errors import ConfigError, FailedPrecondition, Unavailable
from symbi_common.grpc.server import ServiceBinding
from symbi_common.jetstream.spec import BucketSpec, StreamSpec, Subjects
from symbi_common.launcher import issuer_for
from symbi_common.policy_client import PolicyClient
from symbi_common.runner import Runtime
from symbi_common.service import binding
from symbi_sandbox.agent_sessions import AgentBusConfig, AgentChannelHost, AgentSessions
from symbi_sandbox.authz import sandbox_rules
from symbi_sandbox.bus_channel import BusChannelBackend
from symbi_sandbox.channel import ChannelConfig, ChannelServer, EgressConfig
from symbi_sandbox.channel.egress import DEFAULT_BLOCKED_NETWORKS
from symbi_sandbox.dispatch import Heartbeats, TaskDispatcher
from symbi_sandbox.engine import DockerEngine, DockerEngineConfig
from symbi_sandbox.events import PLATFORM, control_consumer, task_consumer
from symbi_sandbox.identity import AgentIdentityIssuer
from symbi_sandbox.journal import DispatchJournal
from symbi_sandbox.nursery import Nursery
from symbi_sandbox.output import OutputLimits, OutputPublisher
from symbi_sandbox.policy_gate import BusAuditSink, BusEgressPolicy, PolicyGate
from symbi_sandbox.reporting import StatusOutbox
from symbi_sandbox.runner import Execution, RunnerConfig, SandboxRunner
from symbi_sandbox.servicer import SandboxServicer
from symbi_sandbox.settings import MAX_WORK_ROOT_CHARS, SandboxSettings
from symbi_sandbox.task import LimitPolicy, ResolvedLimits
from symbi_sandbox.tiers import Tier

__all__ = ["SandboxService", "build", "runner_config"]

_log = logging.getLogger(__name__)


def runner_config(settings: SandboxSettings) -> RunnerConfig:
    """The runner's configuration from ``[sandbox]`` (and ``[security]`` for the tier)."""
    s = settings.sandbox
    limits = LimitPolicy(
        default=ResolvedLimits(
            memory_mb=s.default_memory_mb,
            cpu_millicores=s.default_cpu_millicores,
            max_processes=s.default_processes,
            timeout_s=s.default_timeout_s,
            tmpfs_mb=s.tmpfs_mb,
            disk_io_mbps=s.default_disk_io_mbps,
            network_io_mbps=s.default_network_io_mbps,
        ),
        maximum=ResolvedLimits(
            memory_mb=s.max_memory_mb,
            cpu_millicores=s.max_cpu_millicores,
            max_processes=s.max_processes,
            timeout_s=s.max_timeout_s,
            tmpfs_mb=s.tmpfs_mb,
        ),
    )
    return RunnerConfig(
        node_id=settings.principal_id,
        work_root=settings.work_root,
        default_tier=Tier.parse(settings.default_tier),
        limits=limits,
        max_concurrent_tasks=s.max_concurrent_tasks,
        stop_grace_s=s.stop_grace_s,
        log_buffer_bytes=s.log_buffer_bytes,
        uid_base=s.uid_base,
        uid_count=s.uid_count,
        labels=MappingProxyType(dict(s.labels)),
        runtimes=MappingProxyType({Tier.DOCKER: s.docker_runtime, Tier.GVISOR: s.gvisor_runtime}),
    )


class SandboxService:
    """The Service the process runner runs (see the module docstring)."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.config = runner_config(settings)
        self._servicer = SandboxServicer(self, default_grace_s=settings.sandbox.stop_grace_s)
        self.runner: SandboxRunner | None = None
        self.dispatcher: TaskDispatcher | None = None
        self._engine: DockerEngine | None = None
        self._sessions: AgentSessions | None = None
        self._channels: ChannelServer | None = None
        self._journal: DispatchJournal | None = None
        self._outbox: StatusOutbox | None = None
        self._output: OutputPublisher | None = None
        self._intake: list[asyncio.Task[None]] = []
        self._stopping = False

    # ------------------------------------------------------------------ Service protocol

    def grpc_bindings(self) -> Sequence[ServiceBinding]:
        return [
            binding(
                sandbox_pb2,
                "SandboxService",
                sandbox_pb2_grpc.add_SandboxServiceServicer_to_server,
                self._servicer,
                rules=sandbox_rules(self.settings.principal_id),
            )
        ]

    def streams(self) -> Sequence[StreamSpec]:
        return ()  # a worker node uses the platform's streams only (and may not create any)

    def buckets(self) -> Sequence[BucketSpec]:
        return ()

    async def start(self, runtime: Runtime) -> None:
        settings, s = self.settings, self.settings.sandbox
        node_id = settings.principal_id
        prefix = settings.nats.name_prefix
        bus = runtime.bus
        if bus.directory is None:
            raise FailedPrecondition("the node's bus has no key directory")

        issuer = AgentIdentityIssuer(
            load_credentials(
                settings.keys_dir, issuer_for(node_id), settings.security.root_certificate
            ),
            bus.directory,
        )
        await issuer.publish_issuer()

        nursery = Nursery("sandbox")
        runtime.spawn(nursery.run(), name="sandbox-tasks")
        await nursery.ready()

        client = (
            PolicyClient(bus, timeout_s=s.policy_timeout_s)
            if settings.security.enforce_policies
            else None
        )
        gate = PolicyGate(client, bus.recorder, node_id=node_id)
        self._sessions = AgentSessions(
            AgentBusConfig(
                nats=runtime.nats,
                js=runtime.js,
                keyring=bus.keyring,
                name_prefix=prefix,
                bus=settings.bus.model_copy(update={"group_key_wait_s": 5.0}),
                default_timeout_s=s.default_timeout_s,
                certificate_margin_s=s.agent_certificate_margin_s,
            ),
            issuer,
            nursery,
        )
        backend = BusChannelBackend(
            bus, gate, self._sessions, request_timeout_s=max(1.0, s.channel_call_timeout_s - 5.0)
        )
        blocked = (
            tuple(s.egress_blocked_networks)
            if s.egress_blocked_networks is not None
            else DEFAULT_BLOCKED_NETWORKS
        )
        self._channels = ChannelServer(
            backend,
            egress_policy=BusEgressPolicy(gate),
            audit=BusAuditSink(bus.recorder, node_id),
            node_id=node_id,
            config=ChannelConfig(
                rate_per_s=s.channel_rate_per_s,
                burst=s.channel_burst,
                call_timeout_s=s.channel_call_timeout_s,
                egress=EgressConfig(
                    blocked_networks=blocked,
                    allowed_networks=tuple(s.egress_allowed_networks),
                    burst_bytes=s.egress_burst_bytes,
                ),
            ),
        )

        if s.output_max_bytes > 0:

            async def publish_output(message: events_pb2.TaskOutput, msg_id: str) -> None:
                await bus.publish(
                    PLATFORM, message, subject=Subjects.task_output(message.task_id), msg_id=msg_id
                )

            self._output = OutputPublisher(
                publish_output,
                nursery,
                OutputLimits(
                    chunk_bytes=s.output_chunk_bytes,
                    linger_s=s.output_linger_ms / 1000,
                    max_bytes=s.output_max_bytes,
                ),
                node_id=node_id,
            )

        self._engine = await DockerEngine.connect(DockerEngineConfig(base_url=s.docker_url))
        runner = SandboxRunner(
            self._engine,
            self.config,
            channels=AgentChannelHost(self._channels, self._sessions, node_id),
            on_start=self._on_execution,
        )
        entered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        runtime.spawn(self._hold(runner, entered), name="sandbox-runner")
        await entered
        if s.probe_tiers:
            await runner.probe_tiers(s.probe_image)
        await runtime.set_component_health("docker", True)

        self._journal = DispatchJournal(
            settings.data_dir / "dispatches.jsonl", retention_s=s.dispatch_retention_s
        )
        recovery = await self._journal.open()

        async def publish(status: events_pb2.TaskStatus, msg_id: str) -> None:
            await asyncio.wait_for(
                bus.publish(
                    PLATFORM, status, subject=Subjects.task_status(status.task_id), msg_id=msg_id
                ),
                15.0,
            )

        outbox = StatusOutbox(self._journal, publish, node_id=node_id)
        self.dispatcher = TaskDispatcher(
            runner,
            self._journal,
            outbox,
            nursery,
            bus.recorder,
            node_id=node_id,
            start_concurrency=s.start_concurrency,
            preempt_grace_s=s.preempt_grace_s,
            stop_grace_s=s.stop_grace_s,
        )
        await self.dispatcher.recover(recovery, runner.lost_tasks)
        self.runner = runner
        self._outbox = outbox
        runtime.spawn(outbox.run(), name="status-outbox")
        heartbeats = Heartbeats(
            bus,
            runner,
            self.dispatcher,
            interval_s=s.heartbeat_interval_s,
            set_health=runtime.set_component_health,
        )
        self._intake = [
            runtime.spawn(
                bus.consume(task_consumer(node_id, prefix), self.dispatcher.on_assignment),
                name="task-queue",
            ),
            runtime.spawn(
                bus.consume(control_consumer(node_id, prefix), self.dispatcher.on_stop),
                name="task-control",
            ),
            runtime.spawn(heartbeats.run(), name="heartbeats"),
        ]
        self._install_signals(runtime)

    def _on_execution(self, execution: Execution) -> None:
        # Tasks' output goes on the bus; the start-up probes' (before self.runner) does not.
        if self.runner is not None and self._output is not None:
            self._output.attach(execution)

    # ------------------------------------------------------------------ orderly stop

    def _install_signals(self, runtime: Runtime) -> None:
        # The process runner drains NATS before it cancels the service's loops, and nats-py's
        # drain waits out its whole timeout for a pull subscription whose fetch has timed out
        # once (the expiry status stays queued). Stopping intake first also lets the node
        # stop its tasks and publish their statuses while it still can. A second signal stops
        # at once.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal, runtime, sig.name)

    def _on_signal(self, runtime: Runtime, name: str) -> None:
        if self._stopping:
            runtime.request_stop(f"signal {name} (again)")
            return
        self._stopping = True
        _log.info("signal %s: stopping intake and running tasks", name)
        runtime.spawn(self._stop_then_exit(runtime, name), name="orderly-stop")

    async def _stop_then_exit(self, runtime: Runtime, name: str) -> None:
        budget = self.settings.sandbox.shutdown_grace_s + 10.0
        try:
            async with asyncio.timeout(budget):
                for task in self._intake:
                    task.cancel()
                await asyncio.gather(*self._intake, return_exceptions=True)
                if self.runner is not None:
                    await self.runner.shutdown(grace_s=self.settings.sandbox.shutdown_grace_s)
                if self.dispatcher is not None:
                    await self.dispatcher.idle()
                if self._outbox is not None:
                    await self._outbox.drained()
                if self._output is not None:
                    await self._output.drained()
                if self._sessions is not None:
                    await self._sessions.aclose()
        except TimeoutError:
            _log.warning("orderly stop took longer than %.0f s; stopping anyway", budget)
        finally:
            runtime.request_stop(f"signal {name}")

    async def _hold(self, runner: SandboxRunner, entered: asyncio.Future[None]) -> None:
        """Keeps the runner open (reconciled on entry) until the process stops."""
        try:
            async with runner:
                entered.set_result(None)
                try:
                    await asyncio.Event().wait()
                finally:
                    await runner.shutdown(grace_s=self.settings.sandbox.shutdown_grace_s)
        except BaseException as exc:
            if not entered.done():
                entered.set_exception(
                    exc if isinstance(exc, Exception) else Unavailable("runner did not start")
                )
            raise

    async def close(self) -> None:
        if self._sessions is not None:
            await self._sessions.aclose()
        if self._channels is not None:
            await self._channels.aclose()
        if self._journal is not None:
            await self._journal.aclose()
        if self._engine is not None:
            await self._engine.aclose()

    # ------------------------------------------------------------------ NodeHandle

    @property
    def node_id(self) -> str:
        return self.settings.principal_id

    @property
    def max_concurrent_tasks(self) -> int:
        return self.config.max_concurrent_tasks

    def require_runner(self) -> SandboxRunner:
        if self.runner is None:
            raise Unavailable("the sandbox node is still starting", reason="STARTING")
        return self.runner

    def kill_requested(self, task_id: str, grace_s: float) -> str:
        if self.dispatcher is None:
            return "killed on request"
        return self.dispatcher.operator_stop(task_id, grace_s)


def build(settings: SandboxSettings) -> SandboxService:
    if len(str(settings.work_root)) > MAX_WORK_ROOT_CHARS:
        raise ConfigError(
            f"sandbox.work_root = {str(settings.work_root)!r} is longer than "
            f"{MAX_WORK_ROOT_CHARS} characters (agent sockets live below it and Unix socket "
            "paths are limited to 107 bytes); set [sandbox] work_root "
            "(SYMBI_SANDBOX__WORK_ROOT) to a shorter directory",
            reason="CONFIG_INVALID",
            details={"key": "sandbox.work_root"},
        )
    return SandboxService(settings)
