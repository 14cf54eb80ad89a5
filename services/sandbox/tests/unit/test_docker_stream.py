"""Docker's multiplexed output: chunked decoding, demultiplexing and the thread hand-off."""

from __future__ import annotations

import asyncio
import random
import struct
import threading

import pytest

from symbi_sandbox.docker_stream import ChunkedDecoder, FrameDemux, OutputHandoff


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def chunked(*chunks: bytes) -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)
    return body + b"0\r\n\r\n"


def feed_all(demux: FrameDemux, pieces: list[bytes]) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for piece in pieces:
        out += demux.feed(piece)
    return out


def joined(pieces: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Adjacent pieces of one stream merged (how the output reads, whatever the cuts)."""
    out: list[tuple[str, bytes]] = []
    for stream, data in pieces:
        if out and out[-1][0] == stream:
            out[-1] = (stream, out[-1][1] + data)
        else:
            out.append((stream, data))
    return out


RAW = (
    frame(1, b"one\n")
    + frame(1, b"")  # zero-length frames carry nothing
    + frame(2, b"err\n")
    + frame(1, b"two\n")
    + frame(1, b"three")
    + frame(2, b"")
    + frame(2, b"tail")
)
EXPECTED = [
    ("stdout", b"one\n"),
    ("stderr", b"err\n"),
    ("stdout", b"two\nthree"),
    ("stderr", b"tail"),
]


def test_demux_merges_runs_of_one_stream_and_keeps_the_order() -> None:
    demux = FrameDemux()
    assert demux.feed(RAW) == EXPECTED
    assert demux.incomplete == 0


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 9, 13])
def test_demux_headers_and_payloads_split_across_reads(size: int) -> None:
    demux = FrameDemux()
    pieces = [RAW[i : i + size] for i in range(0, len(RAW), size)]
    assert joined(feed_all(demux, pieces)) == EXPECTED
    assert demux.incomplete == 0


def test_demux_random_cuts_of_many_short_frames() -> None:
    rng = random.Random(7)
    frames = [(rng.choice((1, 2)), bytes([65 + i % 26]) * rng.randrange(0, 40)) for i in range(500)]
    raw = b"".join(frame(s, p) for s, p in frames)
    cuts = sorted(rng.sample(range(1, len(raw)), 200))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    want = joined([("stdout" if s == 1 else "stderr", p) for s, p in frames if p])
    assert joined(feed_all(FrameDemux(), pieces)) == want


def test_demux_reports_an_unfinished_frame() -> None:
    demux = FrameDemux()
    assert demux.feed(frame(1, b"abcdef")[:-2]) == [("stdout", b"abcd")]
    assert demux.incomplete == 2
    assert demux.feed(b"ef") == [("stdout", b"ef")]
    assert demux.feed(frame(2, b"x")[:5]) == []
    assert demux.incomplete == 5


def test_demux_unknown_stream_ids_count_as_stdout() -> None:
    assert FrameDemux().feed(frame(0, b"in") + frame(3, b"sys")) == [("stdout", b"insys")]


def test_chunked_decoder_any_cut() -> None:
    body = RAW * 3
    raw = chunked(*[body[i : i + 11] for i in range(0, len(body), 11)])
    for size in (1, 2, 5, 64, len(raw)):
        decoder = ChunkedDecoder()
        out = b"".join(decoder.feed(raw[i : i + size]) for i in range(0, len(raw), size))
        assert out == body
        assert decoder.done


def test_chunked_decoder_extensions_trailers_and_the_end() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"3;name=v\r\nabc\r\n0\r\nX-Trailer: 1\r\n") == b"abc"
    assert not decoder.done
    assert decoder.feed(b"\r\nnext response") == b""  # nothing after the body is read
    assert decoder.done


@pytest.mark.parametrize("raw", [b"zz\r\n", b"-1\r\n", b"\r\n", b"3\r\nabcd\r\n", b"1" * 5000])
def test_chunked_decoder_refuses_malformed_input(raw: bytes) -> None:
    with pytest.raises(ValueError, match="chunk"):
        ChunkedDecoder().feed(raw)


async def test_handoff_batches_merges_and_ends() -> None:
    handoff = OutputHandoff(asyncio.get_running_loop(), piece_bytes=8)
    assert handoff.put("stdout", b"abc")
    assert handoff.put("stdout", b"def")
    assert handoff.put("stderr", b"x")
    assert handoff.put("stdout", b"ghijkl")  # would exceed piece_bytes merged: a new piece
    assert handoff.put("stdout", b"")
    handoff.finish()
    assert await handoff.take() == (
        [("stdout", b"abcdef"), ("stderr", b"x"), ("stdout", b"ghijkl")],
        True,
    )


async def test_handoff_from_a_thread_is_complete_and_bounded() -> None:
    loop = asyncio.get_running_loop()
    handoff = OutputHandoff(loop, limit_bytes=1000)
    sent = [(("stdout", "stderr")[i % 3 == 0], b"%06d" % i) for i in range(20_000)]
    most_pending = 0

    def writer() -> None:
        for stream, data in sent:
            assert handoff.put(stream, data)
        handoff.finish()

    thread = threading.Thread(target=writer)
    thread.start()
    got: list[tuple[str, bytes]] = []
    try:
        while True:
            pieces, ended = await handoff.take()
            most_pending = max(most_pending, sum(len(d) for _, d in pieces))
            got += pieces
            if ended:
                break
    finally:
        handoff.cancel()
        await asyncio.to_thread(thread.join, 10)
    assert joined(got) == joined(sent)
    assert most_pending <= 1000 + 6  # the bound, plus one put beyond it


async def test_handoff_error_after_the_output_before_it() -> None:
    handoff = OutputHandoff(asyncio.get_running_loop())
    handoff.put("stdout", b"partial")
    handoff.finish(OSError("connection reset"))
    assert await handoff.take() == ([("stdout", b"partial")], False)
    with pytest.raises(OSError, match="connection reset"):
        await handoff.take()


async def test_handoff_cancel_releases_a_blocked_writer() -> None:
    handoff = OutputHandoff(asyncio.get_running_loop(), limit_bytes=4)
    assert handoff.put("stdout", b"full")
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(handoff.put("stdout", b"more")))
    thread.start()
    handoff.cancel()
    await asyncio.to_thread(thread.join, 10)
    assert result == [False]
    assert handoff.cancelled
