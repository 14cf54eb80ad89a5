"""Policy writes at thousands of stored agent documents, through service processes on a
real NATS: a write rebuilds what it touches, not the whole set (ADR 0024)."""

from __future__ import annotations

import asyncio
import urllib.request

from nats.js import JetStreamContext

from symbi.policy.v1 import policy_pb2
from symbi_policy.kv_source import KvPolicySource
from symbi_testing import eventually
from symbi_testing.services import ServiceCluster

from .conftest import Replica, open_replica, question

AGENTS = 2_000


def agent_document(i: int) -> str:
    """An agent's policies as the DSL compiler scopes them: every one ``principal ==``."""
    p = f'principal == Symbi::Agent::"agent-{i}"'
    return (
        f'@id("agent/agent-{i}/read") @condition("audit_full")\n'
        f'permit({p}, action == Symbi::Action::"read_context", resource);\n'
        f'@id("agent/agent-{i}/net") permit({p}, action == Symbi::Action::"network", resource)\n'
        'when { context has destination && context.destination like "*.example.com" };\n'
        f'@id("agent/agent-{i}/no-exec") @reason("agent-{i} may not execute")\n'
        f'forbid({p}, action == Symbi::Action::"execute", resource);\n'
    )


async def metrics(replica: Replica) -> dict[str, float]:
    """The replica's ``symbi_policy_*`` series (labels kept in the name)."""
    url = f"http://{replica.process.metrics_address}/metrics"

    def scrape() -> str:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    values = {}
    for line in (await asyncio.to_thread(scrape)).splitlines():
        if line.startswith("symbi_policy_"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


async def status(replica: Replica) -> policy_pb2.PolicyStatus:
    return await replica.call("GetStatus", policy_pb2.GetStatusRequest())


async def test_a_write_at_2000_agent_documents_rebuilds_one_partition(
    services: ServiceCluster, jetstream: JetStreamContext
) -> None:
    async with open_replica(services, "a") as first:
        # 2,000 agents and their documents straight into the bucket (as 2,000 lifecycle
        # creates would leave it), followed by the running replica.
        kv = await jetstream.key_value("symbi_policy")
        source = KvPolicySource(kv, jetstream, "symbi_policy", timeout_s=30)
        entities = [
            {"uid": {"type": "Symbi::Agent", "id": f"agent-{i}"}, "attrs": {}, "parents": []}
            for i in range(AGENTS + 1)
        ]
        entities.append({"uid": {"type": "Symbi::Dataset", "id": "d"}, "attrs": {}, "parents": []})
        entities_version = await source.upsert_entities(entities)
        window = asyncio.Semaphore(128)

        async def put(i: int) -> int:
            async with window:
                document = await source.put_policy(
                    f"agents/agent-{i}", agent_document(i), origin=f"dsl:agent-{i}"
                )
                return document.revision

        version = max(await asyncio.gather(*(put(i) for i in range(AGENTS))))

        async def followed() -> bool:
            now = await status(first)
            return now.version >= version and now.entities_version >= entities_version

        await eventually(followed, timeout=60, message="the first replica follows the bucket")

        # A replica starting on the stored documents builds the same set from scratch.
        async with open_replica(services, "b") as second:
            one, other = await status(first), await status(second)
            assert (other.version, other.entities_version) == (version, entities_version)
            assert other.documents == AGENTS
            assert other.digest == one.digest

            before = await metrics(second)
            put_reply = await second.call(
                "PutPolicy",
                policy_pb2.PutPolicyRequest(
                    id=f"agents/agent-{AGENTS}",
                    source=agent_document(AGENTS),
                    origin=f"dsl:agent-{AGENTS}",
                ),
            )
            after = await metrics(second)
            assert (await status(second)).version == put_reply.policy.version

            def delta(name: str) -> float:
                return after.get(name, 0.0) - before.get(name, 0.0)

            # One document compiled, one principal partition built, no shared partition.
            assert delta("symbi_policy_documents_built_total") == 1
            assert delta('symbi_policy_partitions_built_total{kind="principal"}') == 1
            assert delta('symbi_policy_partitions_built_total{kind="shared"}') == 0
            assert delta("symbi_policy_sets_installed_total") == 1

            result = await second.evaluate(
                question(f"agent-{AGENTS}", "read_context", ("Dataset", "d"))
            )
            assert result.decision == policy_pb2.DECISION_ALLOW_WITH_CONDITIONS
            assert list(result.policies) == [f"agent/agent-{AGENTS}/read"]
            denied = await second.evaluate(
                question(f"agent-{AGENTS}", "execute", ("Agent", f"agent-{AGENTS}"))
            )
            assert list(denied.reasons) == [f"agent-{AGENTS} may not execute"]
            # The decision used the partition built with the write.
            used = await metrics(second)
            assert (
                used['symbi_policy_partitions_built_total{kind="principal_on_use"}']
                == after['symbi_policy_partitions_built_total{kind="principal_on_use"}']
            )

            # The other replica follows the write incrementally to the same set.
            async def same_set() -> bool:
                mine, theirs = await status(first), await status(second)
                return (mine.version, mine.digest) == (theirs.version, theirs.digest)

            await eventually(same_set, timeout=5, message="both replicas hold the same set")
            followed_metrics = await metrics(first)
            assert followed_metrics["symbi_policy_documents_built_total"] >= AGENTS + 1
            assert followed_metrics['symbi_policy_partitions_built_total{kind="shared"}'] == 0
