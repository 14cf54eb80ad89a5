"""The policy service as processes on a real NATS: hot reload, bad pushes, status codes,
failing closed."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from nats.js import JetStreamContext

from symbi.common.v1 import common_pb2
from symbi.policy.v1 import policy_pb2, policy_pb2_grpc
from symbi_common.errors import Aborted, InvalidArgument, NotFound, Unavailable
from symbi_common.grpc import ERROR_METADATA_KEY, open_channel
from symbi_policy.kv_source import policy_key
from symbi_testing import eventually
from symbi_testing.services import ServiceCluster

from .conftest import BASE, Replica, expect_error, open_replica, question

ALLOWED = question("a", "publish", ("Topic", "t"))
FREEZE = '@id("freeze") @reason("publishing is frozen") forbid(principal, action == Symbi::Action::"publish", resource);'


async def test_a_push_through_one_replica_is_in_force_on_the_other_within_a_second(
    services: ServiceCluster,
) -> None:
    async with open_replica(services, "a") as first, open_replica(services, "b") as second:
        version = await first.load_base()
        # Both replicas decide with the same set (the second got it from the bucket).
        result = await eventually(
            lambda: _at_least(second, ALLOWED, version), timeout=5, message="base on b"
        )
        assert result.decision == policy_pb2.DECISION_ALLOW
        assert list(result.policies) == ["trusted-publish"]

        for writer, reader in ((first, second), (second, first)):
            source = (
                FREEZE
                if writer is first
                else '@id("freeze") permit(principal, action == Symbi::Action::"subscribe", resource);'
            )
            put = await writer.call(
                "PutPolicy", policy_pb2.PutPolicyRequest(id="freeze", source=source)
            )
            start = time.perf_counter()
            seen = await eventually(
                lambda put=put, reader=reader: _at_least(reader, ALLOWED, put.policy.version),
                timeout=1.0,
                interval=0.005,
                message="the push in force on the other replica",
            )
            elapsed_ms = (time.perf_counter() - start) * 1000
            print(f"hot reload to the other replica: {elapsed_ms:.1f} ms")
            assert seen.version == put.policy.version
            if writer is first:
                assert seen.decision == policy_pb2.DECISION_DENY
                assert list(seen.reasons) == ["publishing is frozen"]
                assert list(seen.policies) == ["freeze"]
            else:  # the forbid was replaced by a harmless permit
                assert seen.decision == policy_pb2.DECISION_ALLOW


async def test_a_bad_push_leaves_the_old_set_in_force(
    services: ServiceCluster, jetstream: JetStreamContext
) -> None:
    async with open_replica(services, "a") as first, open_replica(services, "b") as second:
        version = await first.load_base()
        await eventually(lambda: _at_least(second, ALLOWED, version), timeout=5)

        # Refused at the door: INVALID_ARGUMENT with the line and column of the problem.
        bad = '@id("x")\npermit(principal, action == Symbi::Action::"publish", resource)\nwhen { principal.trust == };'
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await first.stub.PutPolicy(policy_pb2.PutPolicyRequest(id="bad", source=bad))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        info = _error_info(caught.value)
        assert info.violations, info
        violation = info.violations[0]
        assert violation.field == "x"
        assert (violation.position.line, violation.position.column) == (3, 27)
        assert violation.position.file == "bad"
        # A policy the schema rejects is refused the same way (unknown attribute).
        error = await expect_error(
            first.call(
                "PutPolicy",
                policy_pb2.PutPolicyRequest(
                    id="bad",
                    source='permit(principal, action == Symbi::Action::"publish", resource)\n'
                    "when { principal.nope == 1 };",
                ),
            )
        )
        assert isinstance(error, InvalidArgument)
        assert error.details["line"] == "2"

        # A value written straight into the bucket (bypassing validation) is rejected by
        # every replica, and both keep deciding with the set they had.
        kv = await jetstream.key_value("symbi_policy")
        revision = await kv.put(
            policy_key("sneaky"), b'{"text": "permit(principal, action, resource) when {"}'
        )

        async def rejected(replica: Replica) -> policy_pb2.PolicyStatus:
            status = await replica.call("GetStatus", policy_pb2.GetStatusRequest())
            assert status.last_rejection.version == revision, status
            return status

        for replica in (first, second):
            status = await eventually(lambda replica=replica: rejected(replica), timeout=5)
            assert status.version == version
            assert status.last_rejection.errors[0].position.line == 1
            result = await replica.evaluate(ALLOWED)
            assert result.decision == policy_pb2.DECISION_ALLOW
            assert result.version == version

        # Deleting the bad document recovers on both.
        deleted = await first.call("DeletePolicy", policy_pb2.DeletePolicyRequest(id="sneaky"))
        for replica in (first, second):
            await eventually(
                lambda replica=replica: _at_least(replica, ALLOWED, deleted.version), timeout=5
            )


async def test_status_codes(replica: Replica) -> None:
    version = await replica.load_base()
    # NOT_FOUND
    assert isinstance(
        await expect_error(replica.call("GetPolicy", policy_pb2.GetPolicyRequest(id="nope"))),
        NotFound,
    )
    assert isinstance(
        await expect_error(replica.call("DeletePolicy", policy_pb2.DeletePolicyRequest(id="nope"))),
        NotFound,
    )
    # ABORTED on compare-and-set conflicts
    exists = policy_pb2.PutPolicyRequest(id="base", source=BASE, expected_version=0)
    error = await expect_error(replica.call("PutPolicy", exists))
    assert isinstance(error, Aborted)
    assert error.details["actual"] == str(version)
    stale = policy_pb2.PutPolicyRequest(id="base", source=BASE, expected_version=version + 100)
    assert isinstance(await expect_error(replica.call("PutPolicy", stale)), Aborted)
    stale_delete = policy_pb2.DeletePolicyRequest(id="base", expected_version=version + 100)
    assert isinstance(await expect_error(replica.call("DeletePolicy", stale_delete)), Aborted)
    ok = await replica.call(
        "PutPolicy", policy_pb2.PutPolicyRequest(id="base", source=BASE, expected_version=version)
    )
    assert ok.policy.version > version
    got = await replica.call("GetPolicy", policy_pb2.GetPolicyRequest(id="base"))
    assert (got.source, got.version, got.origin) == (BASE, ok.policy.version, "cedar")
    assert got.updated_by.startswith("grpc:")

    # INVALID_ARGUMENT: malformed requests, empty documents, bad ids, bad origins
    no_type = policy_pb2.AuthorizationRequest(
        principal=policy_pb2.EntityRef(id="a"),
        action="publish",
        resource=policy_pb2.EntityRef(type="Topic", id="t"),
    )
    error = await expect_error(
        replica.call("Evaluate", policy_pb2.EvaluateRequest(request=no_type))
    )
    assert isinstance(error, InvalidArgument)
    assert "request.principal.type" in error.message
    batch = policy_pb2.EvaluateBatchRequest(requests=[ALLOWED, no_type])
    error = await expect_error(replica.call("EvaluateBatch", batch))
    assert "requests[1].principal.type" in error.message
    for request in (
        policy_pb2.PutPolicyRequest(id="empty", source="// nothing here\n"),
        policy_pb2.PutPolicyRequest(id="../bad name", source=BASE),
        policy_pb2.PutPolicyRequest(id="x", source=FREEZE, origin="python"),
    ):
        assert isinstance(await expect_error(replica.call("PutPolicy", request)), InvalidArgument)
    bad_entity = policy_pb2.PutEntitiesRequest(
        entities=[policy_pb2.Entity(uid=policy_pb2.EntityRef(type="Tool", id="t"))]
    )  # a Tool must have a name
    assert isinstance(await expect_error(replica.call("PutEntities", bad_entity)), InvalidArgument)

    # Validate answers with positions instead of failing
    valid = await replica.call("Validate", policy_pb2.ValidateRequest(source=BASE, file="b.cedar"))
    assert valid.valid
    assert not valid.errors
    invalid = await replica.call(
        "Validate",
        policy_pb2.ValidateRequest(
            source="permit(principal, action, resource) when { 1 + };", file="p/x.cedar"
        ),
    )
    assert not invalid.valid
    assert invalid.errors[0].position.file == "p/x.cedar"
    assert (invalid.errors[0].position.line, invalid.errors[0].position.column) == (1, 48)

    # Unknown things are denies with a reason, not errors
    unknown = await replica.evaluate(question("ghost", "publish", ("Topic", "t")))
    assert unknown.decision == policy_pb2.DECISION_DENY
    assert "unknown principal" in unknown.reasons[0]
    action = await replica.evaluate(question("a", "teleport", ("Topic", "t")))
    assert "unknown action" in action.reasons[0]


async def test_listing_is_paginated_and_entities_can_be_deleted(replica: Replica) -> None:
    await replica.load_base()
    for i in range(5):
        await replica.call(
            "PutPolicy",
            policy_pb2.PutPolicyRequest(
                id=f"agents/agent-{i}",
                source=f'@id("agent-{i}-net") permit(principal == Symbi::Agent::"agent-{i}", '
                'action == Symbi::Action::"network", resource);',
                origin=f"dsl:agent-{i}",
            ),
        )
    names: list[str] = []
    token = ""
    pages = 0
    while True:
        listing = await replica.call(
            "ListPolicies",
            policy_pb2.ListPoliciesRequest(page={"page_size": 2, "page_token": token}),
        )
        pages += 1
        names.extend(p.id for p in listing.policies)
        token = listing.page.next_page_token
        if not token:
            break
    assert pages == 3
    assert names == [f"agents/agent-{i}" for i in range(5)] + ["base"]
    assert listing.version > 0
    assert isinstance(
        await expect_error(
            replica.call("ListPolicies", policy_pb2.ListPoliciesRequest(page={"page_token": "!!"}))
        ),
        InvalidArgument,
    )

    # Removing the agent entity turns its allow into a deny (unknown principal).
    assert (await replica.evaluate(ALLOWED)).decision == policy_pb2.DECISION_ALLOW
    deleted = await replica.call(
        "DeleteEntities",
        policy_pb2.DeleteEntitiesRequest(uids=[policy_pb2.EntityRef(type="Agent", id="a")]),
    )
    result = await replica.evaluate(ALLOWED)
    assert result.entities_version == deleted.entities_version
    assert result.decision == policy_pb2.DECISION_DENY
    assert "unknown principal" in result.reasons[0]


async def test_fail_closed_on_policy_errors_and_timeouts(services: ServiceCluster) -> None:
    overflow = (
        '@id("overflow") forbid(principal, action == Symbi::Action::"publish", resource)\n'
        "when { context has risk_score && context.risk_score * 4611686018427387904 > 0 };"
    )
    async with open_replica(services, "a") as replica:
        await replica.load_base()
        await replica.call("PutPolicy", policy_pb2.PutPolicyRequest(id="overflow", source=overflow))
        # Cedar skips a policy that errors, so its forbid would let the permit through:
        # the service denies instead, and says why.
        risky = await replica.evaluate(question("a", "publish", ("Topic", "t"), risk_score=4))
        assert risky.decision == policy_pb2.DECISION_DENY
        assert risky.fail_closed
        assert "fail closed" in risky.reasons[0]
        assert "overflow" in risky.reasons[0]
        # Without the erroring input the permit applies.
        assert (await replica.evaluate(ALLOWED)).decision == policy_pb2.DECISION_ALLOW

    # An evaluation budget nothing can meet: every Cedar call is a timeout, and denies.
    async with open_replica(
        services, "slow", env={"SYMBI_POLICY__MAX_EVALUATION_MS": "0.000001"}
    ) as slow:
        result = await slow.evaluate(ALLOWED)
        assert result.decision == policy_pb2.DECISION_DENY
        assert result.fail_closed
        assert "timed out" in result.reasons[0]
        assert not result.cached  # a fail-closed answer is never remembered
        again = await slow.evaluate(ALLOWED)
        assert again.fail_closed
        assert not again.cached


async def test_a_replica_that_has_not_started_is_unavailable(services: ServiceCluster) -> None:
    # A process that cannot reach NATS never loads a set: its API answers UNAVAILABLE
    # rather than deciding from an empty set.
    process = await asyncio.to_thread(
        services.start, "policy", instance="lonely", env={"SYMBI_NATS__URL": "nats://127.0.0.1:1"}
    )
    assert process.grpc_address is not None
    async with open_channel(process.grpc_address) as channel:
        replica = Replica(process, policy_pb2_grpc.PolicyServiceStub(channel))
        error = await expect_error(replica.evaluate(ALLOWED))
    assert isinstance(error, Unavailable)
    assert "starting" in error.message


async def _at_least(
    replica: Replica, request: policy_pb2.AuthorizationRequest, version: int
) -> policy_pb2.DecisionResult | None:
    result = await replica.evaluate(request)
    return result if result.version >= version else None


def _error_info(exc: grpc.aio.AioRpcError) -> common_pb2.ErrorInfo:
    for key, value in exc.trailing_metadata() or ():
        if key == ERROR_METADATA_KEY and isinstance(value, bytes):
            return common_pb2.ErrorInfo.FromString(value)
    raise AssertionError("no error info in the trailing metadata")


async def test_a_killed_replica_comes_back_with_the_same_set_and_versions(
    services: ServiceCluster,
) -> None:
    async with open_replica(services, "a") as replica:
        await replica.load_base()
        await replica.call("PutPolicy", policy_pb2.PutPolicyRequest(id="freeze", source=FREEZE))
        deleted = await replica.call("DeletePolicy", policy_pb2.DeletePolicyRequest(id="freeze"))
        before = await replica.call("GetStatus", policy_pb2.GetStatusRequest())
        assert before.version == deleted.version  # a delete is the newest policy write
        replica.process.kill()  # SIGKILL, as a crash
    async with open_replica(services, "a") as again:
        after = await again.call("GetStatus", policy_pb2.GetStatusRequest())
        assert (after.version, after.entities_version, after.digest) == (
            before.version,
            before.entities_version,
            before.digest,
        )
        result = await again.evaluate(ALLOWED)
        assert result.decision == policy_pb2.DECISION_ALLOW
        assert result.version == before.version
