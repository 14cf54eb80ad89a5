"""The batcher: concurrent calls share requests, each caller gets its own answer."""

from __future__ import annotations

import asyncio

import pytest

from symbi_common.errors import DeadlineExceeded, Unavailable
from symbi_lifecycle.batching import Batcher


async def test_concurrent_calls_are_coalesced() -> None:
    sent: list[list[int]] = []
    gate = asyncio.Event()

    async def send(items: list[int]) -> list[int]:
        sent.append(items)
        await gate.wait()
        return [i * 10 for i in items]

    batcher: Batcher[int, int] = Batcher("double", send, max_batch=50)
    async with asyncio.TaskGroup() as group:
        runner = group.create_task(batcher.run())
        await asyncio.sleep(0)
        calls = [group.create_task(batcher.call(i)) for i in range(120)]
        await asyncio.sleep(0.01)
        gate.set()
        results = await asyncio.gather(*calls)
        runner.cancel()
    assert results == [i * 10 for i in range(120)]
    assert sorted(i for batch in sent for i in batch) == list(range(120))
    assert max(len(b) for b in sent) == 50
    assert len(sent) <= 4  # 120 calls, a handful of requests


async def test_failures_reach_every_caller_and_the_batcher_goes_on() -> None:
    fail = True

    async def send(items: list[int]) -> list[int]:
        if fail:
            raise Unavailable("down")
        return items

    batcher: Batcher[int, int] = Batcher("x", send)
    async with asyncio.TaskGroup() as group:
        runner = group.create_task(batcher.run())
        await asyncio.sleep(0)
        results = await asyncio.gather(*(batcher.call(i) for i in range(3)), return_exceptions=True)
        assert all(isinstance(r, Unavailable) for r in results)
        fail = False
        assert await batcher.call(7) == 7
        runner.cancel()


async def test_not_running_and_deadline() -> None:
    async def send(items: list[int]) -> list[int]:
        await asyncio.sleep(10)
        return items

    batcher: Batcher[int, int] = Batcher("slow", send, wait_s=0.05)
    with pytest.raises(Unavailable, match="not running"):
        await batcher.call(1)
    async with asyncio.TaskGroup() as group:
        runner = group.create_task(batcher.run())
        await asyncio.sleep(0)
        with pytest.raises(DeadlineExceeded):
            await batcher.call(1)
        runner.cancel()
