"""The KV adapter of the PolicySource port on a real NATS JetStream, and hot reload through it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from nats.js import JetStreamContext

from symbi_common.config import NatsSection
from symbi_common.errors import Aborted, InvalidArgument, NotFound
from symbi_common.jetstream import Provisioner
from symbi_common.jetstream.spec import BucketSpec
from symbi_policy import (
    Allow,
    AuthzRequest,
    Deny,
    EntityDeleted,
    EntityPut,
    EntityUid,
    PolicyDeleted,
    PolicyEngine,
    PolicyPut,
    PolicyReloader,
    PolicyStore,
    SourceSnapshot,
)
from symbi_policy.kv_source import KvPolicySource, entity_key, policy_key

ALLOW = '@id("pub") permit(principal, action == Symbi::Action::"publish", resource);'
FORBID = '@id("nopub") @reason("frozen") forbid(principal, action == Symbi::Action::"publish", resource);'
AGENT = {"uid": {"type": "Symbi::Agent", "id": "a"}, "attrs": {"trust": "trusted"}, "parents": []}
TOPIC = {"uid": {"type": "Symbi::Topic", "id": "t"}, "attrs": {}, "parents": []}


@pytest_asyncio.fixture
async def source(jetstream: JetStreamContext) -> AsyncIterator[KvPolicySource]:
    spec = BucketSpec(name="policytest", description="test", history=16)
    provisioner = Provisioner(jetstream, NatsSection())
    await provisioner.ensure_bucket(spec)
    name = provisioner.bucket_name(spec)
    kv = await jetstream.key_value(name)
    yield KvPolicySource(kv, jetstream, name, timeout_s=5)


def test_keys_are_readable_and_valid():
    assert policy_key("agents/analyst") == "policy.agents/analyst"
    assert policy_key("base.net") == "policy.base=2Enet"
    assert entity_key(EntityUid("Symbi::Agent", "a.b é")) == (
        "entity.Symbi=3A=3AAgent.a=2Eb=20=C3=A9"
    )


async def test_versions_compare_and_set_and_deletes(source: KvPolicySource) -> None:
    first = await source.put_policy("base.net", ALLOW, updated_by="alice")
    assert first.revision >= 1
    got = await source.get_policy("base.net")
    assert (got.text, got.revision, got.updated_by) == (ALLOW, first.revision, "alice")
    with pytest.raises(Aborted, match="not the expected 0"):
        await source.put_policy("base.net", FORBID, expected_revision=0)
    with pytest.raises(Aborted, match=f"revision {first.revision}, not the expected 999"):
        await source.put_policy("base.net", FORBID, expected_revision=999)
    second = await source.put_policy("base.net", FORBID, expected_revision=first.revision)
    assert second.revision > first.revision

    revision = await source.upsert_entities([AGENT, TOPIC])
    snap = await source.snapshot()
    assert snap.policy_version == second.revision
    assert snap.entities_version == revision
    assert json.loads(snap.entities.text) == [AGENT, TOPIC]  # type: ignore[union-attr]

    with pytest.raises(Aborted):
        await source.delete_policy("base.net", expected_revision=first.revision)
    deleted = await source.delete_policy("base.net", expected_revision=second.revision)
    assert deleted > revision
    with pytest.raises(NotFound):
        await source.get_policy("base.net")
    with pytest.raises(NotFound):
        await source.delete_policy("base.net")
    # The delete marker keeps the version from going backwards for a fresh reader.
    assert (await source.snapshot()).policy_version == deleted
    # A deleted document may be created again with "must not exist".
    again = await source.put_policy("base.net", ALLOW, expected_revision=0)
    assert again.revision > deleted

    gone = await source.delete_entities([EntityUid("Symbi::Agent", "a")])
    snap = await source.snapshot()
    assert snap.entities_version == gone
    assert json.loads(snap.entities.text) == [TOPIC]  # type: ignore[union-attr]
    with pytest.raises(InvalidArgument):
        await source.put_entities("[]", expected_revision=1)


async def test_watch_reports_each_change(source: KvPolicySource) -> None:
    await source.put_policy("a", ALLOW)
    watch = source.watch()
    events: list[object] = [await anext(watch)]
    await source.put_policy("b", FORBID)
    await source.upsert_entities([AGENT])
    await source.delete_entities([EntityUid("Symbi::Agent", "a")])
    await source.delete_policy("a")
    async with asyncio.timeout(5):
        for _ in range(4):
            events.append(await anext(watch))
    await watch.aclose()
    assert isinstance(events[0], SourceSnapshot)
    assert [d.name for d in events[0].policies] == ["a"]
    assert [type(e) for e in events[1:]] == [PolicyPut, EntityPut, EntityDeleted, PolicyDeleted]


async def test_reload_through_the_bucket_keeps_the_good_set(
    source: KvPolicySource, jetstream: JetStreamContext
) -> None:
    store = PolicyStore(source)
    await store.upsert_entities([AGENT, TOPIC])
    await store.put("base", ALLOW)
    engine = PolicyEngine(audit=_Discard())
    reloader = PolicyReloader(source, engine)
    request = AuthzRequest.from_mapping(
        {"principal": 'Agent::"a"', "action": "publish", "resource": 'Topic::"t"'}
    )
    async with asyncio.timeout(20), asyncio.TaskGroup() as tasks:
        runner = tasks.create_task(reloader.run())
        await reloader.wait_attempted()
        assert isinstance(engine.evaluate(request), Allow)
        # A value written behind the store's back (not even JSON) never replaces the set.
        kv = await jetstream.key_value(source.bucket)
        bad = await kv.put(policy_key("broken"), b"permit(principal, action, resource) when {")
        await reloader.wait_attempted(bad)
        rejection = engine.status().last_rejection
        assert rejection is not None
        assert rejection.version == bad
        assert isinstance(engine.evaluate(request), Allow)
        # Fixing it through the store recovers.
        fixed = await store.put("broken", FORBID)
        await reloader.wait_for(fixed.revision)
        decision = engine.evaluate(request)
        assert isinstance(decision, Deny)
        assert decision.reasons == ("frozen",)
        assert decision.version == fixed.revision
        runner.cancel()


class _Discard:
    def record(self, event: object) -> None:
        pass
