"""The task output chunker (pure) and the publisher over a LogBuffer (a recording publish)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest

from symbi.bus.v1 import events_pb2
from symbi_common.errors import Unavailable
from symbi_sandbox.logs import LogBuffer
from symbi_sandbox.nursery import Nursery
from symbi_sandbox.output import OutputChunker, OutputLimits, OutputPiece, OutputPublisher
from symbi_sandbox.runner import Execution
from symbi_testing import eventually

Stream = events_pb2.TaskOutput.Stream


def data_of(pieces: list[OutputPiece]) -> list[tuple[str, bytes]]:
    return [(p.stream, p.data) for p in pieces if p.stream]


def test_lines_are_coalesced_until_the_linger_passes() -> None:
    chunker = OutputChunker(OutputLimits(chunk_bytes=1024, linger_s=0.1, max_bytes=10_000))
    assert chunker.add("stdout", b"one\n", now=0.0) == []
    assert chunker.add("stdout", b"two\n", now=0.05) == []
    assert chunker.due_in(0.05) == pytest.approx(0.05)
    assert chunker.due(0.09) == []
    assert data_of(chunker.due(0.1)) == [("stdout", b"one\ntwo\n")]
    assert chunker.due_in(0.2) is None  # nothing pending


def test_a_change_of_stream_sends_what_is_pending_first() -> None:
    chunker = OutputChunker(OutputLimits(chunk_bytes=1024, linger_s=1.0))
    chunker.add("stdout", b"a", 0.0)
    out = chunker.add("stderr", b"b", 0.0)
    out += chunker.add("stdout", b"c", 0.0)
    out += chunker.finish()
    assert data_of(out) == [("stdout", b"a"), ("stderr", b"b"), ("stdout", b"c")]
    assert (out[-1].final, out[-1].total_bytes, out[-1].skipped_bytes) == (True, 3, 0)


def test_large_output_is_cut_at_the_chunk_size() -> None:
    chunker = OutputChunker(OutputLimits(chunk_bytes=4, linger_s=1.0))
    out = chunker.add("stdout", b"0123456789", 0.0)
    assert data_of(out) == [("stdout", b"0123"), ("stdout", b"4567")]
    assert data_of(chunker.finish()) == [("stdout", b"89")]


def test_the_cap_sends_one_truncated_marker_and_counts_the_rest() -> None:
    chunker = OutputChunker(OutputLimits(chunk_bytes=4, linger_s=1.0, max_bytes=10))
    out = chunker.add("stdout", b"0123456", 0.0)
    out += chunker.add("stderr", b"789abc", 0.0)  # 3 of these fit
    out += chunker.add("stdout", b"more" * 100, 0.0)
    out += chunker.finish()
    assert b"".join(p.data for p in out) == b"0123456789"
    markers = [p for p in out if p.truncated]
    assert [m.skipped_bytes for m in markers] == [3]
    final = out[-1]
    assert (final.final, final.total_bytes, final.skipped_bytes) == (True, 413, 403)
    assert sum(p.truncated for p in out) == 1
    assert chunker.finish() == []  # once


def test_zero_cap_publishes_only_markers() -> None:
    chunker = OutputChunker(OutputLimits(max_bytes=0))
    out = chunker.add("stdout", b"x", 0.0) + chunker.finish()
    assert [(p.truncated, p.final) for p in out] == [(True, False), (False, True)]


def fake_execution(buffer: LogBuffer, task_id: str = "t1") -> Execution:
    task = SimpleNamespace(task_id=task_id, agent_id="agent-x", attempt=1, dispatch_id="d1")
    return cast(
        Execution, SimpleNamespace(task=task, task_id=task_id, output=buffer, started_at_ms=1)
    )


async def test_publisher_sends_output_in_order_with_markers_and_retries() -> None:
    published: list[tuple[events_pb2.TaskOutput, str]] = []
    failures = [1]

    async def publish(message: events_pb2.TaskOutput, msg_id: str) -> None:
        if failures and message.seq == 1:
            failures.pop()
            raise Unavailable("stream busy")
        published.append((message, msg_id))

    nursery = Nursery("test")
    host = asyncio.create_task(nursery.run())
    await nursery.ready()
    try:
        publisher = OutputPublisher(
            publish, nursery, OutputLimits(chunk_bytes=8, linger_s=0.01, max_bytes=20), node_id="n"
        )
        buffer = LogBuffer()
        buffer.append("stdout", b"before attach\n")  # output read before the tap is kept
        publisher.attach(fake_execution(buffer))
        buffer.append("stderr", b"err\n")
        buffer.append("stdout", b"x" * 100)
        buffer.close()
        await asyncio.wait_for(publisher.drained(), 5)
    finally:
        host.cancel()
        await asyncio.gather(host, return_exceptions=True)

    messages = [m for m, _ in published]
    assert [m.seq for m in messages] == list(range(len(messages)))
    assert len({i for _, i in published}) == len(published)  # a retry reuses its id
    text = b"".join(m.data for m in messages)
    assert text == (b"before attach\nerr\nxxxxxxxxxxx")[:20]
    assert [m.stream for m in messages if m.data][:2] == [Stream.STREAM_STDOUT] * 2
    assert sum(m.truncated for m in messages) == 1
    final = messages[-1]
    assert (final.final, final.total_bytes, final.skipped_bytes) == (True, 118, 98)
    assert all(
        (m.task_id, m.agent_id, m.node_id, m.dispatch_id) == ("t1", "agent-x", "n", "d1")
        for m in messages
    )


async def test_a_bus_that_keeps_failing_ends_the_stream_not_the_task() -> None:
    calls: list[int] = []

    async def publish(message: events_pb2.TaskOutput, msg_id: str) -> None:
        calls.append(message.seq)
        raise Unavailable("down")

    nursery = Nursery("test")
    host = asyncio.create_task(nursery.run())
    await nursery.ready()
    try:
        publisher = OutputPublisher(
            publish, nursery, OutputLimits(linger_s=0), node_id="n", attempts=2, timeout_s=1
        )
        buffer = LogBuffer()
        publisher.attach(fake_execution(buffer))
        buffer.append("stdout", b"lost\n")
        await eventually(lambda: len(calls) == 2, timeout=5)
        buffer.append("stdout", b"more\n")
        buffer.close()
        await asyncio.wait_for(publisher.drained(), 5)
    finally:
        host.cancel()
        await asyncio.gather(host, return_exceptions=True)
    assert calls == [0, 0]  # given up after its attempts; nothing after


def test_tap_sees_every_chunk_then_the_end() -> None:
    async def main() -> list[Any]:
        buffer = LogBuffer()
        seen: list[Any] = []
        buffer.append("stdout", b"a")
        backlog = buffer.tap(seen.append)
        buffer.append("stderr", b"b")
        buffer.close()
        return [c.data for c in backlog] + [c.data if c else None for c in seen]

    assert asyncio.run(main()) == [b"a", b"b", None]


async def test_message_ids_fit_an_envelope_whatever_the_task_id() -> None:
    ids: list[str] = []

    async def publish(message: events_pb2.TaskOutput, msg_id: str) -> None:
        ids.append(msg_id)

    nursery = Nursery("test")
    host = asyncio.create_task(nursery.run())
    await nursery.ready()
    try:
        publisher = OutputPublisher(
            publish, nursery, OutputLimits(chunk_bytes=1, max_bytes=200), node_id="n" * 64
        )
        buffer = LogBuffer()
        publisher.attach(fake_execution(buffer, task_id="t" * 128))
        buffer.append("stdout", b"x" * 150)
        buffer.close()
        await asyncio.wait_for(publisher.drained(), 5)
    finally:
        host.cancel()
        await asyncio.gather(host, return_exceptions=True)
    assert len(ids) == 151
    assert len(set(ids)) == len(ids)
    assert max(len(i) for i in ids) <= 64  # envelopes with longer ids are refused as malformed
