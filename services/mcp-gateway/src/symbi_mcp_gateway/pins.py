"""Trust-on-first-use pins: what the gateway accepted for each tool, shared by all replicas.

A :class:`ToolPin` records, for ``<server>/<tool>``, the definition hash last accepted and the
SchemaPin key (fingerprint and PEM) that signed it, if any. The :class:`PinStore` port is
shaped like a JetStream KV bucket — get with revision, create-if-absent, compare-and-set
update, delete — so the NATS adapter of the wiring phase is a thin translation and two
replicas racing to pin the same tool cannot both win. :class:`MemoryPinStore` is the
in-process implementation.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol, TypeVar

from symbi_common.errors import Aborted, AlreadyExists, InvalidArgument, Unavailable

__all__ = ["MemoryPinStore", "PinStore", "StoredPin", "TimedPinStore", "ToolPin"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ToolPin:
    """What was accepted for one tool of one server."""

    server: str
    tool: str
    #: ``sha256:<hex>`` of the tool document last accepted.
    definition_hash: str
    #: The SchemaPin domain the key was discovered under; None for unsigned tools.
    domain: str | None = None
    #: ``sha256:<hex>`` of the pinned key (DER SubjectPublicKeyInfo); None when unsigned.
    key_fingerprint: str | None = None
    #: The pinned key itself, so a tool still verifies while discovery is unreachable.
    public_key_pem: str | None = None
    pinned_at_ms: int = 0
    updated_at_ms: int = 0
    #: The operator who approved the current definition or key, when one did.
    approved_by: str | None = None

    @property
    def tool_id(self) -> str:
        """``<server>/<tool>``."""
        return f"{self.server}/{self.tool}"

    def with_changes(self, **changes: Any) -> ToolPin:
        """A copy with some fields replaced."""
        return replace(self, **changes)

    def to_json(self) -> bytes:
        """Serialized form (for KV values)."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> ToolPin:
        """Parse :meth:`to_json` output.

        Raises:
            InvalidArgument: the data is not a pin record.
        """
        try:
            raw = json.loads(data)
            if not isinstance(raw, Mapping):
                raise TypeError("not an object")
            return cls(**raw)
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(f"not a tool pin record: {exc}", reason="BAD_PIN") from None


@dataclass(frozen=True, slots=True)
class StoredPin:
    """A pin and the store revision it was read at (for compare-and-set updates)."""

    pin: ToolPin
    revision: int


class PinStore(Protocol):
    """Where pins live. Every replica of the gateway shares one."""

    async def get(self, tool_id: str) -> StoredPin | None:
        """The pin of ``<server>/<tool>``, or None."""
        ...

    async def create(self, pin: ToolPin) -> int:
        """Store a new pin; its revision.

        Raises:
            AlreadyExists: the tool is already pinned (another replica won the race).
        """
        ...

    async def update(self, pin: ToolPin, *, revision: int) -> int:
        """Replace the pin last read at ``revision``; the new revision.

        Raises:
            Aborted: the pin changed (or vanished) since it was read.
        """
        ...

    async def delete(self, tool_id: str) -> bool:
        """Remove a pin; whether there was one."""
        ...

    async def list(self) -> list[ToolPin]:
        """Every pin, ordered by tool id."""
        ...


class MemoryPinStore:
    """A :class:`PinStore` in process memory (one replica, lost on restart)."""

    def __init__(self) -> None:
        self._pins: dict[str, StoredPin] = {}
        self._revision = 0
        self._lock = asyncio.Lock()

    async def get(self, tool_id: str) -> StoredPin | None:
        return self._pins.get(tool_id)

    async def create(self, pin: ToolPin) -> int:
        async with self._lock:
            if pin.tool_id in self._pins:
                raise AlreadyExists(f"tool {pin.tool_id} is already pinned", reason="PIN_EXISTS")
            return self._store(pin)

    async def update(self, pin: ToolPin, *, revision: int) -> int:
        async with self._lock:
            current = self._pins.get(pin.tool_id)
            if current is None or current.revision != revision:
                raise Aborted(
                    f"pin of {pin.tool_id} changed since revision {revision}",
                    reason="PIN_CHANGED",
                )
            return self._store(pin)

    async def delete(self, tool_id: str) -> bool:
        async with self._lock:
            return self._pins.pop(tool_id, None) is not None

    async def list(self) -> list[ToolPin]:
        return [self._pins[key].pin for key in sorted(self._pins)]

    def _store(self, pin: ToolPin) -> int:
        self._revision += 1
        self._pins[pin.tool_id] = StoredPin(pin, self._revision)
        return self._revision


class TimedPinStore:
    """A :class:`PinStore` whose every operation has a deadline (the KV behind it may hang)."""

    def __init__(self, inner: PinStore, *, timeout_s: float) -> None:
        self._inner = inner
        self._timeout_s = timeout_s

    async def _within(self, what: str, call: Awaitable[_T]) -> _T:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await call
        except TimeoutError:
            raise Unavailable(
                f"the pin store did not answer {what} within {self._timeout_s}s",
                reason="PIN_STORE_UNAVAILABLE",
            ) from None

    async def get(self, tool_id: str) -> StoredPin | None:
        return await self._within("a read", self._inner.get(tool_id))

    async def create(self, pin: ToolPin) -> int:
        return await self._within("a create", self._inner.create(pin))

    async def update(self, pin: ToolPin, *, revision: int) -> int:
        return await self._within("an update", self._inner.update(pin, revision=revision))

    async def delete(self, tool_id: str) -> bool:
        return await self._within("a delete", self._inner.delete(tool_id))

    async def list(self) -> list[ToolPin]:
        return await self._within("a listing", self._inner.list())
