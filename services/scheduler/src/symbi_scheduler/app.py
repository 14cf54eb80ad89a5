"""The scheduler service process: the domain core wired to gRPC, JetStream and the bus.

Every process (leader or standby):
    follows node heartbeats; runs the driver (lease election, then — while leading — ticks
    and scheduling cycles); answers gRPC (forwarding to the leader when standing by).
While leading, additionally:
    consumes task statuses (acknowledgements and results), answers forwarded requests, and
    streams WatchQueue.

Ports: ``JetStreamJournal`` (journal stream), ``KvLeaseStore`` (lease bucket),
``BusDispatcher`` (TaskAssignment / TaskStop), ``PolicyAllocation`` (``allocate`` via the
policy service), ``StatusNotifier`` (TaskStatus for lifecycle).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from symbi.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from symbi_common.errors import Unavailable
from symbi_common.grpc.server import ServiceBinding
from symbi_common.jetstream.spec import BucketSpec, StreamSpec
from symbi_common.policy_client import PolicyClient
from symbi_common.runner import Runtime
from symbi_common.service import binding
from symbi_scheduler.authz import SCHEDULER_RULES

from .api import SchedulerApi
from .bus_dispatch import BusDispatcher
from .bus_lifecycle import StatusNotifier
from .clock import SystemClock
from .convert import NodeDefaults, RequestDefaults
from .core import SchedulerCore
from .driver import DriverStep, SchedulerDriver
from .events import (
    CONSUME_BATCH,
    JOURNAL_STREAM,
    LEASE_KEY,
    STATUS_PULLERS,
    NodeEvents,
    lease_bucket,
    legacy_heartbeat_durable,
    status_consumer,
)
from .forward import LeaderLink
from .heartbeat_follow import HeartbeatFollower
from .js_journal import JetStreamJournal
from .kv_lease import KvLeaseStore
from .lease import LeaderElection
from .metrics import DecisionLatency, StatusCollector
from .nats_errors import nats_call
from .outbox import Outbox
from .policy_allocation import PolicyAllocation
from .priority import SandboxTier
from .servicer import SchedulerServicer
from .settings import SchedulerSettings
from .watch import WatchHub

__all__ = ["SchedulerService", "build"]

log = logging.getLogger(__name__)

_STOP_POLL_S = 0.02


@dataclass
class _Components:
    core: SchedulerCore
    api: SchedulerApi
    link: LeaderLink
    election: LeaderElection
    hub: WatchHub
    latency: DecisionLatency
    instance_id: str
    strategy: str


class SchedulerService:
    """The ``Service`` the runner runs (see symbi_common.runner)."""

    def __init__(self, settings: SchedulerSettings) -> None:
        self.settings = settings
        self.section = settings.scheduler
        self.options = self.section.options()  # ConfigError: exit 2 before anything starts
        self._parts: _Components | None = None
        self._driver: SchedulerDriver | None = None
        self._runtime: Runtime | None = None
        self._collector: StatusCollector | None = None
        self._events: NodeEvents | None = None
        self._leader_tasks: list[asyncio.Task[None]] = []
        self._servicer = SchedulerServicer(self._components)

    # ---------------------------------------------------------------- Service protocol
    def grpc_bindings(self) -> Sequence[ServiceBinding]:
        return [
            binding(
                scheduler_pb2,
                "SchedulerService",
                scheduler_pb2_grpc.add_SchedulerServiceServicer_to_server,
                self._servicer,
                rules=SCHEDULER_RULES,
            )
        ]

    def streams(self) -> Sequence[StreamSpec]:
        return (JOURNAL_STREAM,)

    def buckets(self) -> Sequence[BucketSpec]:
        return (lease_bucket(self.section.lease_ttl_s),)

    async def start(self, runtime: Runtime) -> None:
        self._runtime = runtime
        settings, section = self.settings, self.section
        bus, js, names = runtime.bus, runtime.js, runtime.provisioner
        clock = SystemClock()
        hub = WatchHub(buffer=section.watch_buffer, max_watchers=section.max_watchers)
        latency = DecisionLatency()
        outbox = Outbox(capacity=section.outbox_capacity, concurrency=section.outbox_concurrency)
        enforce = settings.security.enforce_policies
        if not enforce:
            log.warning("security.enforce_policies is off: placements are not asked of policy")
        core = SchedulerCore(
            journal=JetStreamJournal(
                js, names.stream_name(JOURNAL_STREAM), timeout_s=section.port_timeout_s
            ),
            dispatcher=BusDispatcher(
                bus, clock, stop_grace_ms=section.stop_grace_ms, outbox=outbox
            ),
            policy=PolicyAllocation(
                PolicyClient(bus, timeout_s=section.policy_timeout_s), enforce=enforce
            ),
            lifecycle=StatusNotifier(bus, clock, outbox=outbox),
            clock=clock,
            options=self.options,
            listener=hub.publish,
            on_decision=latency.observe,
        )
        async with nats_call("open the lease bucket"):
            kv = await js.key_value(names.bucket_name(lease_bucket(section.lease_ttl_s)))
        election = LeaderElection(
            KvLeaseStore(kv),
            clock,
            holder=settings.principal_id,
            key=LEASE_KEY,
            ttl_s=section.lease_ttl_s,
            renew_interval_s=section.lease_renew_interval_s,
        )
        driver = SchedulerDriver(
            core,
            election,
            clock,
            max_decisions=section.max_decisions_per_cycle,
            on_step=self._on_step,
        )
        defaults = RequestDefaults(
            memory_mb=section.default_memory_mb,
            cpu_millicores=section.default_cpu_millicores,
            execution_timeout_s=section.default_execution_timeout_s,
            tier=SandboxTier.parse(settings.security.default_sandbox_tier),
        )
        api = SchedulerApi(core, driver.wake, defaults)
        events = self._events = NodeEvents(
            core,
            driver.wake,
            node_defaults=NodeDefaults(
                max_tasks=section.node_max_tasks,
                disk_io_mbps=section.node_disk_io_mbps,
                network_io_mbps=section.node_network_io_mbps,
            ),
            node_timeout_s=section.node_timeout_s,
        )
        self._driver = driver
        self._parts = _Components(
            core=core,
            api=api,
            link=LeaderLink(bus, api, timeout_s=section.forward_timeout_s),
            election=election,
            hub=hub,
            latency=latency,
            instance_id=settings.instance_id,
            strategy=section.strategy,
        )
        self._collector = StatusCollector(core.status)
        self._collector.register()
        # Heartbeats: an ordered push consumer per process, created at each start, so the
        # first thing read is every node's latest heartbeat (heartbeat_follow).
        hb_stream = f"{settings.nats.name_prefix}_HEARTBEATS"
        async with nats_call("remove the heartbeat consumer of an earlier version"):
            try:
                await js.delete_consumer(hb_stream, legacy_heartbeat_durable(settings.principal_id))
            except Exception as exc:
                if "not found" not in str(exc).lower():
                    raise
        follower = HeartbeatFollower(bus, hb_stream, events.on_heartbeat)
        runtime.spawn(follower.run(), name="heartbeats")
        runtime.spawn(outbox.run(), name="outbox")
        runtime.spawn(driver.run(), name="scheduler-driver")
        runtime.spawn(self._resign_on_stop(), name="resign-on-stop")
        log.info(
            "scheduler %s started (strategy %s, lease %s)",
            settings.principal_id,
            section.strategy,
            names.bucket_name(lease_bucket(section.lease_ttl_s)),
        )

    async def close(self) -> None:
        if self._collector is not None:
            self._collector.unregister()
            self._collector = None
        if self._parts is not None:
            self._parts.hub.close_all(Unavailable("the scheduler is stopping"))

    # ---------------------------------------------------------------- internals
    def _components(self) -> _Components:
        if self._parts is None:
            raise Unavailable("the scheduler is starting", reason="STARTING")
        return self._parts

    async def _on_step(self, step: DriverStep) -> None:
        parts, runtime, events = self._parts, self._runtime, self._events
        assert parts is not None
        assert runtime is not None
        assert events is not None
        leading = parts.election.is_leader and parts.core.active
        if leading and not self._leader_tasks and not runtime.stopping:
            log.info("leading (term %s): consuming task statuses", parts.election.term)
            spec = status_consumer(self.settings.nats.name_prefix, self.section.ack_timeout_s)
            self._leader_tasks = [
                runtime.spawn(events.apply_reports(), name="status-reports"),
                *(
                    runtime.spawn(
                        runtime.bus.consume(spec, events.on_status, batch=CONSUME_BATCH),
                        name=f"statuses-{i}",
                    )
                    for i in range(STATUS_PULLERS)
                ),
                runtime.spawn(parts.link.serve(), name="forwarded-requests"),
            ]
        elif not parts.election.is_leader and self._leader_tasks:
            log.info("no longer leading: stopping leader work")
            await self._stop_leader_work()
            parts.latency.clear()
            parts.hub.close_all(
                Unavailable("this scheduler stopped leading", reason="SCHEDULER_NOT_ACTIVE")
            )

    async def _stop_leader_work(self) -> None:
        tasks, self._leader_tasks = self._leader_tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def _resign_on_stop(self) -> None:
        """On shutdown, hand the lease over at once (a standby takes over in about one
        renewal interval instead of a lease lifetime). The runner drains NATS early in its
        shutdown, so this watches for the stop and races the drain; when it loses, the lease
        simply expires."""
        runtime, driver = self._runtime, self._driver
        assert runtime is not None
        assert driver is not None
        # The runtime offers a flag, not an event, for "stopping".
        while not runtime.stopping:  # noqa: ASYNC110
            await asyncio.sleep(_STOP_POLL_S)
        await self._stop_leader_work()
        try:
            async with asyncio.timeout(1.0):
                await driver.stop(resign=True)
        except Exception as exc:
            log.info("could not resign the lease on shutdown (it will expire): %s", exc)


def build(settings: SchedulerSettings) -> SchedulerService:
    return SchedulerService(settings)
