"""The lifecycle service process: the state machine wired to gRPC, KV and the bus.

``start`` builds, in order: the two KV buckets' store, the policy gate (over the bus, or
open when ``[security] enforce_policies = false``), the transition publisher, the domain
(:class:`AgentLifecycle`, which cancels the tasks of agents it suspends or terminates through
the scheduler's bus API), then spawns the loops — the index following the agents bucket
(health waits for its first full load), the publisher, the task-status feed, the
reconciler and the ``symbi.rpc.lifecycle.get`` responder — and attaches the servicer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from symbi.lifecycle.v1 import lifecycle_pb2, lifecycle_pb2_grpc
from symbi_common.grpc.server import ServiceBinding
from symbi_common.jetstream.spec import PLATFORM_STREAMS, BucketSpec, StreamSpec
from symbi_common.runner import Runtime
from symbi_common.service import binding
from symbi_lifecycle.authz import LIFECYCLE_RULES
from symbi_lifecycle.events import (
    GET_SUBJECT,
    RESPONDER_QUEUE,
    GetResponder,
    SchedulerTasks,
    TransitionPublisher,
)
from symbi_lifecycle.index import AgentIndex, IndexingStore
from symbi_lifecycle.kv_store import AGENTS_BUCKET, DEFINITIONS_BUCKET, KvAgentStore
from symbi_lifecycle.lifecycle import AgentLifecycle, LifecycleConfig, now_ms
from symbi_lifecycle.policy_gate import BusPolicyGate, OpenPolicyGate
from symbi_lifecycle.ports import PolicyGate
from symbi_lifecycle.reconciler import Reconciler
from symbi_lifecycle.record import StoredAgent
from symbi_lifecycle.servicer import LifecycleParts, LifecycleServicer
from symbi_lifecycle.settings import LifecycleSettings
from symbi_lifecycle.status_feed import TaskStatusFeed

__all__ = ["LifecycleService", "build"]

log = logging.getLogger(__name__)

_INDEX_COMPONENT = "agent-index"


class LifecycleService:
    """The :class:`~symbi_common.runner.Service` of the lifecycle."""

    def __init__(self, settings: LifecycleSettings) -> None:
        self._settings = settings
        self._servicer = LifecycleServicer()
        self.lifecycle: AgentLifecycle | None = None
        self.index: AgentIndex | None = None

    def grpc_bindings(self) -> Sequence[ServiceBinding]:
        return [
            binding(
                lifecycle_pb2,
                "LifecycleService",
                lifecycle_pb2_grpc.add_LifecycleServiceServicer_to_server,
                self._servicer,
                rules=LIFECYCLE_RULES,
            )
        ]

    def streams(self) -> Sequence[StreamSpec]:
        return ()

    def buckets(self) -> Sequence[BucketSpec]:
        return (AGENTS_BUCKET, DEFINITIONS_BUCKET)

    async def start(self, runtime: Runtime) -> None:
        section = self._settings.lifecycle
        bus = runtime.bus
        provisioner = runtime.provisioner
        agents_kv = await runtime.js.key_value(provisioner.bucket_name(AGENTS_BUCKET))
        definitions_kv = await runtime.js.key_value(provisioner.bucket_name(DEFINITIONS_BUCKET))

        index = AgentIndex(queue_size=section.watch_queue_size, max_watchers=section.max_watchers)
        store = IndexingStore(
            KvAgentStore(
                agents_kv, definitions_kv, clock=now_ms, orphan_after_s=section.orphan_after_s
            ),
            index,
        )
        gate: PolicyGate
        if self._settings.security.enforce_policies:
            bus_gate = BusPolicyGate(
                bus,
                timeout_s=section.policy_timeout_s,
                write_timeout_s=section.policy_write_timeout_s,
                install_base_policy=section.install_base_policy,
            )
            runtime.spawn(bus_gate.run(), name="lifecycle-policy-batches")
            gate = bus_gate
        else:
            log.warning("policy enforcement is off: agents are created without policy checks")
            gate = OpenPolicyGate()
        publisher = TransitionPublisher(
            bus, shards=section.event_publishers, queue_size=section.event_queue_size
        )
        lifecycle = AgentLifecycle(
            store,
            gate,
            publisher,
            actor=bus.principal_id,
            config=LifecycleConfig(
                max_restarts=section.max_restarts,
                max_restarts_cap=section.max_restarts_cap,
                restart_backoff_s=section.restart_backoff_s,
                restart_backoff_max_s=section.restart_backoff_max_s,
                stale_after_s=section.stale_after_s,
                max_source_bytes=section.max_source_bytes,
            ),
            tasks=SchedulerTasks(bus, timeout_s=section.scheduler_timeout_s),
        )
        self.lifecycle, self.index = lifecycle, index

        republish_after = now_ms() - int(section.republish_window_s * 1000)

        async def republish_recent(stored: StoredAgent) -> None:
            # A crash between a KV write and its event loses the event; the message and
            # event ids make publishing it again harmless.
            last = stored.record.last
            if stored.record.write_kind == "transition" and last.at_ms >= republish_after:
                await publisher.transitioned(stored)

        async def index_health(ok: bool) -> None:
            await runtime.set_component_health(_INDEX_COMPONENT, ok)

        await runtime.set_component_health(_INDEX_COMPONENT, False)
        runtime.spawn(publisher.run(), name="lifecycle-events")
        runtime.spawn(
            index.follow(agents_kv, on_initial=republish_recent, on_health=index_health),
            name="lifecycle-index",
        )
        events_stream = next(s for s in PLATFORM_STREAMS if s.name == "EVENTS")
        feed = TaskStatusFeed(
            bus,
            lifecycle,
            stream=provisioner.stream_name(events_stream),
            batch=section.status_batch,
        )
        runtime.spawn(feed.run(), name="lifecycle-task-status")
        runtime.spawn(
            Reconciler(lifecycle, index, interval_s=section.reconcile_interval_s).run(),
            name="lifecycle-reconciler",
        )
        runtime.spawn(
            bus.serve(GET_SUBJECT, GetResponder(lifecycle), queue=RESPONDER_QUEUE),
            name="lifecycle-get",
        )
        self._servicer.attach(
            LifecycleParts(
                lifecycle, index, page_size=section.list_page_size, page_max=section.list_page_max
            )
        )

    async def close(self) -> None:
        return None


def build(settings: LifecycleSettings) -> LifecycleService:
    return LifecycleService(settings)
