"""Decisions keep flowing while the reloader rebuilds in a thread, each from one whole state."""

from __future__ import annotations

import asyncio
import json

from symbi_policy import Allow, Deny, InMemoryPolicySource, PolicyEngine, PolicyReloader

A = 'Agent::"a"'
ENTITIES = json.dumps(
    [{"uid": {"type": "Agent", "id": "a"}}, {"uid": {"type": "Topic", "id": "t"}}]
)
# Both documents flip together in one version: a torn state would show allow+forbid mixes.
PERMIT = 'permit(principal, action == Symbi::Action::"publish", resource);'
FORBID = '@reason("v{v}") forbid(principal, action == Symbi::Action::"publish", resource);'
FILLER = "\n".join(
    f'@id("f{i}") permit(principal == Symbi::Agent::"x{i}", action == Symbi::Action::"network", resource);'
    for i in range(200)
)


class _Discard:
    def record(self, event: object) -> None:
        pass


async def test_decisions_during_reloads_always_match_their_version(req):
    source = InMemoryPolicySource()
    await source.put_entities(ENTITIES)
    await source.put_policy("filler", FILLER)  # makes each rebuild take a while
    await source.put_policy("rule", PERMIT)
    engine = PolicyEngine(audit=_Discard())
    reloader = PolicyReloader(source, engine)
    request = req(A, "publish", 'Topic::"t"')
    seen: dict[int, type] = {}
    allow_versions: set[int] = set()

    async def writer() -> None:
        for i in range(20):
            if i % 2:
                document = await source.put_policy("rule", PERMIT)
                allow_versions.add(document.revision)
            else:
                document = await source.put_policy("rule", FORBID.format(v=i))
            if i % 5 == 4:
                # The reloader may fold a burst of writes into one build; let the reader see
                # some versions in force before the next burst.
                await reloader.wait_for(document.revision)
            await asyncio.sleep(0)

    async def reader() -> None:
        while engine.version < 23:
            decision = engine.evaluate(request)
            previous = seen.setdefault(decision.version, type(decision))
            assert previous is type(decision)  # one version, one answer
            if isinstance(decision, Deny) and decision.version > 3:
                assert decision.reasons
                assert decision.reasons[0].startswith("v")
            await asyncio.sleep(0)
        decision = engine.evaluate(request)
        assert seen.setdefault(decision.version, type(decision)) is type(decision)

    async with asyncio.timeout(60), asyncio.TaskGroup() as tasks:
        runner = tasks.create_task(reloader.run())
        await reloader.wait_for(3, 1)
        allow_versions.add(3)
        tasks.create_task(writer())
        await reader()
        runner.cancel()
    assert len(seen) >= 3
    for version, kind in seen.items():
        assert kind is (Allow if version in allow_versions else Deny), (version, kind)
