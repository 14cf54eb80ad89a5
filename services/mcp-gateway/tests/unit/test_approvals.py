"""The call-approval state machine and workflow (in-memory store; the KV store and the real
service are in the integration tests)."""

from __future__ import annotations

import asyncio

import pytest

from symbi_common.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from symbi_mcp_gateway.approvals import (
    ApprovalBook,
    ApprovalState,
    CallApproval,
    MemoryApprovalStore,
    StoredApproval,
    call_digest,
    digest_of_id,
)
from symbi_mcp_gateway.audit import AuditEvent, SecurityAlert

H1 = "sha256:" + "1" * 64
H2 = "sha256:" + "2" * 64


class Book:
    def __init__(self, store: MemoryApprovalStore | None = None, ttl_s: float = 60) -> None:
        self.now = 1_000_000
        self.events: list[AuditEvent] = []
        self.alerts: list[SecurityAlert] = []
        self.store = store or MemoryApprovalStore()

        async def emit(event: AuditEvent) -> None:
            self.events.append(event)

        async def alert(alert: SecurityAlert) -> None:
            self.alerts.append(alert)

        self.book = ApprovalBook(
            self.store, ttl_s=ttl_s, emit=emit, alert=alert, clock_ms=lambda: self.now
        )

    async def refused(self, agent: str = "agent-a", args: str = H1) -> str:
        with pytest.raises(FailedPrecondition) as exc:
            await self.book.gate(agent, "srv", "tool", args, policies=("p1",), reasons=("r",))
        assert exc.value.reason == "APPROVAL_REQUIRED"
        approval_id = exc.value.details["approval_id"]
        assert approval_id in exc.value.message
        return approval_id

    def types(self) -> list[str]:
        return [event.event_type for event in self.events]


async def test_refused_then_approved_then_consumed_once() -> None:
    book = Book()
    approval_id = await book.refused()
    assert [a.kind.value for a in book.alerts] == ["approval_required"]
    assert book.alerts[0].details["approval_id"] == approval_id
    # Asking again while pending names the same approval and alerts no more.
    assert await book.refused() == approval_id
    assert len(book.alerts) == 1

    decided = await book.book.decide(approval_id, approve=True, actor="svc-op")
    assert decided.state is ApprovalState.APPROVED
    assert decided.decided_by == "svc-op"

    consumed = await book.book.gate("agent-a", "srv", "tool", H1)
    assert consumed.state is ApprovalState.CONSUMED
    assert consumed.approval_id == approval_id
    # Once: the same call again asks for a new approval.
    again = await book.refused()
    assert again != approval_id
    assert book.types() == [
        "mcp.approval.requested",
        "mcp.approval.approved",
        "mcp.approval.consumed",
        "mcp.approval.requested",
    ]
    assert book.events[1].actor == "svc-op"


async def test_other_arguments_or_agent_are_not_covered() -> None:
    book = Book()
    approval_id = await book.refused()
    await book.book.decide(approval_id, approve=True, actor="op")
    assert await book.refused(args=H2) != approval_id
    assert await book.refused(agent="agent-b") != approval_id
    # The approved call itself is still usable.
    assert (await book.book.gate("agent-a", "srv", "tool", H1)).approval_id == approval_id


async def test_denied_stays_refused_until_it_expires() -> None:
    book = Book(ttl_s=60)
    approval_id = await book.refused()
    await book.book.decide(approval_id, approve=False, actor="op")
    for _ in range(2):
        with pytest.raises(PermissionDenied) as exc:
            await book.book.gate("agent-a", "srv", "tool", H1)
        assert exc.value.reason == "APPROVAL_DENIED"
    with pytest.raises(FailedPrecondition):
        await book.book.decide(approval_id, approve=True, actor="op")  # decided already
    book.now += 60_000
    assert await book.refused() != approval_id  # a new round


async def test_expiry_of_pending_and_approved() -> None:
    book = Book(ttl_s=10)
    pending = await book.refused()
    book.now += 10_000
    with pytest.raises(FailedPrecondition) as exc:
        await book.book.decide(pending, approve=True, actor="op")
    assert exc.value.reason == "APPROVAL_EXPIRED"
    approved = await book.refused()
    assert approved != pending
    await book.book.decide(approved, approve=True, actor="op")
    book.now += 10_000
    assert await book.refused() != approved  # an unused approval lapses too
    assert await book.book.list() != []
    assert {a.state for a in await book.book.list(include_closed=True)} == {ApprovalState.PENDING}


async def test_decide_checks_id_and_tool() -> None:
    book = Book()
    approval_id = await book.refused()
    with pytest.raises(InvalidArgument):
        await book.book.decide("nope", approve=True, actor="op")
    with pytest.raises(NotFound):
        await book.book.decide(approval_id, approve=True, actor="op", tool_id="srv/other")
    stale = approval_id[:-8] + "00000000"
    with pytest.raises(NotFound):
        await book.book.decide(stale, approve=True, actor="op")
    assert digest_of_id(approval_id) == call_digest("agent-a", "srv/tool", H1)


async def test_two_consumers_race_one_wins() -> None:
    class SlowStore(MemoryApprovalStore):
        """Both readers see the approved record before either writes."""

        def __init__(self) -> None:
            super().__init__()
            self.gate = asyncio.Barrier(2)
            self.racing = 0

        async def get(self, digest: str) -> StoredApproval | None:
            stored = await super().get(digest)
            if self.racing > 0:
                self.racing -= 1
                await self.gate.wait()
            return stored

    store = SlowStore()
    book = Book(store)
    approval_id = await book.refused()
    await book.book.decide(approval_id, approve=True, actor="op")
    store.racing = 2  # the first read of each
    results = await asyncio.gather(
        book.book.gate("agent-a", "srv", "tool", H1),
        book.book.gate("agent-a", "srv", "tool", H1),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, CallApproval)]
    losses = [r for r in results if isinstance(r, FailedPrecondition | Aborted)]
    assert len(wins) == 1, results
    assert len(losses) == 1, results
    # The loser re-read the consumed record and asked for a new approval.
    assert isinstance(losses[0], FailedPrecondition)
    assert losses[0].reason == "APPROVAL_REQUIRED"
    assert book.types().count("mcp.approval.consumed") == 1


def test_record_round_trip() -> None:
    approval = CallApproval(
        approval_id=f"apr-{call_digest('a', 's/t', H1)}-0a0b0c0d",
        agent_id="a",
        server="s",
        tool="t",
        arguments_sha256=H1,
        created_at_ms=1,
        expires_at_ms=2,
        policies=("p",),
        reasons=("why",),
    )
    assert CallApproval.from_json(approval.to_json()) == approval
    with pytest.raises(InvalidArgument):
        CallApproval.from_json(b'{"approval_id": "x"}')
