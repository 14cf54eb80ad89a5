"""A task's output on the bus: ``TaskOutput`` on ``symbi.task.output.<task>``, bounded.

Every task the node runs (dispatched or direct) has its stdout/stderr published, in order, as
signed envelopes encrypted to the platform topic on the ``OUTPUT`` stream (kept an hour, so a
follower can replay a task's output from the start):

- :class:`OutputChunker` (pure) turns the container's output into messages: bytes of one
  stream are coalesced for up to ``linger_s`` (many lines, one message) and cut at
  ``chunk_bytes``; a change of stream sends what is pending first, so stdout and stderr keep
  their interleaving. Once ``max_bytes`` have been taken, one ``truncated`` marker goes out and
  the rest of the task's output is only counted; the end is a ``final`` marker carrying the
  byte counts.
- :class:`OutputPublisher` taps each execution's :class:`~symbi_sandbox.logs.LogBuffer`
  synchronously (the container's pump never waits for the bus) and publishes the chunker's
  messages from one child task per execution, with deterministic message ids (a retry after a
  lost acknowledgement is a duplicate JetStream drops). What waits to be published is bounded
  by the cap; a bus that keeps failing ends that task's stream (logged and counted), never the
  task.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import Counter

from symbi.bus.v1 import events_pb2
from symbi_common.errors import SymbiError
from symbi_sandbox.logs import LogChunk
from symbi_sandbox.nursery import Nursery
from symbi_sandbox.runner import Execution

__all__ = ["OutputChunker", "OutputLimits", "OutputPiece", "OutputPublisher"]

_log = logging.getLogger(__name__)

Stream = events_pb2.TaskOutput.Stream
_STREAMS = {"stdout": Stream.STREAM_STDOUT, "stderr": Stream.STREAM_STDERR}

OUTPUT_MESSAGES = Counter(
    "symbi_sandbox_output_messages_total", "TaskOutput messages published.", ["kind"]
)
OUTPUT_BYTES = Counter(
    "symbi_sandbox_output_bytes_total", "Task output bytes, published or not.", ["outcome"]
)
OUTPUT_FAILURES = Counter(
    "symbi_sandbox_output_failures_total", "Task output streams ended by a failing bus."
)


@dataclass(frozen=True)
class OutputLimits:
    """Bounds of one task's output on the bus."""

    chunk_bytes: int = 16 * 1024
    linger_s: float = 0.1
    max_bytes: int = 1024 * 1024

    def __post_init__(self) -> None:
        if self.chunk_bytes < 1 or self.max_bytes < 0 or self.linger_s < 0:
            raise ValueError(f"invalid output limits {self}")


@dataclass(frozen=True)
class OutputPiece:
    """One message's content: output (``stream`` set) or a marker (``stream`` empty)."""

    stream: str
    data: bytes = b""
    truncated: bool = False
    final: bool = False
    skipped_bytes: int = 0
    total_bytes: int = 0


class OutputChunker:
    """Coalesces and bounds one task's output (see the module docstring). Not thread-safe."""

    def __init__(self, limits: OutputLimits) -> None:
        self._limits = limits
        self._stream = ""
        self._pending = bytearray()
        self._since: float | None = None  # when the oldest pending byte arrived
        self._taken = 0  # bytes accepted for publication (pending included)
        self._truncated = False
        self._finished = False
        self.total_bytes = 0
        self.skipped_bytes = 0

    @property
    def finished(self) -> bool:
        return self._finished

    def add(self, stream: str, data: bytes, now: float) -> list[OutputPiece]:
        """Takes output of ``stream`` (``stdout``/``stderr``); returns the messages now due."""
        if self._finished or not data:
            return []
        self.total_bytes += len(data)
        if self._truncated:
            self.skipped_bytes += len(data)
            return []
        out: list[OutputPiece] = []
        if self._pending and stream != self._stream:
            out += self._flush()
        room = self._limits.max_bytes - self._taken
        take, rest = data[:room], len(data) - min(room, len(data))
        if take:
            if not self._pending:
                self._since = now
            self._stream = stream
            self._pending += take
            self._taken += len(take)
            while len(self._pending) >= self._limits.chunk_bytes:
                out.append(self._cut(self._limits.chunk_bytes))
        if rest:
            out += self._flush()
            self._truncated = True
            self.skipped_bytes += rest
            out.append(OutputPiece("", truncated=True, skipped_bytes=rest))
        return out

    def due_in(self, now: float) -> float | None:
        """Seconds until pending output is due (0: now); ``None`` when nothing is pending."""
        if not self._pending or self._since is None:
            return None
        return max(0.0, self._since + self._limits.linger_s - now)

    def due(self, now: float) -> list[OutputPiece]:
        """Pending output that has waited ``linger_s``."""
        wait = self.due_in(now)
        return self._flush() if wait is not None and wait <= 0 else []

    def finish(self) -> list[OutputPiece]:
        """The end of output: what is pending, then the final marker (once)."""
        if self._finished:
            return []
        out = self._flush()
        self._finished = True
        out.append(
            OutputPiece(
                "", final=True, skipped_bytes=self.skipped_bytes, total_bytes=self.total_bytes
            )
        )
        return out

    def _flush(self) -> list[OutputPiece]:
        return [self._cut(len(self._pending))] if self._pending else []

    def _cut(self, size: int) -> OutputPiece:
        piece = OutputPiece(self._stream, bytes(self._pending[:size]))
        del self._pending[:size]
        if not self._pending:
            self._since = None
        return piece


