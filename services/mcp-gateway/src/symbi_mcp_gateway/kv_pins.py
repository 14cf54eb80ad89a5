"""The pin store over a NATS JetStream KV bucket, shared by every gateway replica.

Keys are ``pin.<tool id in unpadded base64url>`` (a tool id ``<server>/<tool>`` may hold
characters KV keys do not allow); values are :meth:`ToolPin.to_json`. Create-if-absent and
compare-and-set on the KV revision give the :class:`~symbi_mcp_gateway.pins.PinStore`
semantics, so two replicas racing to pin one tool cannot both win.

:meth:`KvPinStore.follow` watches the bucket: a pin changed by *another* replica (an approval,
an unpin, a pin written by its discovery) makes this replica rediscover that server, so all
replicas converge on the same view.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import logging
from collections.abc import Callable

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from symbi_common.errors import Aborted, AlreadyExists, InvalidArgument
from symbi_common.jetstream.spec import BucketSpec
from symbi_mcp_gateway.kv_keys import stored_keys
from symbi_mcp_gateway.pins import StoredPin, ToolPin

__all__ = ["PINS_BUCKET", "KvPinStore", "pin_key", "tool_id_of_key"]

logger = logging.getLogger(__name__)

PINS_BUCKET = BucketSpec(
    name="mcp_pins",
    description="MCP gateway: trust-on-first-use pins of tool definitions and SchemaPin keys",
    history=5,
    max_value_size=64 * 1024,
)

_PREFIX = "pin."
#: Writes this replica made, remembered to tell its own changes from others'.
_OWN_WRITES = 4096


def pin_key(tool_id: str) -> str:
    """``pin.<base64url(tool id)>``."""
    token = base64.urlsafe_b64encode(tool_id.encode()).decode().rstrip("=")
    return _PREFIX + token


def tool_id_of_key(key: str) -> str | None:
    """The tool id of a pin key, or None for a key that is not one."""
    if not key.startswith(_PREFIX):
        return None
    token = key[len(_PREFIX) :]
    try:
        padded = token + "=" * (-len(token) % 4)
        tool_id = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return tool_id or None


class KvPinStore:
    """A :class:`~symbi_mcp_gateway.pins.PinStore` in a JetStream KV bucket."""

    def __init__(self, kv: KeyValue, js: JetStreamContext, bucket: str) -> None:
        self._kv = kv
        self._js = js
        self._bucket = bucket
        # (key, value) of this replica's writes, recorded *before* each write: the watcher
        # may report a write before the call that made it returns its revision.
        self._own: collections.deque[tuple[str, bytes]] = collections.deque(maxlen=_OWN_WRITES)

    def _writing(self, key: str, value: bytes) -> tuple[str, bytes]:
        self._own.append((key, value))
        return key, value

    async def get(self, tool_id: str) -> StoredPin | None:
        try:
            entry = await self._kv.get(pin_key(tool_id))
        except KeyNotFoundError:  # KeyDeletedError is one too
            return None
        if entry.value is None:
            return None
        return StoredPin(ToolPin.from_json(entry.value), entry.revision or 0)

    async def create(self, pin: ToolPin) -> int:
        key, value = self._writing(pin_key(pin.tool_id), pin.to_json())
        try:
            return await self._kv.create(key, value)
        except KeyWrongLastSequenceError:
            raise AlreadyExists(
                f"tool {pin.tool_id} is already pinned", reason="PIN_EXISTS"
            ) from None

    async def update(self, pin: ToolPin, *, revision: int) -> int:
        key, value = self._writing(pin_key(pin.tool_id), pin.to_json())
        try:
            return await self._kv.update(key, value, last=revision)
        except KeyWrongLastSequenceError:
            raise Aborted(
                f"pin of {pin.tool_id} changed since revision {revision}", reason="PIN_CHANGED"
            ) from None

    async def delete(self, tool_id: str) -> bool:
        stored = await self.get(tool_id)
        if stored is None:
            return False
        key, _ = self._writing(pin_key(tool_id), b"")
        await self._kv.delete(key)
        return True

    async def list(self) -> list[ToolPin]:
        # From the stream's subject index, not a KV watch (see kv_keys).
        pins: dict[str, ToolPin] = {}
        for key in await stored_keys(self._js, self._bucket, _PREFIX):
            tool_id = tool_id_of_key(key)
            if tool_id is None:
                continue
            try:
                stored = await self.get(tool_id)
            except InvalidArgument:
                logger.warning("ignoring a malformed pin record under %s", key)
                continue
            if stored is not None:
                pins[stored.pin.tool_id] = stored.pin
        return [pins[key] for key in sorted(pins)]

    async def follow(
        self, on_foreign_change: Callable[[str], None], *, ready: asyncio.Event | None = None
    ) -> None:
        """Call ``on_foreign_change(tool_id)`` for every pin another writer changes from now
        on, until cancelled (a loop: spawn it). ``ready`` is set once the current pins have
        been passed over."""
        watcher = await self._kv.watchall()
        try:
            initial = True
            async for entry in watcher:
                if entry is None or (initial and not entry.delta):
                    initial = False
                    if ready is not None:
                        ready.set()
                    continue
                if initial:
                    continue
                tool_id = tool_id_of_key(entry.key)
                if tool_id is None or (entry.key, entry.value or b"") in self._own:
                    continue
                on_foreign_change(tool_id)
        finally:
            with contextlib.suppress(Exception):  # the connection may already be draining
                await asyncio.shield(watcher.stop())  # type: ignore[no-untyped-call]
