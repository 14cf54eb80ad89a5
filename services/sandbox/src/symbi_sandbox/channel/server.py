"""The channel server: serves each task's agent socket and forwards calls to the backend.

One :class:`ChannelServer` per node; :meth:`ChannelServer.open` binds ``agent.sock`` in a
task's channel directory (bind-mounted read-only into its container) and returns the
endpoint the runner closes when the task ends. The socket is the agent's credential: every
call on it runs under that task's :class:`AgentContext`.

Bounds, so that an agent cannot grow the node's memory or starve others: frames ≤
``max_frame_bytes``; ≤ ``max_connections`` per task; ≤ ``max_inflight`` concurrent calls per
connection (reading pauses beyond); outbound frames in a bounded queue (subscriptions pause
when the agent does not read); ``rate_per_s`` calls per task with a ``burst`` (calls beyond
are refused with RESOURCE_EXHAUSTED, never dropped); every backend call under a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from symbi_common.errors import (
    DeadlineExceeded,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    SymbiError,
)
from symbi_sandbox.channel.bandwidth import ByteRateLimiter
from symbi_sandbox.channel.egress import EgressConfig, EgressGate
from symbi_sandbox.channel.ports import (
    AgentContext,
    AuditSink,
    ChannelBackend,
    EgressPolicy,
    Subscription,
)
from symbi_sandbox.channel.protocol import (
    DEFAULT_MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    FrameTooLarge,
    encode_frame,
    error_body,
    read_frame,
)
from symbi_sandbox.task import TaskSpec

__all__ = ["SOCKET_NAME", "ChannelConfig", "ChannelEndpoint", "ChannelServer"]

_log = logging.getLogger(__name__)

SOCKET_NAME = "agent.sock"
_MAX_SOCKET_PATH = 107  # sockaddr_un.sun_path is 108 bytes with the NUL


@dataclass(frozen=True)
class ChannelConfig:
    """Limits of the agent channel (per task unless said otherwise)."""

    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    max_connections: int = 32
    max_inflight: int = 16
    outbound_queue: int = 256
    max_subscriptions: int = 32
    call_timeout_s: float = 30.0
    max_wait_s: float = 300.0  # longest receive/request wait an agent may ask for
    rate_per_s: float = 500.0
    burst: int = 1000
    egress: EgressConfig = field(default_factory=EgressConfig)


class _TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class ChannelServer:
    """Serves agent sockets for the tasks of one node (implements the runner's ChannelHost)."""

    def __init__(
        self,
        backend: ChannelBackend,
        *,
        egress_policy: EgressPolicy,
        audit: AuditSink,
        node_id: str,
        config: ChannelConfig | None = None,
    ) -> None:
        self._backend = backend
        self._config = config or ChannelConfig()
        self._egress = EgressGate(egress_policy, audit, self._config.egress)
        self._node_id = node_id
        self._endpoints: set[ChannelEndpoint] = set()

    @property
    def config(self) -> ChannelConfig:
        return self._config

    async def open(
        self, task: TaskSpec, directory: Path, *, egress_bytes_per_s: int = 0
    ) -> ChannelEndpoint:
        """Binds ``directory/agent.sock`` for ``task`` and starts serving it.

        ``egress_bytes_per_s`` (0: unlimited) caps the task's egress tunnels together.
        """
        ctx = AgentContext(
            task_id=task.task_id,
            agent_id=task.agent_id,
            node_id=self._node_id,
            attempt=task.attempt,
            network=task.network,
        )
        limiter = (
            ByteRateLimiter(egress_bytes_per_s, self._config.egress.burst_bytes)
            if egress_bytes_per_s > 0
            else None
        )
        endpoint = ChannelEndpoint(self, ctx, directory / SOCKET_NAME, limiter)
        await endpoint._start()
        self._endpoints.add(endpoint)
        return endpoint

    async def aclose(self) -> None:
        """Closes every endpoint still open."""
        for endpoint in list(self._endpoints):
            await endpoint.aclose()


class ChannelEndpoint:
    """One task's socket and its connections."""

    def __init__(
        self,
        server: ChannelServer,
        ctx: AgentContext,
        path: Path,
        egress_limiter: ByteRateLimiter | None = None,
    ) -> None:
        self._server = server
        #: The task's egress bandwidth (``network_io_mbps``), shared by all its tunnels.
        self.egress_limiter = egress_limiter
        self.context = ctx
        self.path = path
        self._listener: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._bucket = _TokenBucket(server.config.rate_per_s, server.config.burst)
        self._tunnels = 0
        self.calls = 0
        self.refused = 0

    async def _start(self) -> None:
        if len(os.fsencode(self.path)) > _MAX_SOCKET_PATH:
            raise InvalidArgument(
                f"agent socket path {self.path} is longer than {_MAX_SOCKET_PATH} bytes; "
                "use a shorter work directory",
                reason="SOCKET_PATH_TOO_LONG",
            )
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._listener = await asyncio.start_unix_server(
            self._accept, path=str(self.path), limit=self._server.config.max_frame_bytes + 8
        )
        # The task runs under its own uid: it must be able to connect (write permission on
        # the socket inode); the directory above it is read-only to the task.
        os.chmod(self.path, 0o666)

    async def aclose(self) -> None:
        """Stops accepting, ends every connection, removes the socket file."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if listener is not None:
            await listener.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server._endpoints.discard(self)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        current = asyncio.current_task()
        assert current is not None
        if self._listener is None:
            writer.close()
            return
        self._connections.add(current)
        try:
            if len(self._connections) > self._server.config.max_connections:
                await _send_now(
                    writer,
                    None,
                    ResourceExhausted(
                        f"at most {self._server.config.max_connections} channel connections per task",
                        reason="TOO_MANY_CONNECTIONS",
                    ),
                )
                return
            await _Session(self, reader, writer).run()
        except (ConnectionError, OSError) as exc:
            _log.debug("channel connection of task %s ended: %r", self.context.task_id, exc)
        finally:
            self._connections.discard(current)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    def admit(self) -> None:
        """Counts a call against the task's rate; raises when over it."""
        self.calls += 1
        if not self._bucket.take():
            self.refused += 1
            raise ResourceExhausted(
                f"channel rate limit of {self._server.config.rate_per_s:g} calls/s exceeded",
                reason="RATE_LIMITED",
            )


async def _send_now(writer: asyncio.StreamWriter, request_id: object, exc: SymbiError) -> None:
    writer.write(encode_frame({"id": request_id, "ok": False, "error": error_body(exc)}))
    with contextlib.suppress(ConnectionError, OSError):
        await asyncio.wait_for(writer.drain(), 5.0)


_Handler = Callable[["_Session", dict[str, Any]], Awaitable[Any]]


class _Session:
    """One framed connection: a reader loop, a writer loop, calls and subscriptions."""

    def __init__(
        self,
        endpoint: ChannelEndpoint,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self._endpoint = endpoint
        self._server = endpoint._server
        self._config = endpoint._server.config
        self._backend = endpoint._server._backend
        self._ctx = endpoint.context
        self._reader = reader
        self._writer = writer
        self._outbound: asyncio.Queue[bytes | None] = asyncio.Queue(self._config.outbound_queue)
        self._inflight = asyncio.Semaphore(self._config.max_inflight)
        self._subscriptions: dict[int, asyncio.Task[None]] = {}
        self._sub_ids = itertools.count(1)
        self._children: set[asyncio.Task[Any]] = set()

    async def run(self) -> None:
        first: dict[str, Any] | None = None
        first_error: InvalidArgument | None = None
        try:
            first = await read_frame(self._reader, max_bytes=self._config.max_frame_bytes)
        except FrameTooLarge as exc:
            await _send_now(self._writer, None, exc)
            return
        except InvalidArgument as exc:
            if exc.reason == "TRUNCATED":
                return
            first_error = exc  # answered below; the connection stays usable
        else:
            if first is None:
                return
            if first.get("op") == "egress.connect":
                await self._egress(first)
                return
        async with asyncio.TaskGroup() as group:
            writer_task = group.create_task(self._write_loop())
            try:
                if first_error is not None:
                    await self._emit({"id": None, "ok": False, "error": error_body(first_error)})
                if await self._read_loop(group, first):
                    # A fatal framing error: deliver the queued error frame, then close.
                    await self._outbound.put(None)
                    await asyncio.wait([writer_task], timeout=2.0)
            finally:
                for child in list(self._children):
                    child.cancel()
                subscriptions = list(self._subscriptions.values())
                for sub in subscriptions:
                    sub.cancel()
                writer_task.cancel()
                await asyncio.gather(*subscriptions, return_exceptions=True)

    async def _read_loop(self, group: asyncio.TaskGroup, first: dict[str, Any] | None) -> bool:
        """Dispatches frames until the agent closes (False) or framing breaks (True)."""
        frame: dict[str, Any] | None = first
        while True:
            if frame is not None:
                await self._inflight.acquire()
                child = group.create_task(self._dispatch(frame))
                self._children.add(child)
                child.add_done_callback(self._children.discard)
            try:
                frame = await read_frame(self._reader, max_bytes=self._config.max_frame_bytes)
            except FrameTooLarge as exc:
                await self._emit({"id": None, "ok": False, "error": error_body(exc)})
                return True
            except InvalidArgument as exc:
                if exc.reason == "TRUNCATED":
                    return False
                await self._emit({"id": None, "ok": False, "error": error_body(exc)})
                frame = None
                continue
            if frame is None:
                return False

    async def _write_loop(self) -> None:
        while True:
            data = await self._outbound.get()
            if data is None:
                return
            self._writer.write(data)
            await self._writer.drain()

    async def _emit(self, body: dict[str, Any]) -> None:
        try:
            data = encode_frame(body, max_bytes=self._config.max_frame_bytes)
        except FrameTooLarge as exc:
            data = encode_frame({"id": body.get("id"), "ok": False, "error": error_body(exc)})
        await self._outbound.put(data)

    async def _dispatch(self, frame: dict[str, Any]) -> None:
        request_id = frame.get("id")
        try:
            op = frame.get("op")
            handler = _HANDLERS.get(op) if isinstance(op, str) else None
            if handler is None:
                raise InvalidArgument(
                    f"unknown operation {op!r}; known: {', '.join(sorted(_HANDLERS))}",
                    reason="UNKNOWN_OPERATION",
                )
            self._endpoint.admit()
            result = await handler(self, frame)
            await self._emit({"id": request_id, "ok": True, "result": result})
        except SymbiError as exc:
            await self._emit({"id": request_id, "ok": False, "error": error_body(exc)})
        except TimeoutError:
            exc2 = DeadlineExceeded("the call did not finish within its deadline")
            await self._emit({"id": request_id, "ok": False, "error": error_body(exc2)})
        except Exception:
            _log.exception("channel call of task %s failed", self._ctx.task_id)
            internal = SymbiError("internal error in the sandbox channel")
            await self._emit({"id": request_id, "ok": False, "error": error_body(internal)})
        finally:
            self._inflight.release()

    @property
    def _margin(self) -> float:
        # Slack on top of an agent-chosen wait (receive, request) for the backend's own work.
        return min(5.0, self._config.call_timeout_s)

    async def _call(self, aw: Awaitable[Any], timeout_s: float | None = None) -> Any:
        return await asyncio.wait_for(aw, timeout_s or self._config.call_timeout_s)

    # ------------------------------------------------------------------ operations

    async def op_hello(self, frame: dict[str, Any]) -> Any:
        return {
            "protocol": PROTOCOL_VERSION,
            "task_id": self._ctx.task_id,
            "agent_id": self._ctx.agent_id,
            "node_id": self._ctx.node_id,
            "network": self._ctx.network,
            "max_frame_bytes": self._config.max_frame_bytes,
        }

    async def op_send(self, frame: dict[str, Any]) -> Any:
        to = _text(frame, "to")
        message_id = await self._call(self._backend.send(self._ctx, to, frame.get("payload")))
        return {"message_id": message_id}

    async def op_receive(self, frame: dict[str, Any]) -> Any:
        wait = _seconds(frame, "timeout_s", 0.0, self._config.max_wait_s)
        message = await self._call(self._backend.receive(self._ctx, wait), wait + self._margin)
        return {"message": None if message is None else message.to_json()}

    async def op_publish(self, frame: dict[str, Any]) -> Any:
        topic = _text(frame, "topic")
        message_id = await self._call(self._backend.publish(self._ctx, topic, frame.get("payload")))
        return {"message_id": message_id}

    async def op_subscribe(self, frame: dict[str, Any]) -> Any:
        topic = _text(frame, "topic")
        if len(self._subscriptions) >= self._config.max_subscriptions:
            raise ResourceExhausted(
                f"at most {self._config.max_subscriptions} subscriptions per connection",
                reason="TOO_MANY_SUBSCRIPTIONS",
            )
        subscription = await self._call(self._backend.subscribe(self._ctx, topic))
        sid = next(self._sub_ids)
        pump = asyncio.create_task(self._pump(sid, subscription), name=f"channel-sub-{sid}")
        self._subscriptions[sid] = pump
        pump.add_done_callback(functools.partial(self._forget_subscription, sid))
        return {"subscription": sid}

    def _forget_subscription(self, sid: int, _task: asyncio.Task[None]) -> None:
        self._subscriptions.pop(sid, None)

    async def _pump(self, sid: int, subscription: Subscription) -> None:
        ended: dict[str, Any] = {"event": "subscription_ended", "subscription": sid}
        try:
            async for message in subscription:
                await self._emit(
                    {"event": "message", "subscription": sid, "message": message.to_json()}
                )
        except SymbiError as exc:
            ended["error"] = error_body(exc)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(subscription.aclose(), 5.0)
        await self._emit(ended)

    async def op_unsubscribe(self, frame: dict[str, Any]) -> Any:
        sid = frame.get("subscription")
        pump = self._subscriptions.pop(sid, None) if isinstance(sid, int) else None
        if pump is None:
            raise NotFound(f"no subscription {sid!r} on this connection")
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
        return {"subscription": sid}

    async def op_request(self, frame: dict[str, Any]) -> Any:
        target = _text(frame, "to")
        wait = _seconds(frame, "timeout_s", self._config.call_timeout_s, self._config.max_wait_s)
        reply = await self._call(
            self._backend.request(self._ctx, target, frame.get("payload"), wait),
            wait + self._margin,
        )
        return {"payload": reply}

    async def op_tool_call(self, frame: dict[str, Any]) -> Any:
        tool = _text(frame, "tool")
        arguments = frame.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise InvalidArgument("tool.call: arguments must be a JSON object")
        return {"result": await self._call(self._backend.call_tool(self._ctx, tool, arguments))}

    async def op_memory_store(self, frame: dict[str, Any]) -> Any:
        content = _text(frame, "content", max_len=self._config.max_frame_bytes)
        kind = frame.get("kind") or "long_term"
        metadata = frame.get("metadata") or {}
        tags = frame.get("tags") or []
        if not isinstance(kind, str) or not isinstance(metadata, dict):
            raise InvalidArgument("memory.store: kind must be a string and metadata an object")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise InvalidArgument("memory.store: tags must be a list of strings")
        memory_id = await self._call(
            self._backend.store_memory(self._ctx, content, kind=kind, metadata=metadata, tags=tags)
        )
        return {"memory_id": memory_id}

    async def op_memory_query(self, frame: dict[str, Any]) -> Any:
        query = _text(frame, "query", max_len=64 * 1024)
        kind = frame.get("kind")
        limit = frame.get("limit", 10)
        if kind is not None and not isinstance(kind, str):
            raise InvalidArgument("memory.query: kind must be a string")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
            raise InvalidArgument(f"memory.query: limit must be within 1..100, got {limit!r}")
        items = await self._call(
            self._backend.query_memory(self._ctx, query, kind=kind, limit=limit)
        )
        return {"items": [item.to_json() for item in items]}

    async def op_egress_connect(self, frame: dict[str, Any]) -> Any:
        raise InvalidArgument(
            "egress.connect must be the first frame of a new connection", reason="EGRESS_MISUSE"
        )

    # ------------------------------------------------------------------ egress

    async def _egress(self, frame: dict[str, Any]) -> None:
        endpoint = self._endpoint
        request_id = frame.get("id")
        try:
            endpoint.admit()
            if endpoint._tunnels >= self._config.egress.max_tunnels_per_task:
                raise ResourceExhausted(
                    f"at most {self._config.egress.max_tunnels_per_task} egress tunnels per task",
                    reason="TOO_MANY_TUNNELS",
                )
            endpoint._tunnels += 1
            try:
                gate = self._server._egress
                tunnel, remote_r, remote_w = await gate.open(
                    self._ctx, frame.get("host"), frame.get("port")
                )
                self._writer.write(
                    encode_frame(
                        {"id": request_id, "ok": True, "result": {"address": tunnel.address}}
                    )
                )
                await self._writer.drain()
                await gate.relay(
                    self._ctx,
                    tunnel,
                    (self._reader, self._writer),
                    (remote_r, remote_w),
                    endpoint.egress_limiter,
                )
            finally:
                endpoint._tunnels -= 1
        except SymbiError as exc:
            await _send_now(self._writer, request_id, exc)
        except TimeoutError:
            await _send_now(self._writer, request_id, DeadlineExceeded("egress decision timed out"))


def _text(frame: Mapping[str, Any], name: str, *, max_len: int = 1024) -> str:
    value = frame.get(name)
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise InvalidArgument(
            f"{frame.get('op')}: {name} must be a non-empty string of at most {max_len} characters",
            reason="MALFORMED_CALL",
            details={"field": name},
        )
    return value


def _seconds(frame: Mapping[str, Any], name: str, default: float, maximum: float) -> float:
    value = frame.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= maximum:
        raise InvalidArgument(
            f"{frame.get('op')}: {name} must be a number of seconds within 0..{maximum:g}",
            reason="MALFORMED_CALL",
            details={"field": name},
        )
    return float(value)


_HANDLERS: dict[str, _Handler] = {
    "hello": _Session.op_hello,
    "send": _Session.op_send,
    "receive": _Session.op_receive,
    "publish": _Session.op_publish,
    "subscribe": _Session.op_subscribe,
    "unsubscribe": _Session.op_unsubscribe,
    "request": _Session.op_request,
    "tool.call": _Session.op_tool_call,
    "memory.store": _Session.op_memory_store,
    "memory.query": _Session.op_memory_query,
    "egress.connect": _Session.op_egress_connect,
}
