"""The policy service process: the engine, wired to its KV bucket, gRPC and the bus.

``start`` opens the policy bucket, spawns the reloader (hot reload from the bucket's watch)
and the audit publisher (the engine's bounded audit buffer → the audit stream), waits until
the first policy set was built, then answers gRPC and serves contract C1's subjects on the
bus. Every loop runs under the process's TaskGroup; a loop that ends or crashes stops the
process (exit 1), because a replica that no longer follows its bucket must not keep
deciding.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from prometheus_client import REGISTRY

from symbi.policy.v1 import policy_pb2, policy_pb2_grpc
from symbi_common.errors import Aborted, AlreadyExists, FailedPrecondition, Unavailable
from symbi_common.grpc.server import ServiceBinding
from symbi_common.jetstream.spec import BucketSpec, StreamSpec
from symbi_common.runner import Runtime
from symbi_common.service import binding
from symbi_policy.audit import QueueAuditSink
from symbi_policy.audit_publisher import AuditPublisher
from symbi_policy.authz import GRPC_POLICY, GRPC_POLICY_ID, POLICY_RULES, LocalDecider
from symbi_policy.compiler import PolicyCompiler
from symbi_policy.engine import PolicyEngine
from symbi_policy.entities import EntityUid
from symbi_policy.events import QUEUE, BusChangeAnnouncer, PolicyResponders
from symbi_policy.kv_source import KvPolicySource
from symbi_policy.metrics import EngineCollector
from symbi_policy.operations import PolicyOperations, owner_in_force
from symbi_policy.reload import PolicyReloader
from symbi_policy.servicer import PolicyServicer
from symbi_policy.settings import PolicySettings
from symbi_policy.store import PolicyStore

__all__ = ["PolicyService", "build"]

logger = logging.getLogger(__name__)


class PolicyService:
    """Implements the runner's Service protocol for the policy service."""

    def __init__(self, settings: PolicySettings) -> None:
        self.settings = settings
        section = settings.policy
        self.bucket = BucketSpec(
            name="policy",
            description="Policy documents and the entity set (one key each)",
            history=section.bucket_history,
        )
        self.audit = QueueAuditSink(section.audit_queue_size)
        self.engine = PolicyEngine(
            audit=self.audit,
            config=section.engine_config(),
            compiler=PolicyCompiler(cache_size=section.compiler_cache_size),
        )
        self.servicer = PolicyServicer(settings.principal_id)
        self.reloader: PolicyReloader | None = None
        self.operations: PolicyOperations | None = None
        self._collector = EngineCollector(self.engine, self.audit)
        self._registered = False

    def grpc_bindings(self) -> Sequence[ServiceBinding]:
        return [
            binding(
                policy_pb2,
                "PolicyService",
                policy_pb2_grpc.add_PolicyServiceServicer_to_server,
                self.servicer,
                rules=POLICY_RULES,
            )
        ]

    def streams(self) -> Sequence[StreamSpec]:
        return ()

    def buckets(self) -> Sequence[BucketSpec]:
        return (self.bucket,)

    async def start(self, runtime: Runtime) -> None:
        section = self.settings.policy
        name = runtime.provisioner.bucket_name(self.bucket)
        kv = await runtime.js.key_value(name)
        source = KvPolicySource(kv, runtime.js, name, timeout_s=section.store_timeout_s)
        store = PolicyStore(source, self.engine.compiler, id_owner=owner_in_force(self.engine))
        reloader = PolicyReloader(source, self.engine)
        self.reloader = reloader
        bus = runtime.bus
        publisher = AuditPublisher(
            self.audit,
            bus.recorder,
            concurrency=section.audit_concurrency,
            retry_s=section.audit_retry_s,
            publish_timeout_s=section.announce_timeout_s,
        )
        runtime.spawn(publisher.run(), name="policy-audit")
        runtime.spawn(self._follow(reloader, runtime), name="policy-reload")
        try:
            async with asyncio.timeout(section.first_build_timeout_s):
                await reloader.wait_attempted()
        except TimeoutError:
            raise Unavailable(
                f"no policy set built from bucket {name} within "
                f"{section.first_build_timeout_s:.0f} s"
            ) from None
        status = self.engine.status()
        if status.last_rejection is not None:
            logger.error(
                "the stored policy set does not build (%s); this replica denies everything "
                "until it is fixed",
                status.last_rejection.error.message,
            )
        operations = PolicyOperations(
            self.engine,
            store,
            reloader,
            BusChangeAnnouncer(bus, timeout_s=section.announce_timeout_s),
            section,
            audit=self.audit,
        )
        self.operations = operations
        self.servicer.attach(operations)
        if self.settings.grpc.mtls and section.install_grpc_policy:
            await self._install_grpc_policy(operations)
        if self.settings.grpc.mtls and section.operators:
            await self._add_operators(operations, section.operators)
        for subject, responder in PolicyResponders(operations).routes():
            runtime.spawn(bus.serve(subject, responder, queue=QUEUE), name=f"serve {subject}")
        if not self._registered:
            REGISTRY.register(self._collector)
            self._registered = True
        logger.info(
            "policy set v%d (%d policies) and entities v%d in force; bucket %s",
            status.version,
            status.policy_count,
            status.entities_version,
            name,
        )

    def grpc_decider(self) -> LocalDecider:
        """This service's gRPC methods are decided by its own engine (ADR 0013)."""
        return LocalDecider(lambda: self.operations)

    async def _install_grpc_policy(self, operations: PolicyOperations) -> None:
        try:
            await operations.put_policy(
                GRPC_POLICY_ID,
                GRPC_POLICY,
                expected_revision=0,
                actor=f"{self.settings.principal_id} (bootstrap)",
            )
            logger.info("installed the base policy %s", GRPC_POLICY_ID)
        except (AlreadyExists, Aborted, FailedPrecondition):
            pass  # present already (perhaps edited by an operator): keep it

    async def _add_operators(self, operations: PolicyOperations, operators: Sequence[str]) -> None:
        # Written by the service itself before it reports SERVING: no service certificate has
        # to leave the cluster to grant the first operator. A known user is kept as it is
        # (its memberships may have been edited since), as an edited platform/grpc is.
        known = self.engine.state.entities
        names = sorted({name for name in operators if EntityUid("User", name) not in known})
        if not names:
            return
        await operations.put_entities(
            [
                {
                    "uid": {"type": "User", "id": name},
                    "parents": [{"type": "Role", "id": "operators"}],
                }
                for name in names
            ],
            actor=f"{self.settings.principal_id} (bootstrap)",
        )
        logger.info('made %s members of Role::"operators"', ", ".join(names))

    async def close(self) -> None:
        if self._registered:
            REGISTRY.unregister(self._collector)
            self._registered = False
        backlog = len(self.audit)
        if backlog:
            logger.warning("%d audit events were still waiting for delivery at exit", backlog)

    async def _follow(self, reloader: PolicyReloader, runtime: Runtime) -> None:
        await reloader.run()
        if not runtime.stopping:
            # The watch ended on its own: this replica would stop seeing changes.
            raise Unavailable("the policy bucket watch ended")


def build(settings: PolicySettings) -> PolicyService:
    return PolicyService(settings)
