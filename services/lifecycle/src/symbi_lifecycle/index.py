"""Every agent's record in memory, kept current from the KV bucket; listings and watchers.

Each replica watches the agents bucket: the watch first delivers the latest record of every
agent (the index), then every write of any replica, in order per agent. Transition writes
are fanned out to WatchAgent streams, each with a bounded queue: a watcher that falls
behind is ended (RESOURCE_EXHAUSTED) rather than buffered without limit. Writes made by
this replica are also applied at once, so a listing right after a create shows it.

Listings are in agent-id order with an opaque cursor; a cursor is bound to its filters.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from nats.js.kv import KeyValue
from prometheus_client import Gauge

from symbi_common.errors import InvalidArgument, ResourceExhausted
from symbi_lifecycle.ports import AgentStore
from symbi_lifecycle.record import AgentRecord, StoredAgent, decode_record
from symbi_lifecycle.states import AgentState

__all__ = ["AgentFilter", "AgentIndex", "IndexingStore", "Page", "Watcher"]

log = logging.getLogger(__name__)

AGENTS = Gauge("symbi_lifecycle_agents", "Agents known to this replica, by state.", ["state"])


@dataclass(frozen=True, slots=True)
class AgentFilter:
    state: AgentState | None = None
    name_prefix: str = ""
    owner: str = ""

    def matches(self, stored: StoredAgent) -> bool:
        record = stored.record
        return (
            (self.state is None or record.state is self.state)
            and record.name.startswith(self.name_prefix)
            and (not self.owner or record.owner == self.owner)
        )

    @property
    def key(self) -> str:
        text = f"{self.state.value if self.state else ''}\0{self.name_prefix}\0{self.owner}"
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Page:
    agents: list[StoredAgent]
    next_token: str
    total: int


@dataclass(eq=False)
class Watcher:
    """One WatchAgent stream: transitions of one agent (or all), bounded."""

    agent_id: str
    queue: asyncio.Queue[StoredAgent] = field(default_factory=lambda: asyncio.Queue(1024))
    overflowed: bool = False

    def offer(self, stored: StoredAgent) -> None:
        if self.agent_id and stored.record.id != self.agent_id:
            return
        try:
            self.queue.put_nowait(stored)
        except asyncio.QueueFull:
            self.overflowed = True

    async def next(self) -> StoredAgent:
        if self.overflowed:
            raise ResourceExhausted(
                "this watch fell too far behind and was ended; watch again",
                reason="WATCHER_TOO_SLOW",
            )
        return await self.queue.get()


class AgentIndex:
    """The latest record of every agent, by id."""

    def __init__(self, *, queue_size: int = 1024, max_watchers: int = 1000) -> None:
        self._records: dict[str, StoredAgent] = {}
        self._ids: list[str] = []
        self._watchers: set[Watcher] = set()
        self.queue_size = queue_size
        self.max_watchers = max_watchers
        self.loaded = asyncio.Event()

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[StoredAgent]:
        return iter(list(self._records.values()))

    def get(self, agent_id: str) -> StoredAgent | None:
        return self._records.get(agent_id)

    def apply(self, stored: StoredAgent) -> bool:
        """Keep ``stored`` unless a newer revision is known; True when it was kept."""
        agent_id = stored.record.id
        current = self._records.get(agent_id)
        if current is not None and current.revision >= stored.revision:
            return False
        if current is None:
            bisect.insort(self._ids, agent_id)
        else:
            AGENTS.labels(current.record.state.value).dec()
        AGENTS.labels(stored.record.state.value).inc()
        self._records[agent_id] = stored
        return True

    # ------------------------------------------------------------------ following the bucket
    async def follow(
        self,
        kv: KeyValue,
        *,
        on_initial: Callable[[StoredAgent], Awaitable[None]] | None = None,
        on_health: Callable[[bool], Awaitable[None]] | None = None,
    ) -> None:
        """Watch the bucket until cancelled; re-watch after a failure."""
        delay = 0.2
        while True:
            try:
                await self._watch(kv, on_initial, on_health)
            except asyncio.CancelledError:
                raise
            except Exception:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # shutting down: a closing connection is no failure to retry
                log.exception("watching the agents bucket failed; watching again")
                if on_health is not None:
                    await on_health(False)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _watch(
        self,
        kv: KeyValue,
        on_initial: Callable[[StoredAgent], Awaitable[None]] | None,
        on_health: Callable[[bool], Awaitable[None]] | None,
    ) -> None:
        watcher = await kv.watchall()
        live = False
        try:
            async for entry in watcher:
                if entry is None:  # the initial values are all delivered
                    live = True
                    self.loaded.set()
                    log.info("agent index loaded: %d agents", len(self._records))
                    if on_health is not None:
                        await on_health(True)
                    continue
                if entry.operation is not None or not entry.value:
                    continue  # deletes and purges: records are never deleted by the service
                try:
                    stored = StoredAgent(decode_record(entry.value), int(entry.revision or 0))
                except InvalidArgument as exc:
                    log.error("skipping agent record %s: %s", entry.key, exc.message)
                    continue
                self.apply(stored)
                if live:
                    if stored.record.write_kind == "transition":
                        for watcher_ in list(self._watchers):
                            watcher_.offer(stored)
                elif on_initial is not None:
                    await on_initial(stored)
        finally:
            # The connection may be closing; never let that mask a cancellation.
            with contextlib.suppress(Exception):
                await watcher.stop()  # type: ignore[no-untyped-call]

    # ------------------------------------------------------------------ watchers
    def watch(self, agent_id: str) -> Watcher:
        if len(self._watchers) >= self.max_watchers:
            raise ResourceExhausted(
                f"{self.max_watchers} watches are open on this replica already",
                reason="TOO_MANY_WATCHERS",
            )
        watcher = Watcher(agent_id, asyncio.Queue(self.queue_size))
        self._watchers.add(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    # ------------------------------------------------------------------ listing
    def page(self, agent_filter: AgentFilter, size: int, token: str = "") -> Page:
        after = _decode_token(token, agent_filter.key) if token else ""
        start = bisect.bisect_right(self._ids, after) if after else 0
        agents: list[StoredAgent] = []
        total = 0
        last_id = ""
        more = False
        for position, agent_id in enumerate(self._ids):
            stored = self._records[agent_id]
            if not agent_filter.matches(stored):
                continue
            total += 1
            if position < start:
                continue
            if len(agents) < size:
                agents.append(stored)
                last_id = agent_id
            else:
                more = True
        return Page(agents, _encode_token(last_id, agent_filter.key) if more else "", total)


def _encode_token(after: str, filter_key: str) -> str:
    raw = json.dumps({"after": after, "filter": filter_key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_token(token: str, filter_key: str) -> str:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after, key = data["after"], data["filter"]
        if not isinstance(after, str) or not isinstance(key, str):
            raise ValueError("malformed")
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument(
            "page_token is not one this service issued", reason="BAD_PAGE_TOKEN"
        ) from None
    if key != filter_key:
        raise InvalidArgument(
            "page_token belongs to a listing with other filters; pass the same filters",
            reason="BAD_PAGE_TOKEN",
        )
    return after


class IndexingStore:
    """An :class:`~symbi_lifecycle.ports.AgentStore` that also puts what it writes and reads
    in the index at once (read-your-writes on this replica)."""

    def __init__(self, store: AgentStore, index: AgentIndex) -> None:
        self.store = store
        self.index = index

    async def create(
        self, record: AgentRecord, definition_json: str, fingerprint: str
    ) -> tuple[StoredAgent, bool]:
        stored, created = await self.store.create(record, definition_json, fingerprint)
        self.index.apply(stored)
        return stored, created

    async def get(self, agent_id: str) -> StoredAgent:
        stored = await self.store.get(agent_id)
        self.index.apply(stored)
        return stored

    async def write(self, record: AgentRecord, expected_revision: int) -> StoredAgent:
        stored = await self.store.write(record, expected_revision)
        self.index.apply(stored)
        return stored

    async def definition(self, agent_id: str) -> str:
        return await self.store.definition(agent_id)

    async def history(self, agent_id: str) -> list[StoredAgent]:
        return await self.store.history(agent_id)
