"""Network egress for agents: one checked, audited TCP tunnel per channel connection.

The container has no network interface. When a task was granted network, the agent SDK runs
an HTTP proxy inside the container whose every connection is a new channel connection that
starts with ``egress.connect``; this module decides it and relays the bytes:

1. refused unless the task was granted network;
2. host (name or IP literal) and port validated;
3. :class:`EgressPolicy` decides the destination as the agent named it;
4. the name is resolved here and every address checked against the blocked networks (the
   node's own loopback, private, link-local and metadata ranges by default) so a permitted
   name cannot reach the node's own services; the connection goes to a checked address;
5. the decision, and at the end the byte counts, are written to the :class:`AuditSink`
   before anything flows (an audit failure refuses the connection);
6. the bytes relayed, both ways, are held to the task's ``network_io_mbps`` by a
   :class:`ByteRateLimiter` shared by all of the task's tunnels (``bandwidth.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import socket
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from symbi_common.errors import (
    InvalidArgument,
    PermissionDenied,
    Unavailable,
)
from symbi_sandbox.channel.bandwidth import ByteRateLimiter
from symbi_sandbox.channel.ports import AgentContext, AuditRecord, AuditSink, EgressPolicy

__all__ = ["DEFAULT_BLOCKED_NETWORKS", "EgressConfig", "EgressGate", "Tunnel"]

_log = logging.getLogger(__name__)

DEFAULT_BLOCKED_NETWORKS: tuple[str, ...] = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
)
_HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*"
    r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?"
)


@dataclass(frozen=True)
class EgressConfig:
    """Limits of the egress proxy. ``allowed_networks`` override ``blocked_networks``."""

    blocked_networks: tuple[str, ...] = DEFAULT_BLOCKED_NETWORKS
    allowed_networks: tuple[str, ...] = ()
    connect_timeout_s: float = 10.0
    idle_timeout_s: float = 300.0
    decision_timeout_s: float = 5.0
    max_tunnels_per_task: int = 16
    chunk_bytes: int = 64 * 1024
    #: Bytes a rate-limited task may send at once after being idle (its bucket's size).
    burst_bytes: int = 64 * 1024
    _blocked: tuple[Any, ...] = field(init=False, repr=False, compare=False, default=())
    _allowed: tuple[Any, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        try:
            blocked = tuple(ipaddress.ip_network(n) for n in self.blocked_networks)
            allowed = tuple(ipaddress.ip_network(n) for n in self.allowed_networks)
        except ValueError as exc:
            raise InvalidArgument(f"egress network list: {exc}") from exc
        object.__setattr__(self, "_blocked", blocked)
        object.__setattr__(self, "_allowed", allowed)

    def permits_address(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        if any(ip in net for net in self._allowed):
            return True
        return not any(ip in net for net in self._blocked)


@dataclass
class Tunnel:
    """An open egress connection (for accounting)."""

    host: str
    port: int
    address: str
    bytes_out: int = 0
    bytes_in: int = 0


class EgressGate:
    """Decides, opens and relays egress tunnels for one node (shared by all endpoints)."""

    def __init__(self, policy: EgressPolicy, audit: AuditSink, config: EgressConfig) -> None:
        self._policy = policy
        self._audit = audit
        self._config = config

    async def _record(self, ctx: AgentContext, event: str, decision: str, **details: str) -> None:
        await asyncio.wait_for(
            self._audit.record(
                AuditRecord(
                    event_type=event,
                    task_id=ctx.task_id,
                    agent_id=ctx.agent_id,
                    decision=decision,
                    details=MappingProxyType(details),
                )
            ),
            self._config.decision_timeout_s,
        )

    async def open(
        self, ctx: AgentContext, host: object, port: object
    ) -> tuple[Tunnel, asyncio.StreamReader, asyncio.StreamWriter]:
        """Checks and connects; raises a :class:`SymbiError` saying why when refused."""
        if not isinstance(host, str) or not (_HOSTNAME.fullmatch(host) or _is_ip(host)):
            raise InvalidArgument(f"egress host must be a DNS name or IP address, got {host!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise InvalidArgument(f"egress port must be within 1..65535, got {port!r}")
        where = f"{host}:{port}"
        if not ctx.network:
            await self._record(
                ctx,
                "sandbox.egress",
                "deny",
                destination=where,
                reason="network not granted to this task",
            )
            raise PermissionDenied(
                f"egress to {where} refused: network access was not granted to this task",
                reason="NETWORK_NOT_GRANTED",
            )
        decision = await asyncio.wait_for(
            self._policy.check_egress(ctx, host, port), self._config.decision_timeout_s
        )
        if not decision.allowed:
            why = decision.reason or "policy denied the destination"
            await self._record(ctx, "sandbox.egress", "deny", destination=where, reason=why)
            raise PermissionDenied(f"egress to {where} refused: {why}", reason="EGRESS_DENIED")
        addresses = await self._resolve(host, port)
        permitted = [a for a in addresses if self._config.permits_address(a[0])]
        if not permitted:
            why = "destination resolves only to blocked (node-local or private) addresses"
            await self._record(
                ctx,
                "sandbox.egress",
                "deny",
                destination=where,
                reason=why,
                addresses=",".join(a[0] for a in addresses),
            )
            raise PermissionDenied(f"egress to {where} refused: {why}", reason="EGRESS_BLOCKED")
        address, family = permitted[0]
        await self._record(
            ctx,
            "sandbox.egress",
            "allow",
            destination=where,
            address=address,
            reason=decision.reason,
        )
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(address, port, family=family),
                self._config.connect_timeout_s,
            )
        except (OSError, TimeoutError) as exc:
            await self._record(
                ctx, "sandbox.egress.failed", "", destination=where, error=type(exc).__name__
            )
            raise Unavailable(
                f"egress to {where} failed: {exc or 'timed out'}", reason="EGRESS_CONNECT_FAILED"
            ) from exc
        return Tunnel(host, port, address), reader, writer

    async def _resolve(self, host: str, port: int) -> list[tuple[str, int]]:
        if _is_ip(host):
            ip = ipaddress.ip_address(host)
            return [(str(ip), socket.AF_INET6 if ip.version == 6 else socket.AF_INET)]
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM),
                self._config.connect_timeout_s,
            )
        except (OSError, TimeoutError) as exc:
            raise Unavailable(
                f"egress: cannot resolve {host}: {exc or 'timed out'}", reason="EGRESS_DNS_FAILED"
            ) from exc
        seen: dict[str, int] = {}
        for family, _, _, _, sockaddr in infos:
            seen.setdefault(str(sockaddr[0]), int(family))
        return list(seen.items())

    async def relay(
        self,
        ctx: AgentContext,
        tunnel: Tunnel,
        agent: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        remote: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        limiter: ByteRateLimiter | None = None,
    ) -> None:
        """Copies bytes both ways until either side closes or goes idle; audits the end.

        With a ``limiter`` every chunk, either way, waits for its bytes from it first.
        """
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._copy(agent[0], remote[1], tunnel, limiter, outbound=True))
                group.create_task(self._copy(remote[0], agent[1], tunnel, limiter, outbound=False))
        except* (OSError, TimeoutError) as errors:
            _log.debug("egress tunnel %s:%s ended: %r", tunnel.host, tunnel.port, errors)
        finally:
            remote[1].close()
            with contextlib.suppress(Exception):
                await _shielded_record(
                    self._record(
                        ctx,
                        "sandbox.egress.closed",
                        "",
                        destination=f"{tunnel.host}:{tunnel.port}",
                        bytes_out=str(tunnel.bytes_out),
                        bytes_in=str(tunnel.bytes_in),
                    )
                )

    async def _copy(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        tunnel: Tunnel,
        limiter: ByteRateLimiter | None,
        *,
        outbound: bool,
    ) -> None:
        try:
            while True:
                data = await asyncio.wait_for(
                    reader.read(self._config.chunk_bytes), self._config.idle_timeout_s
                )
                if not data:
                    break
                if limiter is not None:
                    await limiter.acquire(len(data))
                writer.write(data)
                await writer.drain()
                if outbound:
                    tunnel.bytes_out += len(data)
                else:
                    tunnel.bytes_in += len(data)
        finally:
            # Half-close so the other direction can finish its reply.
            with contextlib.suppress(OSError, RuntimeError):
                if writer.can_write_eof():
                    writer.write_eof()


async def _shielded_record(aw: Any) -> None:
    task = asyncio.ensure_future(aw)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
