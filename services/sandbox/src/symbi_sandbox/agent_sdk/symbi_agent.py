"""symbi_agent: the agent side of the Symbi sandbox channel (standard library only).

Inside a Symbi sandbox this module is importable as ``import symbi_agent`` (it is mounted
read-only at ``/opt/symbi/sdk``, which is on ``PYTHONPATH``). The container has no network;
its only way out is the Unix socket at ``$SYMBI_AGENT_SOCKET``, on which every call is
checked by policy and audited under the agent's identity::

    import symbi_agent

    with symbi_agent.connect() as channel:
        channel.send("agent-b", {"hello": "world"})
        message = channel.receive(timeout=5)          # dict or None
        channel.publish("news", {"n": 1})
        with channel.subscribe("news") as sub:
            first = sub.get(timeout=5)
        reply = channel.request("agent-b", {"q": 1}, timeout=10)
        result = channel.call_tool("time.get_current_time", {"timezone": "UTC"})
        memory_id = channel.store_memory("the sky is blue", metadata={"src": "obs"})
        hits = channel.query_memory("sky colour", limit=3)

    # Egress, when the task was granted network: a local HTTP proxy over the channel.
    proxy = symbi_agent.start_egress_proxy()          # sets HTTP_PROXY / HTTPS_PROXY
    urllib.request.urlopen("http://example.org/")      # goes through the proxy

A refused call raises :class:`PermissionDenied` (``.reason`` says why); other failures raise
:class:`ChannelError` with the server's ``code``. The wire protocol: frames of a 4-byte
big-endian length and a UTF-8 JSON object; see docs/sandbox.md.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import select
import socket
import socketserver
import struct
import threading
from typing import Any

__all__ = [
    "Channel",
    "ChannelError",
    "EgressProxy",
    "PermissionDenied",
    "Subscription",
    "connect",
    "open_tunnel",
    "start_egress_proxy",
]

DEFAULT_SOCKET = "/run/symbi/agent.sock"
MAX_FRAME_BYTES = 1024 * 1024
_HEADER = struct.Struct(">I")


class ChannelError(Exception):
    """A call failed; ``code`` is the status name (e.g. ``INVALID_ARGUMENT``)."""

    def __init__(self, code: str, reason: str, message: str, retryable: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.retryable = retryable


class PermissionDenied(ChannelError):
    """Policy refused the call; ``reason`` and ``message`` say why."""


def _error(body: Any) -> ChannelError:
    if not isinstance(body, dict):
        return ChannelError("INTERNAL", "MALFORMED_ERROR", repr(body))
    cls = PermissionDenied if body.get("code") == "PERMISSION_DENIED" else ChannelError
    return cls(
        str(body.get("code", "INTERNAL")),
        str(body.get("reason", "")),
        str(body.get("message", "")),
        bool(body.get("retryable", False)),
    )


def socket_path(path: str | None = None) -> str:
    """The channel socket: ``path``, else ``$SYMBI_AGENT_SOCKET``, else the default."""
    return path or os.environ.get("SYMBI_AGENT_SOCKET") or DEFAULT_SOCKET


def _write_frame(sock: socket.socket, body: dict[str, Any]) -> None:
    data = json.dumps(body, separators=(",", ":")).encode()
    if len(data) > MAX_FRAME_BYTES:
        raise ChannelError("INVALID_ARGUMENT", "FRAME_TOO_LARGE", f"{len(data)}-byte frame")
    sock.sendall(_HEADER.pack(len(data)) + data)


def _read_exact(sock: socket.socket, n: int) -> bytes | None:
    parts: list[bytes] = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            return None
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def _read_frame(sock: socket.socket) -> dict[str, Any] | None:
    header = _read_exact(sock, _HEADER.size)
    if header is None:
        return None
    (length,) = _HEADER.unpack(header)
    data = _read_exact(sock, length)
    if data is None:
        return None
    body = json.loads(data)
    return body if isinstance(body, dict) else None


class _Pending:
    __slots__ = ("body", "done", "subscription_maxsize")

    def __init__(self, subscription_maxsize: int = 0) -> None:
        self.done = threading.Event()
        self.body: dict[str, Any] | None = None
        # For subscribe calls: the reader registers the subscription itself, before it reads
        # the next frame, so that no message following the answer is dropped.
        self.subscription_maxsize = subscription_maxsize


class Subscription:
    """Messages of one topic; iterate, or ``get(timeout)``; ``close()`` to unsubscribe."""

    def __init__(self, channel: Channel, sid: int, maxsize: int) -> None:
        self._channel = channel
        self.sid = sid
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize)
        self.error: ChannelError | None = None
        self.closed = False

    def _deliver(self, item: dict[str, Any] | None) -> None:
        self._queue.put(item)

    def get(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next message, or ``None`` on timeout or when the subscription ended."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is None:
            self.closed = True
            self._queue.put(None)  # later calls see the end too
        return item

    def __iter__(self) -> Subscription:
        return self

    def __next__(self) -> dict[str, Any]:
        item = self.get()
        if item is None:
            raise StopIteration
        return item

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._channel._subscriptions.pop(self.sid, None)
            with contextlib.suppress(ChannelError):
                self._channel._call({"op": "unsubscribe", "subscription": self.sid})

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Channel:
    """A connection to the sandbox channel. Thread-safe; calls block until answered."""

    def __init__(self, path: str | None = None, *, timeout: float = 60.0) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.connect(socket_path(path))
        self._timeout = timeout
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._subscriptions: dict[int, Subscription] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._closed = False
        self._reader = threading.Thread(target=self._read_loop, name="symbi-channel", daemon=True)
        self._reader.start()

    def _read_loop(self) -> None:
        try:
            while True:
                body = _read_frame(self._sock)
                if body is None:
                    break
                if "event" in body:
                    sub = self._subscriptions.get(body.get("subscription", -1))
                    if sub is None:
                        continue
                    if body["event"] == "message":
                        sub._deliver(body.get("message"))
                    else:
                        if "error" in body:
                            sub.error = _error(body["error"])
                        sub._deliver(None)
                    continue
                with self._lock:
                    pending = self._pending.pop(body.get("id", -1), None)
                if pending is None and body.get("id") is None and not body.get("ok", True):
                    # An error about a frame the server could not attribute: fail everyone.
                    with self._lock:
                        waiting, self._pending = list(self._pending.values()), {}
                    for other in waiting:
                        other.body = body
                        other.done.set()
                    continue
                if pending is not None:
                    if pending.subscription_maxsize and body.get("ok"):
                        sid = int(body["result"]["subscription"])
                        self._subscriptions[sid] = Subscription(
                            self, sid, pending.subscription_maxsize
                        )
                    pending.body = body
                    pending.done.set()
        except OSError:
            pass
        finally:
            self._closed = True
            with self._lock:
                waiting, self._pending = list(self._pending.values()), {}
            for pending in waiting:
                pending.done.set()
            for sub in list(self._subscriptions.values()):
                sub._deliver(None)

    def _call(
        self, body: dict[str, Any], timeout: float | None = None, *, subscription_maxsize: int = 0
    ) -> Any:
        if self._closed:
            raise ChannelError("UNAVAILABLE", "CHANNEL_CLOSED", "the channel is closed")
        request_id = next(self._ids)
        pending = _Pending(subscription_maxsize)
        with self._lock:
            # The reader marks the channel closed before it fails the pending calls, so a
            # call registered after that sees the flag here instead of waiting in vain.
            if self._closed:
                raise ChannelError("UNAVAILABLE", "CHANNEL_CLOSED", "the channel is closed")
            self._pending[request_id] = pending
        try:
            with self._send_lock:
                _write_frame(self._sock, {"id": request_id, **body})
        except OSError as exc:
            with self._lock:
                self._pending.pop(request_id, None)
            raise ChannelError(
                "UNAVAILABLE", "CHANNEL_CLOSED", f"the channel closed: {exc}"
            ) from exc
        if not pending.done.wait(timeout if timeout is not None else self._timeout):
            with self._lock:
                self._pending.pop(request_id, None)
            raise ChannelError("DEADLINE_EXCEEDED", "CLIENT_TIMEOUT", f"{body['op']} timed out")
        if pending.body is None:
            raise ChannelError("UNAVAILABLE", "CHANNEL_CLOSED", "the channel closed")
        if not pending.body.get("ok"):
            raise _error(pending.body.get("error"))
        return pending.body.get("result")

    def hello(self) -> dict[str, Any]:
        """Who this channel speaks for: task, agent, node, whether network was granted."""
        result: dict[str, Any] = self._call({"op": "hello"})
        return result

    def send(self, to: str, payload: Any) -> str:
        """Sends a direct message to agent ``to``; returns the message id."""
        return str(self._call({"op": "send", "to": to, "payload": payload})["message_id"])

    def receive(self, timeout: float = 0.0) -> dict[str, Any] | None:
        """The next direct message (``sender``, ``payload``, ...) or ``None`` after ``timeout``."""
        result = self._call({"op": "receive", "timeout_s": timeout}, timeout + self._timeout)
        message: dict[str, Any] | None = result["message"]
        return message

    def publish(self, topic: str, payload: Any) -> str:
        return str(self._call({"op": "publish", "topic": topic, "payload": payload})["message_id"])

    def subscribe(self, topic: str, *, maxsize: int = 1024) -> Subscription:
        """Subscribes to ``topic``; messages queue in the returned :class:`Subscription`."""
        result = self._call(
            {"op": "subscribe", "topic": topic}, subscription_maxsize=max(1, maxsize)
        )
        return self._subscriptions[int(result["subscription"])]

    def request(self, to: str, payload: Any, timeout: float = 30.0) -> Any:
        """Request/reply; returns the reply payload."""
        body = {"op": "request", "to": to, "payload": payload, "timeout_s": timeout}
        return self._call(body, timeout + self._timeout)["payload"]

    def call_tool(self, tool: str, arguments: dict[str, Any] | None = None) -> Any:
        """Calls an MCP tool through the gateway (policy-checked, audited)."""
        return self._call({"op": "tool.call", "tool": tool, "arguments": arguments or {}})["result"]

    def store_memory(
        self,
        content: str,
        kind: str = "long_term",
        metadata: dict[str, Any] | None = None,
        tags: list[str] | None = None,
    ) -> str:
        body = {
            "op": "memory.store",
            "content": content,
            "kind": kind,
            "metadata": metadata or {},
            "tags": tags or [],
        }
        return str(self._call(body)["memory_id"])

    def query_memory(
        self, query: str, limit: int = 10, kind: str | None = None
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"op": "memory.query", "query": query, "limit": limit}
        if kind is not None:
            body["kind"] = kind
        items: list[dict[str, Any]] = self._call(body)["items"]
        return items

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._reader.join(timeout=5)

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(path: str | None = None, *, timeout: float = 60.0) -> Channel:
    """Opens the channel (``$SYMBI_AGENT_SOCKET`` unless ``path`` is given)."""
    return Channel(path, timeout=timeout)


def open_tunnel(
    host: str, port: int, path: str | None = None, timeout: float = 30.0
) -> socket.socket:
    """A socket connected to ``host:port`` through the sandbox (policy-checked, audited)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(socket_path(path))
        _write_frame(sock, {"id": 1, "op": "egress.connect", "host": host, "port": port})
        answer = _read_frame(sock)
        if answer is None:
            raise ChannelError("UNAVAILABLE", "CHANNEL_CLOSED", "no answer to egress.connect")
        if not answer.get("ok"):
            raise _error(answer.get("error"))
        sock.settimeout(None)
        return sock
    except BaseException:
        sock.close()
        raise


