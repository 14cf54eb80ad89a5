"""``LeaseStore`` on a NATS KV bucket whose TTL is the lease's.

The bucket (``<prefix>_scheduler_lease``, history 1, ``ttl`` = ``lease_ttl_s``) drops a key
``ttl`` after its last write; ``create`` is create-if-absent, ``update`` and ``delete`` are
compare-and-set on the revision (JetStream ``Nats-Expected-Last-Subject-Sequence``). A
conflict is ``Aborted``; anything else about NATS is ``Unavailable``/``DeadlineExceeded``.
"""

from __future__ import annotations

from nats.js import errors as js_errors
from nats.js.kv import KeyValue

from .nats_errors import nats_call
from .ports import LeaseRecord

__all__ = ["KvLeaseStore"]


class KvLeaseStore:
    """The leader lease's store (see the module docstring)."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def get(self, key: str) -> LeaseRecord | None:
        async with nats_call("lease get"):
            try:
                entry = await self._kv.get(key)
            except js_errors.KeyNotFoundError:  # also a deleted or purged key
                return None
        if entry.value is None or entry.revision is None:
            return None
        return LeaseRecord(value=entry.value, revision=int(entry.revision))

    async def create(self, key: str, value: bytes) -> int:
        async with nats_call("lease create"):
            return int(await self._kv.create(key, value))

    async def update(self, key: str, value: bytes, *, revision: int) -> int:
        async with nats_call("lease update"):
            return int(await self._kv.update(key, value, last=revision))

    async def delete(self, key: str, *, revision: int) -> None:
        async with nats_call("lease delete"):
            await self._kv.delete(key, last=revision)
