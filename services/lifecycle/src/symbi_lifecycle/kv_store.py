"""Agent records and definitions in JetStream KV (ADR 0042).

Two buckets, keyed by agent id:

- ``lifecycle_agents``: the record (a few hundred bytes), rewritten with compare-and-set on
  the KV revision at every change; the bucket keeps the last 64 revisions of each key, which
  are the agent's history.
- ``lifecycle_definitions``: the validated definition (JSON, a few KB), written once at
  creation, behind a one-line header ``<fingerprint> <created ms>``.

Creation writes the definition first (create-if-absent), then the record (create-if-absent).
A definition without a record is a create in flight or one that crashed half way: the same
request (same fingerprint) completes it, another one waits ``orphan_after_s`` before taking
the id over. The same request retried once the record exists (a client that timed out)
gets that agent back, within ``orphan_after_s`` of its creation; after that, and for any
other request, the id is taken (AlreadyExists).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import nats.errors
import nats.js.errors
from nats.js.kv import KeyValue

from symbi_common.errors import (
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from symbi_common.jetstream.spec import BucketSpec
from symbi_lifecycle.record import AgentRecord, StoredAgent, decode_record, encode_record

__all__ = ["AGENTS_BUCKET", "DEFINITIONS_BUCKET", "KvAgentStore", "store_errors"]

#: JetStream keeps at most 64 revisions per key.
HISTORY = 64

AGENTS_BUCKET = BucketSpec(
    name="lifecycle_agents",
    description="Agent records (state, revision, restarts); the last 64 revisions are the history",
    history=HISTORY,
    max_value_size=64 * 1024,
)
DEFINITIONS_BUCKET = BucketSpec(
    name="lifecycle_definitions",
    description="Validated agent definitions (JSON), written once per agent",
    history=1,
    max_value_size=1024 * 1024,
)


@contextlib.asynccontextmanager
async def store_errors(what: str) -> AsyncIterator[None]:
    """NATS failures as Symbi errors (retryable when the store may come back)."""
    try:
        yield
    except (nats.errors.TimeoutError, TimeoutError):
        raise DeadlineExceeded(f"{what}: the KV store did not answer in time") from None
    except (
        nats.errors.ConnectionClosedError,
        nats.errors.ConnectionReconnectingError,
        nats.errors.ConnectionDrainingError,
        nats.errors.NoRespondersError,
        nats.js.errors.NoStreamResponseError,
    ) as exc:
        raise Unavailable(f"{what}: the KV store is unreachable ({type(exc).__name__})") from None
    except nats.js.errors.ServiceUnavailableError as exc:
        raise Unavailable(f"{what}: JetStream is unavailable ({exc})") from None


class KvAgentStore:
    """:class:`~symbi_lifecycle.ports.AgentStore` over two JetStream KV buckets."""

    def __init__(
        self,
        agents: KeyValue,
        definitions: KeyValue,
        *,
        clock: Callable[[], int],
        orphan_after_s: float = 30.0,
    ) -> None:
        self.agents = agents
        self.definitions = definitions
        self.clock = clock
        self.orphan_after_ms = int(orphan_after_s * 1000)

    async def create(
        self, record: AgentRecord, definition_json: str, fingerprint: str
    ) -> tuple[StoredAgent, bool]:
        agent_id = record.id
        value = f"{fingerprint} {self.clock()}\n{definition_json}".encode()
        if len(value) > 1024 * 1024 - 1024:
            raise InvalidArgument(
                f"the validated definition is {len(value)} bytes; at most 1 MiB can be stored",
                reason="DEFINITION_TOO_LARGE",
            )
        async with store_errors(f"storing agent {agent_id}"):
            try:
                definition_revision = await self.definitions.create(agent_id, value)
            except nats.js.errors.KeyWrongLastSequenceError:
                existing = await self._existing(agent_id, fingerprint)
                if existing is not None:
                    return existing, False
                definition_revision = await self._take_over(agent_id, value, fingerprint)
            try:
                revision = await self.agents.create(
                    agent_id,
                    encode_record(replace(record, definition_revision=definition_revision)),
                )
            except nats.js.errors.KeyWrongLastSequenceError:
                existing = await self._existing(agent_id, fingerprint)
                if existing is not None:
                    return existing, False
                raise AlreadyExists(
                    f"agent {agent_id} already exists", reason="AGENT_EXISTS"
                ) from None
        stored = replace(record, definition_revision=definition_revision)
        return StoredAgent(stored, revision), True

    async def _header(self, agent_id: str) -> tuple[str, int, int]:
        """The stored definition's fingerprint, creation time and revision."""
        entry = await self.definitions.get(agent_id)
        header = (entry.value or b"").split(b"\n", 1)[0].decode(errors="replace").split(" ")
        at = int(header[1]) if len(header) > 1 and header[1].isdigit() else 0
        return header[0], at, int(entry.revision or 0)

    async def _existing(self, agent_id: str, fingerprint: str) -> StoredAgent | None:
        """The agent already stored under this id, when it is this very request retried
        (same fingerprint, created less than ``orphan_after_s`` ago); AlreadyExists when
        another agent has the id; None when there is no record (yet)."""
        try:
            entry = await self.agents.get(agent_id)
        except nats.js.errors.KeyNotFoundError:
            return None
        stored = StoredAgent(decode_record(entry.value or b""), int(entry.revision or 0))
        theirs, _, _ = await self._header(agent_id)
        recent = self.clock() - stored.record.created_at_ms < self.orphan_after_ms
        if theirs == fingerprint and recent:
            return stored
        raise AlreadyExists(f"agent {agent_id} already exists", reason="AGENT_EXISTS")

    async def _take_over(self, agent_id: str, value: bytes, fingerprint: str) -> int:
        """A definition without a record is stored under this id: ours (a retry), an
        orphan, or another create in flight."""
        theirs, at, revision = await self._header(agent_id)
        if theirs == fingerprint:
            return revision
        if self.clock() - at < self.orphan_after_ms:
            raise Aborted(
                f"agent {agent_id} is being created by another request; retry in a moment",
                reason="CREATE_IN_PROGRESS",
            )
        try:
            return await self.definitions.update(agent_id, value, last=revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            raise Aborted(
                f"agent {agent_id} is being created by another request", reason="CREATE_IN_PROGRESS"
            ) from None

    async def get(self, agent_id: str) -> StoredAgent:
        async with store_errors(f"reading agent {agent_id}"):
            try:
                entry = await self.agents.get(agent_id)
            except (nats.js.errors.KeyNotFoundError, nats.js.errors.InvalidKeyError):
                raise NotFound(f"no agent {agent_id}", reason="AGENT_NOT_FOUND") from None
        return StoredAgent(decode_record(entry.value or b""), int(entry.revision or 0))

    async def write(self, record: AgentRecord, expected_revision: int) -> StoredAgent:
        async with store_errors(f"writing agent {record.id}"):
            try:
                revision = await self.agents.update(
                    record.id, encode_record(record), last=expected_revision
                )
            except nats.js.errors.KeyWrongLastSequenceError:
                raise Aborted(
                    f"agent {record.id} changed concurrently (it is no longer at revision "
                    f"{expected_revision}); read it again and retry",
                    reason="REVISION_CONFLICT",
                    details={"agent_id": record.id, "expected": str(expected_revision)},
                ) from None
        return StoredAgent(record, revision)

    async def definition(self, agent_id: str) -> str:
        async with store_errors(f"reading the definition of {agent_id}"):
            try:
                entry = await self.definitions.get(agent_id)
            except (nats.js.errors.KeyNotFoundError, nats.js.errors.InvalidKeyError):
                raise NotFound(
                    f"no definition for agent {agent_id}", reason="DEFINITION_NOT_FOUND"
                ) from None
        return (entry.value or b"").split(b"\n", 1)[-1].decode()

    async def history(self, agent_id: str) -> list[StoredAgent]:
        async with store_errors(f"reading the history of {agent_id}"):
            try:
                entries = await asyncio.wait_for(self.agents.history(agent_id), timeout=10.0)
            except (nats.js.errors.NoKeysError, nats.js.errors.InvalidKeyError):
                raise NotFound(f"no agent {agent_id}", reason="AGENT_NOT_FOUND") from None
        return [
            StoredAgent(decode_record(e.value or b""), int(e.revision or 0))
            for e in entries
            if e.value
        ]
