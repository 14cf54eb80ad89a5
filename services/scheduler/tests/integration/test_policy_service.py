"""With the real policy service process: every placement is an `allocate` decision made by
its Cedar policies (contract C1), deny fails the task with the policy's reason."""

from __future__ import annotations

from google.protobuf import struct_pb2

from symbi.common.v1 import common_pb2
from symbi.policy.v1 import policy_pb2, policy_pb2_grpc
from symbi.scheduler.v1 import scheduler_pb2 as pb
from symbi_common.grpc import open_channel
from symbi_testing import eventually

from .conftest import POLL_S, Cluster

POLICY = """
@id("allocate-small")
permit(principal is Symbi::Agent, action == Symbi::Action::"allocate", resource is Symbi::Node)
when { context has memory_mb && context.memory_mb <= 1024 };

@id("no-rogues")
forbid(principal == Symbi::Agent::"agent-rogue", action == Symbi::Action::"allocate", resource);
"""


async def test_allocate_is_decided_by_the_policy_service(bare_cluster: Cluster) -> None:
    cluster = bare_cluster
    policy = await cluster.services.start_serving("policy", instance="a")
    assert policy.grpc_address is not None
    async with open_channel(policy.grpc_address) as channel:
        stub = policy_pb2_grpc.PolicyServiceStub(channel)
        await stub.PutPolicy(
            policy_pb2.PutPolicyRequest(id="scheduling", source=POLICY), timeout=10
        )
        # Lifecycle registers agents (contract C2); here the test does.
        entities = [
            policy_pb2.Entity(
                uid=policy_pb2.EntityRef(type="Agent", id=agent), attrs=struct_pb2.Struct()
            )
            for agent in ("agent-ok", "agent-big", "agent-rogue")
        ]
        await stub.PutEntities(policy_pb2.PutEntitiesRequest(entities=entities), timeout=10)
    await cluster.start_node("a")
    scheduler = await cluster.start_scheduler("a")
    await cluster.leader()
    await cluster.wait_nodes(scheduler, 1)

    def request(task_id: str, agent: str, memory_mb: int) -> pb.ScheduleAgentRequest:
        return pb.ScheduleAgentRequest(
            task_id=task_id,
            agent_id=agent,
            limits=common_pb2.ResourceLimits(memory_mb=memory_mb, cpu_millicores=250),
        )

    for req in (
        request("ok", "agent-ok", 512),
        request("big", "agent-big", 2048),
        request("rogue", "agent-rogue", 256),
    ):
        await scheduler.stub.ScheduleAgent(req, timeout=10)

    async def settled() -> dict[str, pb.Task]:
        tasks = {t: await scheduler.task(t) for t in ("ok", "big", "rogue")}
        assert tasks["ok"].state == pb.TASK_STATE_SUCCEEDED, tasks["ok"]
        assert tasks["big"].state == pb.TASK_STATE_FAILED, tasks["big"]
        assert tasks["rogue"].state == pb.TASK_STATE_FAILED, tasks["rogue"]
        return tasks

    tasks = await eventually(settled, timeout=30, interval=POLL_S)
    assert "policy denied allocate on node node-a" in tasks["big"].reason
    assert "policy denied allocate" in tasks["rogue"].reason
    assert [s.task_id for s in cluster.journal.starts] == ["ok"]
