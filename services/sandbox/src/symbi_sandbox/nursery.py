"""A task group that lives as long as the service and takes tasks started at any time.

The service's per-task work (starting an assignment, watching a run, an agent's key
directory) is short-lived and started from handlers; :class:`Nursery` keeps each of those
tasks under one parent (its :meth:`run` is spawned on the process's TaskGroup), logs a child
that fails instead of letting it take the service down, and cancels every child when the
service stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from symbi_common.errors import Unavailable

__all__ = ["Nursery"]

_log = logging.getLogger(__name__)


class Nursery:
    """Children of one long-lived parent task (see the module docstring)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._group: asyncio.TaskGroup | None = None
        self._ready = asyncio.Event()
        self._children: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Hosts the children until cancelled (then cancels them and waits for them)."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            self._ready.set()
            try:
                await asyncio.Event().wait()
            finally:
                self._group = None

    async def ready(self) -> None:
        await self._ready.wait()

    @property
    def active(self) -> int:
        return len(self._children)

    def start_soon(self, coro: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
        """Starts ``coro`` as a child; a child that raises is logged, never propagated."""
        if self._group is None:
            coro.close()
            raise Unavailable(f"{self.name} is not running", reason="SHUTTING_DOWN")
        task = self._group.create_task(self._guard(coro, name), name=name)
        self._children.add(task)
        task.add_done_callback(self._children.discard)
        return task

    async def _guard(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("%s: task %s failed", self.name, name)
