"""Leader election: exactly one active scheduler, through a lease in a KV bucket.

The lease is one key. Whoever creates it leads; the leader renews it with compare-and-set on
its revision every ``renew_interval_s``; the store drops the key ``ttl_s`` after its last write,
and a standby creates it again. As a second line (a store whose TTL expiry is lazy), a standby
that sees the same revision for ``ttl_s + margin`` on its own monotonic clock deletes it with
compare-and-set and takes over.

The leader considers itself leader only until ``sent + ttl_s - margin``, where ``sent`` is when
it sent its last successful renewal: the key lives at least ``ttl_s`` past that on the store,
so the old leader has stopped before anyone else can start. ``margin`` absorbs clock-rate
differences. A standby takes over at most ``ttl_s + renew_interval_s`` after the leader's last
renewal. The lease revision at acquisition is the leader's *term*; the journal's own
compare-and-set (see ``ports.TaskJournal``) fences a deposed leader that has not noticed yet.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from symbi_common.errors import Aborted, ConfigError, DeadlineExceeded, SymbiError

from .ports import Clock, LeaseStore
from .task import check_id

__all__ = ["LeaderElection", "Leadership"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Leadership:
    """The result of one election step.

    ``changed`` is True when this process just became leader or just stopped being one;
    ``holder`` is who holds the lease as far as this process knows; ``term`` is the lease
    revision at acquisition while leading; ``next_step_at`` is when to call ``step`` again
    (monotonic).
    """

    leader: bool
    changed: bool
    holder: str | None
    term: int | None
    next_step_at: float


class LeaderElection:
    """One participant in the election. Call ``step`` every time ``next_step_at`` passes."""

    def __init__(
        self,
        store: LeaseStore,
        clock: Clock,
        *,
        holder: str,
        key: str = "scheduler-leader",
        ttl_s: float = 3.0,
        renew_interval_s: float = 1.0,
        margin_s: float | None = None,
        call_timeout_s: float | None = None,
    ) -> None:
        check_id("holder", holder)
        if not (ttl_s > 0 and renew_interval_s > 0):
            raise ConfigError(
                f"lease ttl_s and renew_interval_s must be positive ({ttl_s}, {renew_interval_s})"
            )
        if renew_interval_s * 2 > ttl_s:
            raise ConfigError(
                f"lease renew_interval_s ({renew_interval_s}) must be at most half of ttl_s "
                f"({ttl_s}) so one lost renewal does not lose the lease"
            )
        self._store = store
        self._clock = clock
        self._holder = holder
        self._key = key
        self._ttl = ttl_s
        self._renew = renew_interval_s
        self._margin = margin_s if margin_s is not None else min(renew_interval_s, ttl_s / 4)
        if not 0 <= self._margin < ttl_s - renew_interval_s:
            raise ConfigError(
                f"lease margin_s ({self._margin}) must be >= 0 and below ttl_s - renew_interval_s"
            )
        self._timeout = call_timeout_s if call_timeout_s is not None else renew_interval_s
        self._revision: int | None = None  # set while leading
        self._term: int | None = None
        self._valid_until = 0.0
        self._seen_holder: str | None = None
        self._observed: tuple[int, float] | None = None  # (revision, first seen at)
        self._reported = False  # leadership as of the last step, to report changes

    @property
    def holder(self) -> str:
        return self._holder

    @property
    def known_holder(self) -> str | None:
        """Who holds the lease as far as this process knows (itself while leading)."""
        return self._holder if self.is_leader else self._seen_holder

    @property
    def term(self) -> int | None:
        return self._term if self.is_leader else None

    @property
    def is_leader(self) -> bool:
        """True while this process holds an unexpired lease (by its own clock)."""
        return self._revision is not None and self._clock.monotonic() < self._valid_until

    def _value(self) -> bytes:
        return json.dumps({"holder": self._holder, "since": self._clock.now()}).encode()

    @staticmethod
    def _holder_of(value: bytes) -> str | None:
        try:
            holder = json.loads(value).get("holder")
        except (ValueError, AttributeError):
            return None
        return holder if isinstance(holder, str) else None

    async def _call(self, awaitable: Awaitable[_T]) -> _T:
        try:
            async with asyncio.timeout(self._timeout):
                return await awaitable
        except TimeoutError:
            raise DeadlineExceeded(
                f"lease store did not answer within {self._timeout:g}s", reason="PORT_TIMEOUT"
            ) from None

    async def step(self) -> Leadership:
        """Renew the lease if leading, else try to take it. Never raises for store trouble:
        it is reported as not leading (or still leading, until the lease runs out)."""
        was_leader = self._reported
        if self._revision is not None:
            await self._renew_lease()
        else:
            await self._try_acquire()
        leader = self.is_leader
        if not leader:
            self._revision = None
        self._reported = leader
        if leader != was_leader:
            log.info(
                "%s %s the scheduler lease %r (term %s)",
                self._holder,
                "acquired" if leader else "lost",
                self._key,
                self._term,
            )
        now = self._clock.monotonic()
        return Leadership(
            leader=leader,
            changed=leader != was_leader,
            holder=self._holder if leader else self._seen_holder,
            term=self._term if leader else None,
            next_step_at=now + self._renew,
        )

    async def _renew_lease(self) -> None:
        assert self._revision is not None
        sent = self._clock.monotonic()
        if sent >= self._valid_until:
            self._revision = None
            return
        try:
            self._revision = await self._call(
                self._store.update(self._key, self._value(), revision=self._revision)
            )
        except Aborted:
            self._revision = None  # someone else holds it now
            return
        except SymbiError as exc:
            # Keep leading until the lease would have run out; the next step retries.
            log.warning("lease renewal failed: %s", exc.message)
            return
        self._valid_until = sent + self._ttl - self._margin

    async def _try_acquire(self) -> None:
        sent = self._clock.monotonic()
        try:
            current = await self._call(self._store.get(self._key))
            if current is None:
                self._seen_holder = None
                revision = await self._call(self._store.create(self._key, self._value()))
            else:
                self._seen_holder = self._holder_of(current.value)
                if self._observed is None or self._observed[0] != current.revision:
                    self._observed = (current.revision, sent)
                    return
                if sent - self._observed[1] < self._ttl + self._margin:
                    return
                # Same revision for longer than a lease lives: the holder is gone and the
                # store has not expired the key yet.
                await self._call(self._store.delete(self._key, revision=current.revision))
                revision = await self._call(self._store.create(self._key, self._value()))
        except SymbiError as exc:
            if not isinstance(exc, Aborted):
                log.debug("lease acquisition failed: %s", exc.message)
            return
        self._revision = revision
        self._term = revision
        self._valid_until = sent + self._ttl - self._margin
        self._seen_holder = self._holder
        self._observed = None

    async def resign(self) -> None:
        """Give the lease up now (graceful shutdown) so a standby takes over at once."""
        revision, self._revision = self._revision, None
        self._valid_until = 0.0
        self._reported = False
        if revision is None:
            return
        try:
            await self._call(self._store.delete(self._key, revision=revision))
        except SymbiError as exc:
            log.warning("could not release the lease (it will expire): %s", exc.message)
