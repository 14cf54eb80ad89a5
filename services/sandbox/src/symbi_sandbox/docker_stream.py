"""Reading a container's output from dockerd fast: demultiplexing and a batched hand-off.

Docker sends a non-TTY container's output as frames — an 8-byte header (stream id, three
padding bytes, the payload's length as a big-endian uint32) and the payload — and its
json-file log driver makes one frame per line. Reading them one at a time and handing each
frame from the reader thread to the event loop cost ~120 µs per frame: a task writing short
lines outran the node (2 MB of 26-byte lines drained at 0.22 MB/s), and what was not read
within the drain deadline after exit was lost.

- :class:`FrameDemux` (pure) takes the raw stream in whatever pieces the socket gives and
  returns the payloads, merging consecutive bytes of one stream (order across streams is
  kept). A header split across reads, a payload split across reads and empty frames are fine.
- :class:`OutputHandoff` moves ``(stream, bytes)`` from the reader thread to the event loop in
  batches: the thread appends under a lock (merging with the last piece of the same stream)
  and wakes the loop only when the batch goes from empty to non-empty; the loop takes
  everything pending at once. It is bounded in bytes: a reader that is ``limit_bytes`` ahead
  waits for the loop.
"""

from __future__ import annotations

import asyncio
import struct
import threading

__all__ = ["HEADER", "ChunkedDecoder", "FrameDemux", "OutputHandoff", "stream_name"]

HEADER = 8
_STREAMS = {1: "stdout", 2: "stderr"}


def stream_name(stream_id: int) -> str:
    """``stdout`` or ``stderr`` (stdin, 0, and anything unknown count as stdout)."""
    return _STREAMS.get(stream_id, "stdout")


class ChunkedDecoder:
    """HTTP/1.1 chunked transfer coding → the body, fed in arbitrary pieces.

    dockerd flushes every frame as its own HTTP chunk; decoding here lets the reader take
    whatever the socket holds in one read instead of one chunk per call.
    """

    _MAX_LINE = 4096

    def __init__(self) -> None:
        self._line = bytearray()
        self._left = 0  # data bytes of the current chunk not read yet
        self._state = "size"  # size | data | data_end | trailer | done

    @property
    def done(self) -> bool:
        """True once the last (empty) chunk and the trailer have been read."""
        return self._state == "done"

    def feed(self, data: bytes) -> bytes:
        """Consumes raw bytes; returns the body bytes among them. Raises ``ValueError``."""
        body = bytearray()
        pos, end = 0, len(data)
        while pos < end and self._state != "done":
            if self._state == "data":
                take = min(self._left, end - pos)
                body += data[pos : pos + take]
                pos += take
                self._left -= take
                if not self._left:
                    self._state = "data_end"
                continue
            newline = data.find(b"\n", pos, end)
            if newline < 0:
                self._line += data[pos:end]
                if len(self._line) > self._MAX_LINE:
                    raise ValueError("chunk header line too long")
                break
            self._line += data[pos:newline]
            pos = newline + 1
            line = bytes(self._line).rstrip(b"\r")
            self._line.clear()
            if self._state == "size":
                size = line.split(b";", 1)[0].strip()
                if not size or any(c not in b"0123456789abcdefABCDEF" for c in size):
                    raise ValueError(f"malformed chunk size {line[:40]!r}")
                self._left = int(size, 16)
                self._state = "data" if self._left else "trailer"
            elif self._state == "data_end":
                if line:
                    raise ValueError("chunk data longer than its size")
                self._state = "size"
            elif not line:  # trailer: header lines until an empty one
                self._state = "done"
        return bytes(body)


class FrameDemux:
    """Docker's multiplexed stream → ``(stream, payload)`` pieces, merged per stream run."""

    def __init__(self) -> None:
        self._header = bytearray()
        self._stream = "stdout"
        self._left = 0  # payload bytes of the current frame not read yet

    @property
    def incomplete(self) -> int:
        """Bytes of a frame started but not finished (header bytes or missing payload)."""
        return len(self._header) + self._left

    def feed(self, data: bytes | bytearray | memoryview) -> list[tuple[str, bytes]]:
        """Consumes raw bytes; returns the payload bytes they complete, in order."""
        view = memoryview(data)
        out: list[tuple[str, bytearray]] = []
        pos, end = 0, len(view)
        while pos < end:
            if self._left:
                take = min(self._left, end - pos)
                if out and out[-1][0] == self._stream:
                    out[-1][1].extend(view[pos : pos + take])
                else:
                    out.append((self._stream, bytearray(view[pos : pos + take])))
                pos += take
                self._left -= take
                continue
            need = HEADER - len(self._header)
            if need > end - pos:  # a header split across reads
                self._header += view[pos:end]
                break
            if self._header:
                self._header += view[pos : pos + need]
                header: bytes | memoryview = bytes(self._header)
                self._header.clear()
            else:
                header = view[pos : pos + HEADER]
            pos += need
            stream_id, self._left = struct.unpack(">BxxxL", header)
            self._stream = stream_name(stream_id)
        return [(stream, bytes(payload)) for stream, payload in out]


class OutputHandoff:
    """Bounded, batched hand-off of output from one reader thread to one event loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        limit_bytes: int = 1024 * 1024,
        piece_bytes: int = 64 * 1024,
    ) -> None:
        if limit_bytes < 1 or piece_bytes < 1:
            raise ValueError("limit_bytes and piece_bytes must be positive")
        self._loop = loop
        self._limit = limit_bytes
        self._piece = piece_bytes
        self._cond = threading.Condition()
        self._pieces: list[tuple[str, bytearray]] = []
        self._size = 0
        self._signalled = False
        self._ended = False
        self._error: BaseException | None = None
        self._cancelled = False
        self._ready = asyncio.Event()

    # ---------------------------------------------------------------- reader thread

    def put(self, stream: str, data: bytes) -> bool:
        """Adds output (waits while ``limit_bytes`` are pending); ``False`` once cancelled."""
        if not data:
            return not self._cancelled
        with self._cond:
            while self._size >= self._limit and not self._cancelled:
                self._cond.wait(0.5)
            if self._cancelled:
                return False
            if self._pieces and self._pieces[-1][0] == stream:
                last = self._pieces[-1][1]
                if len(last) + len(data) <= self._piece:
                    last += data
                else:
                    self._pieces.append((stream, bytearray(data)))
            else:
                self._pieces.append((stream, bytearray(data)))
            self._size += len(data)
            wake = not self._signalled
            self._signalled = True
        if wake:
            self._wake()
        return True

    def finish(self, error: BaseException | None = None) -> None:
        """The end of the output (``error``: why it ended early)."""
        with self._cond:
            self._ended = True
            self._error = error
            self._signalled = True
        self._wake()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def _wake(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._ready.set)
        except RuntimeError:  # the loop is closed: nobody will read
            self.cancel()

    # ---------------------------------------------------------------- event loop

    def cancel(self) -> None:
        """The reader stops at its next :meth:`put` (any thread)."""
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()

    async def take(self) -> tuple[list[tuple[str, bytes]], bool]:
        """Everything pending (waits for some), and whether the output has ended.

        Raises the reader's error once what came before it has been taken.
        """
        while True:
            with self._cond:
                if self._pieces or self._ended:
                    pieces = [(stream, bytes(data)) for stream, data in self._pieces]
                    self._pieces.clear()
                    self._size = 0
                    self._signalled = False
                    self._cond.notify_all()
                    if not pieces and self._error is not None:
                        raise self._error
                    return pieces, self._ended and self._error is None
                self._ready.clear()
            await self._ready.wait()
