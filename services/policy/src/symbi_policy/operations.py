"""What the policy service does, shared by its gRPC servicer and its bus responders.

Decisions go straight to the engine (synchronous, on the event loop). Writes are validated
by the store, written to the source, and then — so that a caller can read its own write on
this replica — wait until the reloader has built the change (bounded by ``reload_wait_s``).
Every write is announced through a :class:`ChangeAnnouncer` (the service publishes
``PolicyChanged`` and records a ``policy.changed`` audit event).

Reads of the document list come from the reloader's view of the source (this replica's
copy, current within the KV watch latency); a single document is read from the source.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from symbi_common.errors import InvalidArgument
from symbi_policy.audit import QueueAuditSink
from symbi_policy.cedar_text import split_statements, tokenize
from symbi_policy.compiler import DOCUMENT_NAME_PATTERN
from symbi_policy.engine import EngineStatus, Evaluation, PolicyEngine
from symbi_policy.entities import EntityUid
from symbi_policy.errors import PolicyProblem, PolicyValidationError
from symbi_policy.reload import PolicyReloader
from symbi_policy.request import AuthzRequest
from symbi_policy.settings import PolicySection
from symbi_policy.source import PolicyDocument
from symbi_policy.store import IdOwner, PolicyStore

__all__ = ["ChangeAnnouncer", "PolicyChange", "PolicyOperations", "PolicyPage"]

logger = logging.getLogger(__name__)

_ORIGIN = re.compile(r"cedar|dsl:[A-Za-z0-9_-]{1,64}")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_./-]")

ChangeKind = Literal["put", "deleted", "entities_put", "entities_deleted"]


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """One write, as announced: ``version`` is the source revision it got."""

    kind: ChangeKind
    version: int
    #: Document names, or entity uids (``Symbi::Agent::"a"``).
    ids: tuple[str, ...]
    #: Who asked for it: a principal id (bus) or ``grpc:<peer>``.
    actor: str


class ChangeAnnouncer(Protocol):
    """Tells the platform about a write. Must not raise for delivery failures (log them)."""

    async def announce(self, change: PolicyChange) -> None: ...


@dataclass(frozen=True, slots=True)
class PolicyPage:
    documents: tuple[PolicyDocument, ...]
    next_token: str  # the last name of this page, "" on the last page
    version: int


class PolicyOperations:
    """The policy service's operations over one engine, store and reloader."""

    def __init__(
        self,
        engine: PolicyEngine,
        store: PolicyStore,
        reloader: PolicyReloader,
        announcer: ChangeAnnouncer,
        section: PolicySection,
        *,
        audit: QueueAuditSink | None = None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.reloader = reloader
        self._announcer = announcer
        self._section = section
        self._audit = audit
        #: Decision requests that went ahead without room in the audit buffer.
        self.unthrottled = 0

    # ------------------------------------------------------------------ decisions

    async def admit(self, decisions: int, *, deadline: float | None = None) -> None:
        """Backpressure: wait until the audit buffer has room for what ``decisions``
        decisions may record (an event each, two when one fails closed), for at most
        ``audit_wait_s`` and never past ``deadline`` (a ``time.monotonic()`` instant).

        Deciding synchronously right after this returns cannot overflow the buffer, so a
        sustained rate above what the audit stream takes slows callers down instead of
        losing audit events. When the wait runs out the request is decided anyway.
        """
        if self._audit is None or self._audit.has_room(2 * decisions):
            return
        wait = self._section.audit_wait_s
        if deadline is not None:
            wait = min(wait, deadline - time.monotonic())
        try:
            async with asyncio.timeout(max(wait, 0.0)):
                await self._audit.wait_for_room(2 * decisions)
        except TimeoutError:
            self.unthrottled += 1
            if self.unthrottled & (self.unthrottled - 1) == 0:  # 1st, 2nd, 4th, ...
                logger.warning(
                    "audit buffer still full after %.2f s: deciding anyway (%d times so far)",
                    wait,
                    self.unthrottled,
                )

    def evaluate(self, request: AuthzRequest, *, deadline: float | None = None) -> Evaluation:
        return self.engine.evaluation(request, deadline=deadline)

    def evaluate_batch(
        self, requests: Sequence[AuthzRequest], *, deadline: float | None = None
    ) -> list[Evaluation]:
        return self.engine.evaluations(requests, deadline=deadline)

    def status(self) -> EngineStatus:
        return self.engine.status()

    # ------------------------------------------------------------------ documents

    def validate(self, text: str, *, file: str = "") -> tuple[PolicyProblem, ...]:
        """The problems of ``text`` as a document (empty when it is valid)."""
        name = _document_name(file)
        try:
            self.store.validate(text, name=name)
        except PolicyValidationError as exc:
            return exc.problems
        return ()

    async def put_policy(
        self,
        name: str,
        text: str,
        *,
        expected_revision: int | None = None,
        origin: str = "",
        actor: str,
    ) -> PolicyDocument:
        origin = origin or "cedar"
        if _ORIGIN.fullmatch(origin) is None:
            raise InvalidArgument(
                f"origin {origin!r} is not 'cedar' or 'dsl:<agent id>'", reason="BAD_ORIGIN"
            )
        tokens, lex_error = tokenize(text)
        if lex_error is None and not split_statements(tokens):
            raise PolicyValidationError(
                [
                    PolicyProblem(
                        name or "<empty>",
                        1,
                        1,
                        "document contains no policies: to remove a document, delete it "
                        "(DeletePolicy) instead of writing it empty",
                    )
                ]
            )
        document = await self.store.put(
            name, text, expected_revision=expected_revision, updated_by=actor, origin=origin
        )
        await self._settle(document.revision, 0)
        await self._announcer.announce(PolicyChange("put", document.revision, (name,), actor))
        return document

    async def get_policy(self, name: str) -> PolicyDocument:
        return await self.store.get(name)

    def list_policies(self, page_size: int = 0, page_token: str = "") -> PolicyPage:
        """One page of documents by name, after ``page_token`` (a name; "" = the start)."""
        if page_size < 0:
            raise InvalidArgument("page_size must not be negative")
        size = min(page_size or self._section.list_page_size, self._section.list_max_page_size)
        documents = self.reloader.documents()
        names = [d.name for d in documents]
        start = bisect.bisect_right(names, page_token) if page_token else 0
        page = documents[start : start + size]
        more = start + size < len(documents)
        return PolicyPage(
            tuple(page), page[-1].name if more and page else "", self.reloader.policy_version
        )

    async def delete_policy(
        self, name: str, *, expected_revision: int | None = None, actor: str
    ) -> int:
        revision = await self.store.delete(name, expected_revision=expected_revision)
        await self._settle(revision, 0)
        await self._announcer.announce(PolicyChange("deleted", revision, (name,), actor))
        return revision

    # ------------------------------------------------------------------ entities

    async def put_entities(self, entities: Sequence[Mapping[str, Any]], *, actor: str) -> int:
        self._check_count(len(entities))
        if not entities:
            return self.reloader.entities_version
        revision = await self.store.upsert_entities(entities, updated_by=actor)
        await self._settle(0, revision)
        uids = tuple(str(EntityUid.parse(e["uid"])) for e in entities)
        await self._announcer.announce(PolicyChange("entities_put", revision, uids, actor))
        return revision

    async def delete_entities(self, uids: Sequence[EntityUid], *, actor: str) -> int:
        self._check_count(len(uids))
        if not uids:
            return self.reloader.entities_version
        revision = await self.store.delete_entities(uids)
        await self._settle(0, revision)
        ids = tuple(str(uid) for uid in uids)
        await self._announcer.announce(PolicyChange("entities_deleted", revision, ids, actor))
        return revision

    # ------------------------------------------------------------------ internals

    def _check_count(self, count: int) -> None:
        limit = self._section.max_entities_per_request
        if count > limit:
            raise InvalidArgument(
                f"{count} entities in one request is over the limit of {limit}",
                reason="TOO_MANY_ENTITIES",
            )

    async def _settle(self, version: int, entities_version: int) -> None:
        """Wait (bounded) until this replica has built the write, so the caller can read it."""
        try:
            async with asyncio.timeout(self._section.reload_wait_s):
                await self.reloader.wait_attempted(version, entities_version)
        except TimeoutError:
            logger.warning(
                "revision %d is stored but not built here after %.1f s (reload lagging?)",
                max(version, entities_version),
                self._section.reload_wait_s,
            )


def owner_in_force(engine: PolicyEngine) -> IdOwner:
    """The store's ``id_owner``: the document holding an @id in the set in force."""

    def owner(policy_id: str) -> str | None:
        policy = engine.state.policy_set.policies.get(policy_id)
        return policy.document if policy is not None else None

    return owner


def _document_name(file: str) -> str:
    """A document name for ``Validate``'s file (``policies/base.cedar`` → ``policies/base``)."""
    stem = file[: -len(".cedar")] if file.endswith(".cedar") else file
    name = _UNSAFE_NAME.sub("_", stem).lstrip("./-_")[:128]
    return name if name and DOCUMENT_NAME_PATTERN.fullmatch(name) else "input"
