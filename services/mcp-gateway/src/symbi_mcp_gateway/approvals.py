"""Human approval of tool calls that policy allows only under ``require_approval`` (ADR 0086).

A call refused for want of an approval leaves a :class:`CallApproval` behind: who (agent),
what (``<server>/<tool>``, the SHA-256 of the canonical arguments), why (the policies and
reasons of the decision), when (created, expires). An operator approves or denies it; an
approved approval lets the *same* call through *once* before it expires.

States::

    PENDING --approve--> APPROVED --the same call--> CONSUMED
       |                    (expiry ends every state but the last)
       +----deny-------> DENIED  (the same call is refused until it expires)

One record per (agent, tool, argument hash): its key is the first 128 bits of
``sha256(agent \\0 tool id \\0 arguments hash)``, and the approval id
``apr-<that digest>-<nonce>`` names the record *and* its instance, so an id from an earlier
round (consumed, expired, replaced) never decides a newer one. Every transition is a
compare-and-set on the store's revision: of two replicas racing to consume one approval,
one wins and the other refuses the call.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, Protocol

from symbi_common.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from symbi_mcp_gateway.audit import AlertKind, AuditEvent, SecurityAlert

__all__ = [
    "ApprovalBook",
    "ApprovalState",
    "ApprovalStore",
    "CallApproval",
    "MemoryApprovalStore",
    "StoredApproval",
    "call_digest",
    "digest_of_id",
]

_ID = re.compile(r"^apr-([0-9a-f]{32})-([0-9a-f]{8})$")
#: Compare-and-set rounds before a contended transition gives up (``Aborted``).
_CAS_ROUNDS = 5


class ApprovalState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    CONSUMED = "consumed"


def call_digest(agent_id: str, tool_id: str, arguments_sha256: str) -> str:
    """The record key of a call: 32 hex digits."""
    text = "\0".join((agent_id, tool_id, arguments_sha256))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def digest_of_id(approval_id: str) -> str:
    """The record key an approval id names.

    Raises:
        InvalidArgument: not an approval id.
    """
    match = _ID.match(approval_id)
    if match is None:
        raise InvalidArgument(
            f"{approval_id[:80]!r} is not an approval id (apr-<32 hex>-<8 hex>)",
            reason="BAD_APPROVAL_ID",
        )
    return match.group(1)


@dataclass(frozen=True, slots=True)
class CallApproval:
    """One approval (see the module docstring)."""

    approval_id: str
    agent_id: str
    server: str
    tool: str
    arguments_sha256: str
    created_at_ms: int
    expires_at_ms: int
    policies: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    state: ApprovalState = ApprovalState.PENDING
    decided_by: str = ""
    decided_at_ms: int = 0
    consumed_at_ms: int = 0

    @property
    def tool_id(self) -> str:
        return f"{self.server}/{self.tool}"

    @property
    def digest(self) -> str:
        return digest_of_id(self.approval_id)

    def expired(self, now_ms: int) -> bool:
        return now_ms >= self.expires_at_ms

    def covers(self, agent_id: str, tool_id: str, arguments_sha256: str) -> bool:
        """Whether this approval is for exactly that call."""
        return (self.agent_id, self.tool_id, self.arguments_sha256) == (
            agent_id,
            tool_id,
            arguments_sha256,
        )

    def decide(self, *, approve: bool, actor: str, now_ms: int) -> CallApproval:
        """The approval approved or denied by ``actor``.

        Raises:
            FailedPrecondition: it is not pending (``APPROVAL_NOT_PENDING``) or has expired
                (``APPROVAL_EXPIRED``).
        """
        if self.expired(now_ms):
            raise FailedPrecondition(
                f"approval {self.approval_id} expired", reason="APPROVAL_EXPIRED"
            )
        if self.state is not ApprovalState.PENDING:
            raise FailedPrecondition(
                f"approval {self.approval_id} is already {self.state.value}",
                reason="APPROVAL_NOT_PENDING",
            )
        return replace(
            self,
            state=ApprovalState.APPROVED if approve else ApprovalState.DENIED,
            decided_by=actor,
            decided_at_ms=now_ms,
        )

    def consume(self, now_ms: int) -> CallApproval:
        """The approval used by its call.

        Raises:
            FailedPrecondition: it is not approved or has expired.
        """
        if self.state is not ApprovalState.APPROVED or self.expired(now_ms):
            raise FailedPrecondition(
                f"approval {self.approval_id} is {self.state.value}"
                + (" and expired" if self.expired(now_ms) else ""),
                reason="APPROVAL_NOT_USABLE",
            )
        return replace(self, state=ApprovalState.CONSUMED, consumed_at_ms=now_ms)

    def to_json(self) -> bytes:
        data: dict[str, Any] = {
            "approval_id": self.approval_id,
            "agent_id": self.agent_id,
            "server": self.server,
            "tool": self.tool,
            "arguments_sha256": self.arguments_sha256,
            "created_at_ms": self.created_at_ms,
            "expires_at_ms": self.expires_at_ms,
            "policies": list(self.policies),
            "reasons": list(self.reasons),
            "state": self.state.value,
            "decided_by": self.decided_by,
            "decided_at_ms": self.decided_at_ms,
            "consumed_at_ms": self.consumed_at_ms,
        }
        return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> CallApproval:
        """Raises: InvalidArgument: not an approval record."""
        try:
            data = json.loads(raw)
            approval = cls(
                approval_id=str(data["approval_id"]),
                agent_id=str(data["agent_id"]),
                server=str(data["server"]),
                tool=str(data["tool"]),
                arguments_sha256=str(data["arguments_sha256"]),
                created_at_ms=int(data["created_at_ms"]),
                expires_at_ms=int(data["expires_at_ms"]),
                policies=tuple(str(p) for p in data.get("policies", ())),
                reasons=tuple(str(r) for r in data.get("reasons", ())),
                state=ApprovalState(data["state"]),
                decided_by=str(data.get("decided_by", "")),
                decided_at_ms=int(data.get("decided_at_ms", 0)),
                consumed_at_ms=int(data.get("consumed_at_ms", 0)),
            )
            digest_of_id(approval.approval_id)
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidArgument(
                f"not an approval record: {exc}", reason="BAD_APPROVAL_RECORD"
            ) from None
        return approval


class StoredApproval(NamedTuple):
    approval: CallApproval
    revision: int


class ApprovalStore(Protocol):
    """Approvals by record key (:func:`call_digest`), shaped like a JetStream KV bucket."""

    async def get(self, digest: str) -> StoredApproval | None: ...

    async def create(self, approval: CallApproval) -> int:
        """Raises: AlreadyExists: a record is there."""
        ...

    async def update(self, approval: CallApproval, *, revision: int) -> int:
        """Raises: Aborted: the record changed since ``revision``."""
        ...

    async def list(self) -> list[CallApproval]: ...


class MemoryApprovalStore:
    """An in-process :class:`ApprovalStore` (one gateway, tests)."""

    def __init__(self) -> None:
        self._records: dict[str, StoredApproval] = {}
        self._revision = 0

    async def get(self, digest: str) -> StoredApproval | None:
        return self._records.get(digest)

    async def create(self, approval: CallApproval) -> int:
        if approval.digest in self._records:
            raise AlreadyExists("approval record exists", reason="APPROVAL_EXISTS")
        return self._put(approval)

    async def update(self, approval: CallApproval, *, revision: int) -> int:
        stored = self._records.get(approval.digest)
        if stored is None or stored.revision != revision:
            raise Aborted("approval record changed", reason="APPROVAL_CHANGED")
        return self._put(approval)

    async def list(self) -> list[CallApproval]:
        return [stored.approval for stored in self._records.values()]

    def _put(self, approval: CallApproval) -> int:
        self._revision += 1
        self._records[approval.digest] = StoredApproval(approval, self._revision)
        return self._revision


def _now_ms() -> int:
    return int(time.time() * 1000)


class ApprovalBook:
    """The approval workflow over a store: the call path's gate and the operator's actions."""

    def __init__(
        self,
        store: ApprovalStore,
        *,
        ttl_s: float,
        emit: Callable[[AuditEvent], Awaitable[None]],
        alert: Callable[[SecurityAlert], Awaitable[None]],
        timeout_s: float = 5.0,
        clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        self._store = store
        self._ttl_ms = int(ttl_s * 1000)
        self._emit = emit
        self._alert = alert
        self._timeout_s = timeout_s
        self._clock_ms = clock_ms

    async def gate(
        self,
        agent_id: str,
        server: str,
        tool: str,
        arguments_sha256: str,
        *,
        policies: Sequence[str] = (),
        reasons: Sequence[str] = (),
    ) -> CallApproval:
        """Let a ``require_approval`` call through by consuming its approval, or refuse it.

        Returns:
            The consumed approval.

        Raises:
            FailedPrecondition: ``APPROVAL_REQUIRED`` — no usable approval; a pending one
                exists (created now, or earlier and still waiting) and its id is in the
                message and in ``details["approval_id"]``.
            PermissionDenied: ``APPROVAL_DENIED`` — an operator denied this very call and the
                denial has not expired.
            Aborted: the record kept changing under us.
        """
        tool_id = f"{server}/{tool}"
        digest = call_digest(agent_id, tool_id, arguments_sha256)
        async with asyncio.timeout(self._timeout_s):
            for _ in range(_CAS_ROUNDS):
                now = self._clock_ms()
                stored = await self._store.get(digest)
                current = stored.approval if stored is not None else None
                if current is not None and not current.covers(agent_id, tool_id, arguments_sha256):
                    current = None  # a digest collision: never let one call use another's
                live = current is not None and not current.expired(now)
                if current is not None and stored is not None and live:
                    if current.state is ApprovalState.APPROVED:
                        consumed = current.consume(now)
                        try:
                            await self._store.update(consumed, revision=stored.revision)
                        except Aborted:
                            continue
                        await self._emit(self._event("mcp.approval.consumed", consumed))
                        return consumed
                    if current.state is ApprovalState.PENDING:
                        raise self._required(current, new=False)
                    if current.state is ApprovalState.DENIED:
                        raise PermissionDenied(
                            f"{current.decided_by} denied {agent_id} calling {tool_id} with "
                            f"these arguments (approval {current.approval_id})",
                            reason="APPROVAL_DENIED",
                            details={"approval_id": current.approval_id, "tool": tool_id},
                        )
                fresh = CallApproval(
                    approval_id=f"apr-{digest}-{secrets.token_hex(4)}",
                    agent_id=agent_id,
                    server=server,
                    tool=tool,
                    arguments_sha256=arguments_sha256,
                    created_at_ms=now,
                    expires_at_ms=now + self._ttl_ms,
                    policies=tuple(policies),
                    reasons=tuple(reasons),
                )
                try:
                    if stored is None:
                        await self._store.create(fresh)
                    else:
                        await self._store.update(fresh, revision=stored.revision)
                except (AlreadyExists, Aborted):
                    continue
                await self._emit(self._event("mcp.approval.requested", fresh))
                await self._alert(
                    SecurityAlert(
                        AlertKind.APPROVAL_REQUIRED,
                        server,
                        f"{agent_id} asks to call {tool_id}; policy requires an approval: "
                        f"symbi tools approve-call {fresh.approval_id}",
                        tool=tool,
                        details={
                            "approval_id": fresh.approval_id,
                            "agent_id": agent_id,
                            "arguments_sha256": arguments_sha256,
                            "expires_at_ms": fresh.expires_at_ms,
                        },
                    )
                )
                raise self._required(fresh, new=True)
        raise Aborted(
            f"the approval record of {agent_id} calling {tool_id} kept changing",
            reason="APPROVAL_CONTENDED",
        )

    def now_ms(self) -> int:
        return self._clock_ms()

    async def decide(
        self, approval_id: str, *, approve: bool, actor: str, tool_id: str | None = None
    ) -> CallApproval:
        """Approve or deny a pending approval. ``tool_id``, when given, must be the
        approval's (the authorization was checked against it).

        Raises:
            InvalidArgument: not an approval id.
            NotFound: no such approval (never existed, or replaced by a newer round), or
                not one of ``tool_id``.
            FailedPrecondition: not pending, or expired.
        """
        digest = digest_of_id(approval_id)
        async with asyncio.timeout(self._timeout_s):
            for _ in range(_CAS_ROUNDS):
                stored = await self._store.get(digest)
                if (
                    stored is None
                    or stored.approval.approval_id != approval_id
                    or (tool_id is not None and stored.approval.tool_id != tool_id)
                ):
                    raise NotFound(
                        f"no approval {approval_id}"
                        + (f" for {tool_id}" if tool_id is not None else ""),
                        reason="APPROVAL_NOT_FOUND",
                    )
                decided = stored.approval.decide(
                    approve=approve, actor=actor, now_ms=self._clock_ms()
                )
                try:
                    await self._store.update(decided, revision=stored.revision)
                except Aborted:
                    continue
                kind = "mcp.approval.approved" if approve else "mcp.approval.denied"
                await self._emit(self._event(kind, decided, actor=actor))
                return decided
        raise Aborted(f"approval {approval_id} kept changing", reason="APPROVAL_CONTENDED")

    async def list(self, *, include_closed: bool = False) -> list[CallApproval]:
        """Approvals newest first; without ``include_closed`` only pending and approved ones
        that have not expired."""
        async with asyncio.timeout(self._timeout_s):
            approvals = await self._store.list()
        now = self._clock_ms()
        if not include_closed:
            approvals = [
                a
                for a in approvals
                if a.state in (ApprovalState.PENDING, ApprovalState.APPROVED) and not a.expired(now)
            ]
        return sorted(approvals, key=lambda a: a.created_at_ms, reverse=True)

    def _required(self, approval: CallApproval, *, new: bool) -> FailedPrecondition:
        return FailedPrecondition(
            f"policy requires a human approval for {approval.agent_id} calling "
            f"{approval.tool_id}; approval {approval.approval_id} is pending "
            f"(symbi tools approve-call {approval.approval_id})",
            reason="APPROVAL_REQUIRED",
            details={
                "approval_id": approval.approval_id,
                "tool": approval.tool_id,
                "expires_at_ms": str(approval.expires_at_ms),
                "new": str(new).lower(),
            },
        )

    @staticmethod
    def _event(event_type: str, approval: CallApproval, *, actor: str = "") -> AuditEvent:
        kwargs: dict[str, Any] = {"actor": actor} if actor else {}
        return AuditEvent(
            event_type,
            agent_id=approval.agent_id,
            decision={
                "mcp.approval.approved": "allow",
                "mcp.approval.denied": "deny",
            }.get(event_type, ""),
            details={
                "approval_id": approval.approval_id,
                "server": approval.server,
                "tool": approval.tool,
                "arguments_sha256": approval.arguments_sha256,
                "state": approval.state.value,
                "policies": ",".join(approval.policies),
                "reasons": "; ".join(approval.reasons)[:1024],
                "decided_by": approval.decided_by,
                "expires_at_ms": approval.expires_at_ms,
            },
            **kwargs,
        )