def _relay(a: socket.socket, b: socket.socket, idle_s: float = 300.0) -> None:
    sockets = [a, b]
    open_ends = {a: True, b: True}
    while any(open_ends.values()):
        readable, _, _ = select.select([s for s in sockets if open_ends[s]], [], [], idle_s)
        if not readable:
            return
        for src in readable:
            dst = b if src is a else a
            data = src.recv(65536)
            if not data:
                open_ends[src] = False
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                continue
            dst.sendall(data)


class _ProxyHandler(socketserver.BaseRequestHandler):
    server: _ProxyServer

    def handle(self) -> None:
        client: socket.socket = self.request
        client.settimeout(60)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk or len(head) > 64 * 1024:
                return
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            client.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            return
        if method.upper() == "CONNECT":
            host, _, port_text = target.rpartition(":")
            port = int(port_text or 443)
            prefix = b""
        else:
            if not target.lower().startswith("http://"):
                client.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                return
            hostport, _, path = target[7:].partition("/")
            host, _, port_text = hostport.partition(":")
            port = int(port_text or 80)
            headers = [h for h in lines[1:] if not h.lower().startswith("proxy-")]
            prefix = "\r\n".join([f"{method} /{path} {version}", *headers]).encode("latin-1")
            prefix += b"\r\n\r\n" + rest
        host = host.strip("[]")
        try:
            upstream = open_tunnel(host, port, self.server.socket_path)
        except ChannelError as exc:
            status = "403 Forbidden" if exc.code == "PERMISSION_DENIED" else "502 Bad Gateway"
            body = f"{exc.code}: {exc.message}\n".encode()
            client.sendall(
                f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            return
        with upstream:
            client.settimeout(None)
            if method.upper() == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    upstream.sendall(rest)
            else:
                upstream.sendall(prefix)
            _relay(client, upstream)


class _ProxyServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    socket_path: str


class EgressProxy:
    """An HTTP proxy on loopback inside the container; each connection is a channel tunnel."""

    def __init__(self, path: str | None = None) -> None:
        self._server = _ProxyServer(("127.0.0.1", 0), _ProxyHandler)
        self._server.socket_path = socket_path(path)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="symbi-egress", daemon=True
        )

    def start(self) -> EgressProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def start_egress_proxy(path: str | None = None, *, set_env: bool = True) -> EgressProxy:
    """Starts the proxy; with ``set_env`` points ``HTTP(S)_PROXY`` at it for this process."""
    proxy = EgressProxy(path).start()
    if set_env:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            os.environ[name] = proxy.url
        os.environ.pop("NO_PROXY", None)
        os.environ.pop("no_proxy", None)
    return proxy
