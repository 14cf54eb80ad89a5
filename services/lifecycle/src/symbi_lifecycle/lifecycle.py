"""The agent lifecycle: create, move, recover and end agents — against ports only.

Every change is one compare-and-set write of the agent's record: a writer that lost the
race gets Aborted and nothing of its change is applied. Requests from people (suspend,
resume, terminate) surface that Aborted to the caller; moves the service makes itself (task
statuses, recovery, finishing an interrupted step) re-read and decide again.

Creation: validate → store (Created) → Initializing → register the Agent entity and ask
policy ``create_agent`` → install the agent's Cedar → Ready. A policy *deny* ends in Failed
for good, with the reason; a policy service that cannot answer (fail closed) ends in Failed
with a recovery planned (the restart policy), like a failed task.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from symbi_common.dsl import AgentDefinition, SourceFormat, ValidationRules, load_agent
from symbi_common.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    SymbiError,
)
from symbi_common.policy_client import PolicyDecision
from symbi_lifecycle.ports import AgentStore, PolicyGate, TaskCanceller, TransitionSink
from symbi_lifecycle.record import (
    AgentRecord,
    StoredAgent,
    TransitionInfo,
    new_agent_id,
    validate_agent_id,
)
from symbi_lifecycle.states import AgentState, check_transition
from symbi_lifecycle.task_status import StatusPlan, TaskEvent, plan_status

__all__ = ["AgentLifecycle", "HistoryEntry", "LifecycleConfig", "StatusOutcome", "now_ms"]

log = logging.getLogger(__name__)

#: How often a move the service makes itself re-reads after losing a race.
_INTERNAL_RETRIES = 8


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class LifecycleConfig:
    max_restarts: int = 3
    max_restarts_cap: int = 20
    restart_backoff_s: float = 1.0
    restart_backoff_max_s: float = 60.0
    stale_after_s: float = 15.0
    max_source_bytes: int = 256 * 1024

    def backoff_ms(self, restarts: int) -> int:
        delay = min(self.restart_backoff_s * 2 ** min(restarts, 30), self.restart_backoff_max_s)
        return int(delay * 1000)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    transition: TransitionInfo
    revision: int


@dataclass(frozen=True, slots=True)
class StatusOutcome:
    """What a task status did: ``applied`` (a transition), ``recorded`` (bookkeeping only) or
    ``ignored``, and why."""

    outcome: str
    note: str
    stored: StoredAgent | None = None


def fingerprint(text: str, source_format: str, name: str | None, owner: str) -> str:
    digest = hashlib.sha256()
    for part in (source_format, name or "", owner, text):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _max_restarts(definition: AgentDefinition, config: LifecycleConfig) -> int:
    asked = definition.execution.get("max_restarts")
    if isinstance(asked, int) and not isinstance(asked, bool) and asked >= 0:
        return min(asked, config.max_restarts_cap)
    return config.max_restarts


class AgentLifecycle:
    """The state machine of every agent, over an :class:`AgentStore`."""

    def __init__(
        self,
        store: AgentStore,
        gate: PolicyGate,
        sink: TransitionSink,
        *,
        actor: str,
        config: LifecycleConfig | None = None,
        clock: Callable[[], int] = now_ms,
        rules: ValidationRules | None = None,
        tasks: TaskCanceller | None = None,
    ) -> None:
        self.store = store
        self.gate = gate
        self.sink = sink
        self.tasks = tasks
        self.actor = actor
        self.config = config or LifecycleConfig()
        self.clock = clock
        self.rules = rules

    # ------------------------------------------------------------------ reading
    async def get(self, agent_id: str) -> StoredAgent:
        return await self.store.get(agent_id)

    async def definition(self, agent_id: str) -> str:
        return await self.store.definition(agent_id)

    async def history(self, agent_id: str) -> tuple[list[HistoryEntry], bool]:
        """The kept transitions, oldest first, and whether older ones were dropped."""
        revisions = await self.store.history(agent_id)
        entries = [
            HistoryEntry(s.record.last, s.revision)
            for s in revisions
            if s.record.write_kind == "transition"
        ]
        truncated = not entries or entries[0].transition.seq > 1
        return entries, truncated

    # ------------------------------------------------------------------ creating
    async def create(
        self,
        text: str,
        *,
        source_format: SourceFormat,
        file: str = "",
        agent_id: str = "",
        owner: str = "",
        name: str | None = None,
        actor: str | None = None,
    ) -> StoredAgent:
        """Validate and store an agent, then initialize it (Ready, or Failed with why)."""
        actor = actor or self.actor
        size = len(text.encode())
        if size > self.config.max_source_bytes:
            raise InvalidArgument(
                f"definition of {size} bytes exceeds the {self.config.max_source_bytes}-byte limit",
                reason="DEFINITION_TOO_LARGE",
            )
        if not text.strip():
            raise InvalidArgument("the definition is empty", reason="EMPTY_DEFINITION")
        agent_id = validate_agent_id(agent_id) if agent_id else new_agent_id()
        file = file or f"<{source_format}>"
        # Parsing is CPU work of a few ms: off the event loop, so other calls keep flowing.
        definition = await asyncio.to_thread(
            load_agent,
            text,
            file=file,
            format=source_format,
            name=name,
            agent_id=agent_id,
            rules=self.rules,
        )
        at = self.clock()
        record = AgentRecord(
            id=agent_id,
            name=definition.name,
            state=AgentState.CREATED,
            reason="created",
            owner=owner,
            capabilities=definition.capabilities,
            tier=definition.sandbox.value,
            memory_mb=definition.resources.memory_mb,
            cpu_millicores=definition.resources.cpu_millicores,
            timeout_ms=definition.resources.timeout_ms,
            policy_ids=tuple(p.id for p in definition.cedar.policies),
            created_at_ms=at,
            updated_at_ms=at,
            last=TransitionInfo(None, AgentState.CREATED, "created", actor, at, 1),
            max_restarts=_max_restarts(definition, self.config),
            scheduled=bool(definition.integrations_of("schedule")),
            source_format=definition.source_format,
            source_file=file,
            version=definition.version or "",
            description=definition.description or "",
        )
        stored, created = await self.store.create(
            record, definition.to_json(), fingerprint(text, source_format, name, owner)
        )
        if not created:
            return stored  # this request, retried: the first attempt's agent (ADR 0042)
        await self.sink.transitioned(stored)
        try:
            stored = await self._move(
                stored, AgentState.INITIALIZING, reason="registering with policy", actor=actor
            )
        except (Aborted, FailedPrecondition):
            return await self.store.get(agent_id)  # someone else moved it first
        return await self._initialize(stored, actor, definition.cedar.text)

    async def _initialize(self, stored: StoredAgent, actor: str, cedar: str | None) -> StoredAgent:
        """Initializing → Ready, or → Failed (denied for good, or recoverable)."""
        record = stored.record
        try:
            await self.gate.register(record)
            decision = await self.gate.allow_create(record)
        except SymbiError as exc:
            if not exc.retryable:
                return await self._settle_fail(
                    stored, f"policy registration failed: {exc.message}", actor, False
                )
            decision = PolicyDecision.closed(exc.message)
        if not decision.allowed:
            if decision.fail_closed:
                return await self._settle_fail(
                    stored, f"create not decided: {decision.reason_text()}", actor, True
                )
            try:
                await self.gate.unregister(record)
            except SymbiError as exc:
                log.warning("could not unregister denied agent %s: %s", record.id, exc.message)
            return await self._settle_fail(
                stored, f"create denied by policy: {decision.reason_text()}", actor, False
            )
        try:
            if cedar is None:
                cedar = AgentDefinition.from_json(await self.store.definition(record.id)).cedar.text
            if cedar:
                await self.gate.install(record, cedar)
        except SymbiError as exc:
            return await self._settle_fail(
                stored,
                f"installing the agent's policies failed: {exc.message}",
                actor,
                exc.retryable,
            )
        reason = "create allowed by policy"
        if decision.reasons:
            reason += f": {decision.reason_text()}"
        if decision.conditions:
            reason += f" (conditions: {', '.join(decision.conditions)})"
        try:
            return await self._move(stored, AgentState.READY, reason=reason, actor=actor)
        except (Aborted, FailedPrecondition):
            return await self.store.get(record.id)

    async def _settle_fail(
        self, stored: StoredAgent, reason: str, actor: str, restartable: bool
    ) -> StoredAgent:
        try:
            return await self._fail(stored, reason, actor, restartable)
        except (Aborted, FailedPrecondition):
            return await self.store.get(stored.record.id)

    async def _fail(
        self, stored: StoredAgent, reason: str, actor: str, restartable: bool, **changes: Any
    ) -> StoredAgent:
        record = stored.record
        restart_at = 0
        if restartable and record.restarts < record.max_restarts:
            delay_ms = self.config.backoff_ms(record.restarts)
            restart_at = self.clock() + delay_ms
            reason += (
                f" (recovery {record.restarts + 1} of {record.max_restarts} in "
                f"{delay_ms / 1000:g} s)"
            )
        elif restartable:
            reason += f" (no recovery: {record.restarts} of {record.max_restarts} restarts used)"
        return await self._move(
            stored,
            AgentState.FAILED,
            reason=reason,
            actor=actor,
            restart_at_ms=restart_at,
            **changes,
        )

    # ------------------------------------------------------------------ requests
    def _expect(self, stored: StoredAgent, expected_revision: int) -> None:
        if expected_revision and stored.revision != expected_revision:
            raise Aborted(
                f"agent {stored.record.id} is at revision {stored.revision}, not "
                f"{expected_revision}: it changed since it was read",
                reason="REVISION_MISMATCH",
                details={"revision": str(stored.revision), "expected": str(expected_revision)},
            )

    async def suspend(
        self,
        agent_id: str,
        *,
        reason: str = "",
        actor: str | None = None,
        expected_revision: int = 0,
    ) -> StoredAgent:
        stored = await self.store.get(agent_id)
        self._expect(stored, expected_revision)
        moved = await self._move(
            stored, AgentState.SUSPENDED, reason=reason or "suspended", actor=actor or self.actor
        )
        await self._stop_task(moved, "agent suspended")
        return moved

    async def resume(
        self,
        agent_id: str,
        *,
        reason: str = "",
        actor: str | None = None,
        expected_revision: int = 0,
    ) -> StoredAgent:
        """Suspended → Ready (Running if its task still runs), once policy allows
        ``modify_agent``; PermissionDenied leaves it suspended."""
        stored = await self.store.get(agent_id)
        self._expect(stored, expected_revision)
        record = stored.record
        target = AgentState.RUNNING if record.task_id else AgentState.READY
        if record.state is not AgentState.SUSPENDED:
            raise FailedPrecondition(
                f"agent {agent_id} cannot move from {record.state.value} to {target.value}: "
                "only a SUSPENDED agent resumes",
                reason="ILLEGAL_TRANSITION",
                details={"agent_id": agent_id, "from": record.state.value, "to": target.value},
            )
        try:
            decision = await self.gate.allow_modify(record, reason or "resume")
        except SymbiError as exc:
            decision = PolicyDecision.closed(exc.message)
        if not decision.allowed:
            raise PermissionDenied(
                f"resume of agent {agent_id} denied: {decision.reason_text()}",
                reason="POLICY_DENIED",
                details={"fail_closed": str(decision.fail_closed).lower()},
            )
        return await self._move(
            stored, target, reason=reason or "resumed", actor=actor or self.actor
        )

    async def terminate(
        self,
        agent_id: str,
        *,
        reason: str = "",
        actor: str | None = None,
        expected_revision: int = 0,
    ) -> StoredAgent:
        """→ Terminating → (unregistered from policy) → Terminated. When policy cannot be
        reached, the agent stays Terminating and recovery finishes it."""
        actor = actor or self.actor
        stored = await self.store.get(agent_id)
        self._expect(stored, expected_revision)
        if stored.record.state is not AgentState.TERMINATING:
            stored = await self._move(
                stored, AgentState.TERMINATING, reason=reason or "terminated", actor=actor
            )
        await self._stop_task(stored, "agent terminated")
        return await self._finish_terminating(stored, actor)

    async def _stop_task(self, stored: StoredAgent, reason: str) -> None:
        """Ask the scheduler to stop the agent's task, if it runs one (best effort)."""
        task_id = stored.record.task_id
        if not task_id or self.tasks is None:
            return
        try:
            await self.tasks.cancel(task_id, reason)
        except SymbiError as exc:
            log.warning(
                "could not cancel task %s of agent %s: %s", task_id, stored.record.id, exc.message
            )

    async def _finish_terminating(self, stored: StoredAgent, actor: str) -> StoredAgent:
        record = stored.record
        note = "unregistered from policy"
        try:
            await self.gate.unregister(record)
        except SymbiError as exc:
            if exc.retryable:
                log.info("agent %s stays terminating: %s", record.id, exc.message)
                return stored
            # It will not get better by retrying; the audit log keeps the reason.
            note = f"policy cleanup failed: {exc.message}"
        try:
            return await self._move(
                stored,
                AgentState.TERMINATED,
                reason=f"{record.reason}; {note}",
                actor=actor,
                task_id="",
                dispatch_id="",
                restart_at_ms=0,
            )
        except (Aborted, FailedPrecondition):
            return await self.store.get(record.id)

    # ------------------------------------------------------------------ the service's own moves
    async def apply_status(self, event: TaskEvent) -> StatusOutcome:
        """Follow a task status (contract C2); see :mod:`symbi_lifecycle.task_status`."""
        for _ in range(_INTERNAL_RETRIES):
            try:
                stored = await self.store.get(event.agent_id)
            except NotFound:
                return StatusOutcome("ignored", "unknown agent")
            plan = plan_status(stored.record, event)
            try:
                return await self._apply_plan(stored, plan, event)
            except Aborted:
                continue  # another writer won: read again and decide again
        return StatusOutcome("ignored", "gave up after repeated write conflicts")

    async def _apply_plan(
        self, stored: StoredAgent, plan: StatusPlan, event: TaskEvent
    ) -> StatusOutcome:
        actor = event.sender or self.actor
        if plan.target is None:
            if plan.changes is None:
                return StatusOutcome("ignored", plan.note)
            updated = stored.record.updated(self.clock(), **plan.changes)
            written = await self.store.write(updated, stored.revision)
            return StatusOutcome("recorded", plan.note, written)
        if plan.target is AgentState.FAILED:
            written = await self._fail(
                stored, plan.note, actor, plan.restartable, **(plan.changes or {})
            )
        else:
            written = await self._move(
                stored, plan.target, reason=plan.note, actor=actor, **(plan.changes or {})
            )
        return StatusOutcome("applied", plan.note, written)

    async def reconcile(self, stored: StoredAgent) -> StoredAgent | None:
        """Finish what a record says is due or left half done; None when nothing is."""
        record = stored.record
        now = self.clock()
        stale = now - record.updated_at_ms >= self.config.stale_after_s * 1000
        try:
            if record.state is AgentState.FAILED and 0 < record.restart_at_ms <= now:
                return await self._restart(stored)
            if not stale:
                return None
            if record.state is AgentState.CREATED:
                moved = await self._move(
                    stored,
                    AgentState.INITIALIZING,
                    reason="registering with policy",
                    actor=self.actor,
                )
                return await self._initialize(moved, self.actor, None)
            if record.state is AgentState.INITIALIZING:
                return await self._initialize(stored, self.actor, None)
            if record.state is AgentState.TERMINATING:
                return await self._finish_terminating(stored, self.actor)
        except (Aborted, FailedPrecondition):
            return None  # another replica got there first
        return None

    async def _restart(self, stored: StoredAgent) -> StoredAgent:
        record = stored.record
        restarts = record.restarts + 1
        moved = await self._move(
            stored,
            AgentState.INITIALIZING,
            reason=f"recovery {restarts} of {record.max_restarts} after: {record.reason}",
            actor=self.actor,
            restarts=restarts,
            restart_at_ms=0,
        )
        return await self._initialize(moved, self.actor, None)

    def due(self, record: AgentRecord, now: int) -> bool:
        """Whether :meth:`reconcile` has something to do for this record at ``now``."""
        if record.state is AgentState.FAILED:
            return 0 < record.restart_at_ms <= now
        if record.state in (AgentState.CREATED, AgentState.INITIALIZING, AgentState.TERMINATING):
            return now - record.updated_at_ms >= self.config.stale_after_s * 1000
        return False

    # ------------------------------------------------------------------ the one write path
    async def _move(
        self, stored: StoredAgent, target: AgentState, *, reason: str, actor: str, **changes: Any
    ) -> StoredAgent:
        record = stored.record
        check_transition(record.id, record.state, target)
        moved = record.moved(target, reason=reason, actor=actor, at_ms=self.clock(), **changes)
        written = await self.store.write(moved, stored.revision)
        await self.sink.transitioned(written)
        return written
