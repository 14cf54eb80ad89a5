"""The in-memory source, validated writes through the store, and hot reload from a watch."""

from __future__ import annotations

import asyncio
import json

import pytest

from symbi_common.errors import Aborted, NotFound
from symbi_policy import (
    Allow,
    Deny,
    EntitiesPut,
    InMemoryPolicySource,
    PolicyDeleted,
    PolicyEngine,
    PolicyPut,
    PolicyReloader,
    PolicyStore,
    PolicyValidationError,
    SourceSnapshot,
)

A = 'Agent::"a"'
ALLOW = '@id("pub") permit(principal, action == Symbi::Action::"publish", resource);'
FORBID = '@id("nopub") @reason("frozen") forbid(principal, action == Symbi::Action::"publish", resource);'
BAD = "permit(principal, action, resource) when { 1 + };"
ENTITIES = json.dumps(
    [{"uid": {"type": "Agent", "id": "a"}}, {"uid": {"type": "Topic", "id": "t"}}]
)


async def test_source_versions_and_compare_and_set():
    source = InMemoryPolicySource()
    first = await source.put_policy("a", ALLOW, updated_by="alice")
    assert (first.revision, first.updated_by, first.origin) == (1, "alice", "cedar")
    with pytest.raises(Aborted, match="revision 1, not the expected 0"):
        await source.put_policy("a", ALLOW, expected_revision=0)
    second = await source.put_policy("a", FORBID, expected_revision=1)
    assert second.revision == 2
    entities = await source.put_entities(ENTITIES)
    assert entities.revision == 3
    snap = await source.snapshot()
    assert (snap.policy_version, snap.entities_version) == (2, 3)
    assert await source.delete_policy("a") == 4
    with pytest.raises(NotFound):
        await source.get_policy("a")
    with pytest.raises(NotFound):
        await source.delete_policy("a")
    assert (await source.snapshot()).policy_version == 4


async def test_watch_yields_snapshot_then_changes():
    source = InMemoryPolicySource()
    await source.put_policy("a", ALLOW)
    events = []

    async def follow():
        async for event in source.watch():
            events.append(event)

    async with asyncio.timeout(5), asyncio.TaskGroup() as tasks:
        tasks.create_task(follow())
        await asyncio.sleep(0)  # let the watcher take its snapshot
        await source.put_policy("b", FORBID)
        await source.put_entities(ENTITIES)
        await source.delete_policy("a")
        await source.aclose()
    assert isinstance(events[0], SourceSnapshot)
    assert [d.name for d in events[0].policies] == ["a"]
    assert [type(e) for e in events[1:]] == [PolicyPut, EntitiesPut, PolicyDeleted]


async def test_watcher_that_falls_behind_gets_a_fresh_snapshot():
    source = InMemoryPolicySource(log_size=2)
    watch = source.watch()
    assert isinstance(await anext(watch), SourceSnapshot)
    for i in range(5):
        await source.put_policy(f"p{i}", ALLOW.replace("pub", f"pub{i}"))
    event = await anext(watch)
    assert isinstance(event, SourceSnapshot)
    assert len(event.policies) == 5
    await watch.aclose()


async def test_store_validates_before_writing():
    source = InMemoryPolicySource()
    store = PolicyStore(source)
    with pytest.raises(PolicyValidationError) as caught:
        await store.put("bad", BAD)
    assert caught.value.problems[0].line == 1
    assert await store.list() == []
    await store.put("a", ALLOW)
    # the same @id in another document is refused up front
    with pytest.raises(PolicyValidationError, match="already used in document 'a'"):
        await store.put("b", ALLOW)
    # rewriting the same document with its own id is fine
    assert (await store.put("a", ALLOW, expected_revision=1)).revision == 2
    with pytest.raises(PolicyValidationError, match="entities"):
        await store.put_entities(
            json.dumps([{"uid": {"type": "Agent", "id": "a"}, "attrs": {"trust": 1}}])
        )
    with pytest.raises(PolicyValidationError, match="invalid JSON"):
        await store.put_entities("[{")
    assert (await store.put_entities(ENTITIES)).revision == 3
    assert store.validate(ALLOW).policies[0].id == "pub"


async def test_reloader_applies_changes_and_keeps_good_set_on_bad_change(req):
    source = InMemoryPolicySource()
    await source.put_entities(ENTITIES)
    await source.put_policy("base", ALLOW)
    engine = PolicyEngine(audit=_Discard())
    reloader = PolicyReloader(source, engine)
    request = req(A, "publish", 'Topic::"t"')
    async with asyncio.timeout(10), asyncio.TaskGroup() as tasks:
        runner = tasks.create_task(reloader.run())
        await reloader.wait_for(2, 1)
        assert isinstance(engine.evaluate(request), Allow)

        # A bad document written behind the store's back never replaces the working set.
        bad = await source.put_policy("broken", BAD)
        await _until(lambda: engine.status().last_rejection is not None)
        assert engine.status().last_rejection.version == bad.revision
        assert engine.version == 2
        assert isinstance(engine.evaluate(request), Allow)

        # Fixing it recovers: the next change builds from the whole desired state.
        fixed = await source.put_policy("broken", FORBID)
        await reloader.wait_for(fixed.revision)
        decision = engine.evaluate(request)
        assert isinstance(decision, Deny)
        assert decision.reasons == ("frozen",)
        assert decision.version == fixed.revision

        deleted = await source.delete_policy("broken")
        await reloader.wait_for(deleted)
        assert isinstance(engine.evaluate(request), Allow)
        runner.cancel()


async def _until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        # Polling with a deadline (house style): the engine has no event for rejections.
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


class _Discard:
    def record(self, event):
        pass
