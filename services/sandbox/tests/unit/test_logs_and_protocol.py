"""The bounded log buffer and the channel's framing."""

from __future__ import annotations

import asyncio
import struct

import pytest

from symbi_common.errors import InvalidArgument
from symbi_sandbox.channel.protocol import FrameTooLarge, encode_frame, read_frame
from symbi_sandbox.logs import LogBuffer


async def collect(buffer: LogBuffer, **kw: bool) -> list[tuple[str, bytes]]:
    return [(c.stream, c.data) async for c in buffer.follow(**kw)]


async def test_readers_see_everything_then_end() -> None:
    buffer = LogBuffer(1024)
    reader = asyncio.create_task(collect(buffer))
    buffer.append("stdout", b"a")
    await asyncio.sleep(0)
    buffer.append("stderr", b"b")
    buffer.close()
    assert await reader == [("stdout", b"a"), ("stderr", b"b")]
    assert await collect(buffer) == [("stdout", b"a"), ("stderr", b"b")]  # late reader replays


async def test_buffer_is_bounded_and_reports_gaps() -> None:
    buffer = LogBuffer(10)
    follower = buffer.follow()
    buffer.append("stdout", b"12345")
    first = await anext(follower)
    assert first.data == b"12345"
    for _ in range(5):
        buffer.append("stdout", b"abcde")
    buffer.close()
    rest = [c async for c in follower]
    assert rest[0].stream == "gap"
    assert sum(len(c.data) for c in buffer.snapshot()) <= 10
    assert buffer.dropped_bytes == 20
    assert buffer.total_bytes == 30


async def test_oversized_chunk_keeps_its_tail() -> None:
    buffer = LogBuffer(4)
    buffer.append("stdout", b"0123456789")
    assert buffer.text() == "6789"


async def test_follow_from_now_skips_history() -> None:
    buffer = LogBuffer(100)
    buffer.append("stdout", b"old")
    reader = asyncio.create_task(collect(buffer, from_start=False))
    await asyncio.sleep(0)
    buffer.append("stdout", b"new")
    buffer.close()
    assert await reader == [("stdout", b"new")]


def feed(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_frames_round_trip() -> None:
    reader = feed(encode_frame({"id": 1, "op": "hello"}) + encode_frame({"x": "ü"}))
    assert await read_frame(reader) == {"id": 1, "op": "hello"}
    assert await read_frame(reader) == {"x": "ü"}
    assert await read_frame(reader) is None


async def test_oversized_and_malformed_frames_are_refused() -> None:
    with pytest.raises(FrameTooLarge):
        await read_frame(feed(struct.pack(">I", 10_000) + b"x"), max_bytes=100)
    with pytest.raises(FrameTooLarge):
        encode_frame({"x": "y" * 200}, max_bytes=100)
    with pytest.raises(InvalidArgument, match="JSON object"):
        await read_frame(feed(struct.pack(">I", 2) + b"[]"))
    with pytest.raises(InvalidArgument, match="not UTF-8 JSON"):
        await read_frame(feed(struct.pack(">I", 3) + b"{x}"))
    with pytest.raises(InvalidArgument) as caught:
        await read_frame(feed(struct.pack(">I", 10) + b"{}"))
    assert caught.value.reason == "TRUNCATED"
