"""Servers registered at run time (gRPC ``RegisterServer``), kept in a JetStream KV bucket.

Every replica follows the bucket and serves every server in it; a restarted replica finds them
again. Keys are server names (``[a-z0-9-]``, valid KV keys as they are); values are the
server's whole :class:`~symbi_mcp_gateway.config.McpServerConfig` as JSON, limits resolved at
registration, so every replica runs the same configuration. Servers of the ``[mcp]``
configuration are not stored here: each replica has them from its own configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from symbi_common.errors import AlreadyExists
from symbi_common.jetstream.spec import BucketSpec
from symbi_mcp_gateway.config import McpServerConfig

__all__ = ["SERVERS_BUCKET", "KvServerRegistry"]

logger = logging.getLogger(__name__)

SERVERS_BUCKET = BucketSpec(
    name="mcp_servers",
    description="MCP gateway: servers registered at run time, served by every replica",
    history=1,
    max_value_size=64 * 1024,
)


def _encode(config: McpServerConfig) -> bytes:
    return json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()


def _decode(data: bytes) -> McpServerConfig:
    return McpServerConfig.model_validate_json(data)


class KvServerRegistry:
    """The registered servers, shared by every replica."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def add(self, config: McpServerConfig) -> bool:
        """Store a server; False when it is already stored with the same configuration.

        Raises:
            AlreadyExists: another configuration is stored under the name.
        """
        try:
            await self._kv.create(config.name, _encode(config))
            return True
        except KeyWrongLastSequenceError:
            pass
        existing = await self.get(config.name)
        if existing == config:
            return False
        raise AlreadyExists(
            f"a server named {config.name!r} is already registered with other settings; "
            "remove it first",
            reason="SERVER_EXISTS",
        )

    async def get(self, name: str) -> McpServerConfig | None:
        try:
            entry = await self._kv.get(name)
        except KeyNotFoundError:
            return None
        return _decode(entry.value) if entry.value else None

    async def remove(self, name: str) -> bool:
        """Forget a server; whether it was stored."""
        if await self.get(name) is None:
            return False
        await self._kv.delete(name)
        return True

    async def follow(
        self,
        on_added: Callable[[McpServerConfig], Awaitable[None]],
        on_removed: Callable[[str], Awaitable[None]],
        *,
        ready: asyncio.Event | None = None,
    ) -> None:
        """Report every stored server (the current ones first), then every change, until
        cancelled (a loop: spawn it). ``ready`` is set once the current ones are reported."""
        watcher = await self._kv.watchall()
        try:
            async for entry in watcher:
                if entry is None:
                    if ready is not None:
                        ready.set()  # the end of the current values
                    continue
                if entry.operation in ("DEL", "PURGE") or not entry.value:
                    await on_removed(entry.key)
                    continue
                try:
                    config = _decode(entry.value)
                except ValidationError as exc:
                    logger.error("ignoring stored server %s: %s", entry.key, exc)
                    continue
                await on_added(config)
                if ready is not None and not entry.delta:
                    ready.set()
        finally:
            with contextlib.suppress(Exception):  # the connection may already be draining
                await asyncio.shield(watcher.stop())  # type: ignore[no-untyped-call]
