"""Finishing what is due or was left half done, on every replica.

Each pass looks through the index for agents whose recovery is due (Failed with
``restart_at`` passed) and agents stuck in Created, Initializing or Terminating for longer
than ``stale_after_s`` (the process that started the step died). Each is re-read and
finished; compare-and-set makes sure only one replica's move lands.
"""

from __future__ import annotations

import asyncio
import logging

from symbi_common.errors import NotFound, SymbiError
from symbi_lifecycle.index import AgentIndex
from symbi_lifecycle.lifecycle import AgentLifecycle

__all__ = ["Reconciler"]

log = logging.getLogger(__name__)


class Reconciler:
    def __init__(
        self,
        lifecycle: AgentLifecycle,
        index: AgentIndex,
        *,
        interval_s: float = 1.0,
        concurrency: int = 16,
    ) -> None:
        self.lifecycle = lifecycle
        self.index = index
        self.interval_s = interval_s
        self._limit = asyncio.Semaphore(concurrency)

    async def run(self) -> None:
        await self.index.loaded.wait()
        while True:
            await self.pass_once()
            await asyncio.sleep(self.interval_s)

    async def pass_once(self) -> int:
        """One pass; returns how many agents were looked at again."""
        now = self.lifecycle.clock()
        due = [s.record.id for s in self.index if self.lifecycle.due(s.record, now)]
        if due:
            async with asyncio.TaskGroup() as group:
                for agent_id in due:
                    group.create_task(self._one(agent_id))
        return len(due)

    async def _one(self, agent_id: str) -> None:
        async with self._limit:
            try:
                stored = await self.lifecycle.get(agent_id)
                if not self.lifecycle.due(stored.record, self.lifecycle.clock()):
                    return
                result = await self.lifecycle.reconcile(stored)
            except NotFound:
                return
            except SymbiError as exc:
                log.warning("could not finish agent %s: %s", agent_id, exc.message)
                return
            if result is not None:
                log.info("agent %s is now %s", agent_id, result.record.state.value)
