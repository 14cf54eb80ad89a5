"""WatchQueue fan-out: filters, one event per change, bounded buffers."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from symbi_common.errors import ResourceExhausted, Unavailable
from symbi_scheduler import ResourceRequest, TaskRecord, TaskSpec, TaskState
from symbi_scheduler.watch import WatchHub


def rec(task_id: str, agent: str = "agent-1", state: TaskState = TaskState.QUEUED) -> TaskRecord:
    spec = TaskSpec(task_id, agent, ResourceRequest(memory_mb=1, cpu_millicores=1))
    return TaskRecord(spec=spec, state=state, seq=0, enqueued_at=0.0, updated_at=0.0)


async def collect(hub: WatchHub, agent: str, n: int, snapshot=()) -> list[str]:
    out: list[str] = []
    async with contextlib.aclosing(hub.watch(agent, snapshot)) as events:
        async for event in events:
            out.append(f"{event.task.task_id}:{event.event}")
            if len(out) == n:
                break
    return out


async def test_watchers_get_their_agents_events_after_the_snapshot() -> None:
    hub = WatchHub(buffer=10, max_watchers=4)
    watcher = asyncio.create_task(collect(hub, "agent-1", 3, [rec("s")]))
    await asyncio.sleep(0)
    hub.publish(rec("t1"))
    hub.publish(rec("other", agent="agent-2"))
    failed = rec("t1", state=TaskState.FAILED)
    hub.publish(failed)
    hub.publish(failed)  # the same record again (journaled, then dropped): one event
    assert await watcher == ["s:snapshot", "t1:queued", "t1:failed"]
    assert len(hub) == 0


async def test_a_slow_watcher_is_cut_off_and_the_leader_change_ends_all() -> None:
    hub = WatchHub(buffer=2, max_watchers=1)
    stream = hub.watch("", ())
    first = asyncio.create_task(anext(stream))
    await asyncio.sleep(0)
    for i in range(5):
        hub.publish(rec(f"t{i}"))
    assert (await first).task.task_id == "t0"
    with pytest.raises(ResourceExhausted):
        async for _ in stream:
            pass
    other = hub.watch("", ())
    pending = asyncio.create_task(anext(other))
    await asyncio.sleep(0)
    with pytest.raises(Unavailable, match="too many"):
        await anext(hub.watch("", ()))
    hub.close_all(Unavailable("stopped leading"))
    with pytest.raises(Unavailable, match="stopped leading"):
        await pending