Publish = Callable[[events_pb2.TaskOutput, str], Awaitable[None]]


class _TaskOutput:
    """One execution's output on its way to the bus."""

    def __init__(
        self,
        execution: Execution,
        publish: Publish,
        limits: OutputLimits,
        *,
        node_id: str,
        attempts: int,
        timeout_s: float,
    ) -> None:
        task = execution.task
        self._template = events_pb2.TaskOutput(
            task_id=task.task_id,
            agent_id=task.agent_id,
            node_id=node_id,
            attempt=task.attempt,
            dispatch_id=task.dispatch_id,
        )
        # Unique per run: a task id may run again (another attempt, another direct run).
        # Hashed: envelope ids are at most 64 characters, task and node ids can be long.
        run = f"{node_id}\0{task.task_id}\0{task.attempt}\0{execution.started_at_ms}"
        self._id_prefix = "out-" + hashlib.sha256(run.encode()).hexdigest()[:40]
        self._publish = publish
        self._attempts = attempts
        self._timeout_s = timeout_s
        self._chunker = OutputChunker(limits)
        self._ready: deque[OutputPiece] = deque()
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._seq = 0
        self._broken = False
        self.done = asyncio.Event()
        backlog = execution.output.tap(self._on_chunk)
        for chunk in backlog:
            self._on_chunk(chunk)
        if execution.output.dropped_bytes:  # only if it started before we were attached
            self._chunker.skipped_bytes += execution.output.dropped_bytes
            self._chunker.total_bytes += execution.output.dropped_bytes
        if execution.output.closed:
            self._on_chunk(None)

    def _on_chunk(self, chunk: LogChunk | None) -> None:
        if chunk is None:
            self._ready.extend(self._chunker.finish())
        elif chunk.stream in _STREAMS:
            self._ready.extend(self._chunker.add(chunk.stream, chunk.data, self._loop.time()))
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                self._wake.clear()
                self._ready.extend(self._chunker.due(self._loop.time()))
                while self._ready:
                    await self._send(self._ready.popleft())
                if self._chunker.finished:
                    return
                wait = self._chunker.due_in(self._loop.time())
                if wait is None:
                    await self._wake.wait()
                else:
                    try:
                        async with asyncio.timeout(wait):
                            await self._wake.wait()
                    except TimeoutError:
                        pass  # pending output has lingered long enough
        finally:
            self.done.set()

    async def _send(self, piece: OutputPiece) -> None:
        if self._broken:
            return
        message = events_pb2.TaskOutput()
        message.CopyFrom(self._template)
        message.seq = self._seq
        message.stream = _STREAMS.get(piece.stream, Stream.STREAM_UNSPECIFIED)
        message.data = piece.data
        message.timestamp_ms = int(time.time() * 1000)
        message.truncated = piece.truncated
        message.final = piece.final
        message.skipped_bytes = piece.skipped_bytes
        message.total_bytes = piece.total_bytes
        msg_id = f"{self._id_prefix}-{self._seq}"
        for attempt in range(1, self._attempts + 1):
            try:
                async with asyncio.timeout(self._timeout_s):
                    await self._publish(message, msg_id)
                break
            except (SymbiError, TimeoutError) as exc:
                if attempt == self._attempts:
                    self._broken = True
                    OUTPUT_FAILURES.inc()
                    _log.error(
                        "output of task %s no longer published (message %d): %s",
                        message.task_id,
                        message.seq,
                        exc,
                    )
                    return
                await asyncio.sleep(0.2 * attempt)  # back-off between retries
        self._seq += 1
        kind = "final" if piece.final else "truncated" if piece.truncated else "output"
        OUTPUT_MESSAGES.labels(kind).inc()
        if piece.data:
            OUTPUT_BYTES.labels("published").inc(len(piece.data))
        if piece.skipped_bytes and not piece.final:
            OUTPUT_BYTES.labels("skipped").inc(piece.skipped_bytes)


class OutputPublisher:
    """Publishes the output of every execution it is given (see the module docstring)."""

    def __init__(
        self,
        publish: Publish,
        nursery: Nursery,
        limits: OutputLimits,
        *,
        node_id: str,
        attempts: int = 5,
        timeout_s: float = 10.0,
    ) -> None:
        self._publish = publish
        self._nursery = nursery
        self._limits = limits
        self._node_id = node_id
        self._attempts = attempts
        self._timeout_s = timeout_s
        self._active: set[_TaskOutput] = set()

    def attach(self, execution: Execution) -> None:
        """Starts publishing ``execution``'s output (call before the loop yields after start)."""
        stream = _TaskOutput(
            execution,
            self._publish,
            self._limits,
            node_id=self._node_id,
            attempts=self._attempts,
            timeout_s=self._timeout_s,
        )
        self._active.add(stream)
        try:
            self._nursery.start_soon(self._run(stream), name=f"output-{execution.task_id}")
        except SymbiError:
            self._active.discard(stream)
            raise

    async def _run(self, stream: _TaskOutput) -> None:
        try:
            await stream.run()
        finally:
            self._active.discard(stream)

    async def drained(self) -> None:
        """Returns once every stream attached so far has published its final marker."""
        while self._active:
            await next(iter(self._active)).done.wait()
