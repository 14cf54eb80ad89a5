"""The reloader hands the engine only what was written since the state in force (ADR 0024):
what a rejected build held stays pending, a resynchronising snapshot removes what is gone,
and entity writes are applied per entity."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from symbi_policy import (
    Allow,
    Deny,
    EntityUid,
    InMemoryPolicySource,
    PolicyEngine,
    PolicyReloader,
    SourceEvent,
    SourceSnapshot,
)

A = 'Agent::"a"'
ENTITIES = json.dumps(
    [
        {"uid": {"type": "Agent", "id": "a"}, "attrs": {"trust": "trusted"}},
        {"uid": {"type": "Topic", "id": "t"}},
    ]
)
ALLOW = '@id("pub") permit(principal, action == Symbi::Action::"publish", resource);'
TRUSTED = (
    '@id("trusted") permit(principal is Symbi::Agent, action == Symbi::Action::"subscribe", '
    'resource) when { principal has trust && principal.trust == "trusted" };'
)
FORBID = '@id("freeze") @reason("frozen") forbid(principal, action == Symbi::Action::"publish", resource);'
BAD = 'permit(principal, action == Symbi::Action::"publish", resource) when { context.x == };'


class _Discard:
    def record(self, event: object) -> None:
        pass


async def test_a_rejected_change_stays_pending_until_fixed(req) -> None:
    source = InMemoryPolicySource()
    await source.put_entities(ENTITIES)
    await source.put_policy("base", ALLOW)
    engine = PolicyEngine(audit=_Discard())
    reloader = PolicyReloader(source, engine)
    publish = req(A, "publish", 'Topic::"t"')
    async with asyncio.timeout(10), asyncio.TaskGroup() as tasks:
        runner = tasks.create_task(reloader.run())
        await reloader.wait_for(2, 1)
        bad = await source.put_policy("broken", BAD)
        await reloader.wait_attempted(bad.revision)
        assert engine.version == 2

        # A good write after it is built together with the bad one: still refused, so
        # decisions keep the whole old set rather than a set without the broken document.
        frozen = await source.put_policy("freeze", FORBID)
        await reloader.wait_attempted(frozen.revision)
        assert engine.version == 2
        assert engine.status().last_rejection.version == frozen.revision
        assert isinstance(engine.evaluate(publish), Allow)

        # Deleting the broken document installs everything pending at once.
        deleted = await source.delete_policy("broken")
        await reloader.wait_for(deleted)
        decision = engine.evaluate(publish)
        assert isinstance(decision, Deny)
        assert decision.policies == ("freeze",)
        assert engine.status().documents == ("base", "freeze")
        runner.cancel()


class _CountingSource(InMemoryPolicySource):
    """Counts the snapshots its watch yields (the first, and each resynchronisation)."""

    snapshots = 0

    async def watch(self) -> AsyncIterator[SourceEvent]:
        async for event in super().watch():
            if isinstance(event, SourceSnapshot):
                self.snapshots += 1
            yield event


async def test_a_resynchronising_snapshot_removes_what_is_gone_and_builds_only_changes(
    req,
) -> None:
    source = _CountingSource(log_size=2)
    await source.put_entities(ENTITIES)
    await source.put_policy("base", ALLOW)
    await source.put_policy("keep", TRUSTED)
    engine = PolicyEngine(audit=_Discard())
    reloader = PolicyReloader(source, engine)
    async with asyncio.timeout(10), asyncio.TaskGroup() as tasks:
        runner = tasks.create_task(reloader.run())
        await reloader.wait_for(3, 1)
        built = engine.stats.documents_built
        # More writes than the source's log holds, without yielding to the reloader: its
        # watch falls behind and resynchronises from a snapshot.
        await source.delete_policy("base")
        for i in range(4):
            await source.put_policy(f"extra{i}", ALLOW.replace('"pub"', f'"pub{i}"'))
        last = await source.put_policy("freeze", FORBID)
        await reloader.wait_for(last.revision)
        assert engine.status().documents == (
            "extra0",
            "extra1",
            "extra2",
            "extra3",
            "freeze",
            "keep",
        )
        assert source.snapshots == 2
        # Five documents compiled (base removed); "keep" was not compiled again.
        assert engine.stats.documents_built == built + 5
        assert isinstance(engine.evaluate(req(A, "subscribe", 'Topic::"t"')), Allow)
        runner.cancel()


async def test_entity_writes_are_applied_per_entity(req) -> None:
    source = InMemoryPolicySource()
    await source.put_entities(ENTITIES)
    await source.put_policy("trusted", TRUSTED)
    engine = PolicyEngine(audit=_Discard())
    reloader = PolicyReloader(source, engine)
    subscribe = req('Agent::"b"', "subscribe", 'Topic::"t"')
    async with asyncio.timeout(10), asyncio.TaskGroup() as tasks:
        runner = tasks.create_task(reloader.run())
        await reloader.wait_for(2, 1)
        assert "unknown principal" in engine.evaluate(subscribe).reasons[0]

        added = await source.upsert_entities(
            [{"uid": {"type": "Symbi::Agent", "id": "b"}, "attrs": {"trust": "trusted"}}]
        )
        await reloader.wait_for(2, added)
        assert isinstance(engine.evaluate(subscribe), Allow)
        texts = engine.state.entities.texts
        assert texts is not None
        assert EntityUid("Symbi::Agent", "b") in texts

        changed = await source.upsert_entities(
            [{"uid": {"type": "Symbi::Agent", "id": "b"}, "attrs": {"trust": "untrusted"}}]
        )
        await reloader.wait_for(2, changed)
        assert isinstance(engine.evaluate(subscribe), Deny)

        removed = await source.delete_entities([EntityUid("Symbi::Agent", "b")])
        await reloader.wait_for(2, removed)
        assert "unknown principal" in engine.evaluate(subscribe).reasons[0]
        assert isinstance(engine.evaluate(req(A, "subscribe", 'Topic::"t"')), Allow)
        runner.cancel()
