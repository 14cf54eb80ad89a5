"""The PolicySource port on a JetStream KV bucket: how every replica shares one policy set.

Layout (one key per thing, so writers never contend on a shared document):

==============================  =====================================================
key                             value
==============================  =====================================================
``policy.<document name>``      JSON ``{"name", "text", "updated_at_ms",
                                "updated_by", "origin"}``
``entity.<type>.<id>``          the entity's Cedar JSON ``{"uid", "attrs", "parents"}``
==============================  =====================================================

Name, type and id are escaped into key tokens: every character outside
``A-Z a-z 0-9 _ - /`` becomes ``=XX`` per UTF-8 byte (so ``agents/analyst`` stays readable,
``Symbi::Agent`` is ``Symbi=3A=3AAgent``). Revisions are the bucket's stream sequence
numbers: the policy-set version is the highest revision of any ``policy.*`` write or delete
marker, the entities version that of any ``entity.*`` one, so every replica computes the same
versions from the same bucket. Deletes leave markers (the bucket keeps ``history`` ≥ 16
revisions per key), which is what keeps versions from going backwards on a restart.

Every call has a deadline (``timeout_s``); NATS failures and timeouts become
``Unavailable`` (retryable), a lost compare-and-set ``Aborted``, a missing key ``NotFound``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import Header
from nats.js.kv import KV_DEL, KV_OP, KV_PURGE, KeyValue

from symbi_common.errors import Aborted, InvalidArgument, NotFound, SymbiError, Unavailable
from symbi_policy.entities import EntityUid
from symbi_policy.source import (
    EntitiesDocument,
    EntityDeleted,
    EntityPut,
    PolicyDeleted,
    PolicyDocument,
    PolicyPut,
    SourceEvent,
    SourceSnapshot,
    join_entities,
    split_entities,
)

__all__ = ["KvPolicySource", "entity_key", "policy_key"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

POLICY_PREFIX = "policy."
ENTITY_PREFIX = "entity."
_PLAIN = re.compile(r"[A-Za-z0-9_/-]")
_ESCAPE = re.compile(r"=([0-9A-F]{2})")
#: Entity writes in flight at once (each is one acknowledged JetStream publish).
_WRITE_WINDOW = 64
_WRONG_LAST_SEQUENCE = (10071, 10164)


def _escape(value: str) -> str:
    return "".join(
        ch if _PLAIN.fullmatch(ch) else "".join(f"={b:02X}" for b in ch.encode()) for ch in value
    )


def _unescape(token: str) -> str:
    raw = bytearray()
    i = 0
    while i < len(token):
        if token[i] == "=":
            raw.append(int(token[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.extend(token[i].encode())
            i += 1
    return raw.decode()


def policy_key(name: str) -> str:
    """``agents/analyst`` → ``policy.agents/analyst``; ``base.net`` → ``policy.base=2Enet``."""
    return POLICY_PREFIX + _escape(name)


def entity_key(uid: EntityUid) -> str:
    """``Symbi::Agent::"a-1"`` → ``entity.Symbi=3A=3AAgent.a-1``."""
    return f"{ENTITY_PREFIX}{_escape(uid.type)}.{_escape(uid.id)}"


def _parse_entity_key(key: str) -> EntityUid | None:
    type_token, sep, id_token = key[len(ENTITY_PREFIX) :].partition(".")
    if not sep or not type_token or not id_token:
        return None
    try:
        return EntityUid(_unescape(type_token), _unescape(id_token))
    except (ValueError, UnicodeDecodeError):
        return None


def _parse_policy_key(key: str) -> str | None:
    try:
        return _unescape(key[len(POLICY_PREFIX) :]) or None
    except (ValueError, UnicodeDecodeError):
        return None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _document(name: str, value: bytes, revision: int) -> PolicyDocument:
    """The stored value as a document. A value that is not what this adapter writes (a write
    behind its back) becomes a document whose text is the raw value: it then fails to
    compile and the set in force stays, instead of the key being silently ignored."""
    try:
        raw = json.loads(value)
        if not isinstance(raw, dict) or not isinstance(raw.get("text"), str):
            raise ValueError("not a policy document")
        return PolicyDocument(
            name,
            raw["text"],
            revision,
            int(raw.get("updated_at_ms", 0)),
            str(raw.get("updated_by", "")),
            str(raw.get("origin", "cedar")),
        )
    except (ValueError, TypeError):
        logger.error("policy key for %r holds a value this service did not write", name)
        return PolicyDocument(name, value.decode(errors="replace"), revision, origin="unknown")


class KvPolicySource:
    """Policy documents and entities in one KV bucket (see the module docstring)."""

    def __init__(
        self, kv: KeyValue, js: JetStreamContext, bucket: str, *, timeout_s: float = 5.0
    ) -> None:
        self._kv = kv
        self._js = js
        self._bucket = bucket
        self._subject_prefix = f"$KV.{bucket}."
        self.timeout_s = timeout_s

    @property
    def bucket(self) -> str:
        return self._bucket

    # ------------------------------------------------------------------ policies

    async def put_policy(
        self,
        name: str,
        text: str,
        *,
        expected_revision: int | None = None,
        updated_by: str = "",
        origin: str = "cedar",
    ) -> PolicyDocument:
        key = policy_key(name)
        at = _now_ms()
        value = json.dumps(
            {
                "name": name,
                "text": text,
                "updated_at_ms": at,
                "updated_by": updated_by,
                "origin": origin,
            },
            sort_keys=True,
        ).encode()
        if expected_revision is None:
            revision = await self._call(f"put {name!r}", lambda: self._kv.put(key, value))
        elif expected_revision == 0:
            revision = await self._cas(name, expected_revision, lambda: self._kv.create(key, value))
        else:
            revision = await self._cas(
                name, expected_revision, lambda: self._kv.update(key, value, last=expected_revision)
            )
        return PolicyDocument(name, text, revision, at, updated_by, origin)

    async def get_policy(self, name: str) -> PolicyDocument:
        key = policy_key(name)
        try:
            entry = await self._call(f"get {name!r}", lambda: self._kv.get(key))
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
            raise NotFound(
                f"no policy document named {name!r}", reason="POLICY_NOT_FOUND"
            ) from None
        return _document(name, entry.value or b"", entry.revision or 0)

    async def list_policies(self) -> list[PolicyDocument]:
        snapshot = await self.snapshot()
        return list(snapshot.policies)

    async def delete_policy(self, name: str, *, expected_revision: int | None = None) -> int:
        current = await self.get_policy(name)
        if expected_revision is not None and expected_revision != current.revision:
            raise _mismatch(name, expected_revision, current.revision)
        headers = {KV_OP: KV_DEL, Header.EXPECTED_LAST_SUBJECT_SEQUENCE: str(current.revision)}
        subject = self._subject_prefix + policy_key(name)

        async def delete() -> int:
            ack = await self._js.publish(subject, b"", headers=headers)
            return int(ack.seq)

        try:
            return await self._call(f"delete {name!r}", delete)
        except nats.js.errors.APIError as exc:
            if exc.err_code in _WRONG_LAST_SEQUENCE:
                raise Aborted(
                    f"{name!r} changed while it was being deleted: re-read and retry",
                    reason="REVISION_MISMATCH",
                ) from None
            raise

    # ------------------------------------------------------------------ entities

    async def put_entities(
        self, text: str, *, expected_revision: int | None = None, updated_by: str = ""
    ) -> EntitiesDocument:
        """Replace the whole entity set: upsert every entity of ``text``, delete the rest.

        Not atomic (a replica may build a state in between), and without compare-and-set:
        the bucket keeps one key per entity, and JetStream has no multi-key transaction.
        """
        if expected_revision is not None:
            raise InvalidArgument(
                "compare-and-set on the whole entity set is not supported by the KV source",
                reason="UNSUPPORTED",
            )
        wanted = split_entities(text)
        if wanted is None:
            raise InvalidArgument("entities must be a JSON list of entities with uids")
        current = await self.snapshot()
        existing = split_entities(current.entities.text if current.entities else "") or {}
        revision = current.entities_version
        if wanted:
            revision = await self.upsert_entities(
                [json.loads(t) for t in wanted.values()], updated_by=updated_by
            )
        stale = [uid for uid in existing if uid not in wanted]
        if stale:
            revision = await self.delete_entities(stale)
        return EntitiesDocument(join_entities(wanted), revision, _now_ms(), updated_by)

    async def get_entities(self) -> EntitiesDocument | None:
        return (await self.snapshot()).entities

    async def upsert_entities(
        self, entities: Sequence[Mapping[str, Any]], *, updated_by: str = ""
    ) -> int:
        writes = []
        for entity in entities:
            uid = EntityUid.parse(entity["uid"])
            value = json.dumps(entity, sort_keys=True, separators=(",", ":")).encode()
            writes.append((entity_key(uid), value))

        async def put(key: str, value: bytes) -> int:
            return await self._kv.put(key, value)

        revisions = await self._pipelined("upsert entities", writes, put)
        return max(revisions, default=0) or (await self.snapshot()).entities_version

    async def delete_entities(self, uids: Sequence[EntityUid]) -> int:
        writes = [(self._subject_prefix + entity_key(uid), b"") for uid in uids]

        async def delete(subject: str, _: bytes) -> int:
            ack = await self._js.publish(subject, b"", headers={KV_OP: KV_DEL})
            return int(ack.seq)

        revisions = await self._pipelined("delete entities", writes, delete)
        return max(revisions, default=0) or (await self.snapshot()).entities_version

    # ------------------------------------------------------------------ reading all

    async def snapshot(self) -> SourceSnapshot:
        watch = self.watch()
        try:
            first = await anext(watch)
        finally:
            await watch.aclose()
        assert isinstance(first, SourceSnapshot)  # watch() always starts with one
        return first

    async def watch(self) -> AsyncGenerator[SourceEvent, None]:
        """The bucket's current contents as one snapshot, then each change as it is stored.

        nats-py's watcher is an ordered push consumer: it resumes after a reconnect from
        the last sequence it delivered, so no change is skipped.
        """
        watcher = await self._call("watch", self._kv.watchall)
        try:
            initial: list[KeyValue.Entry] = []
            async with asyncio.timeout(self.timeout_s * 6):
                async for entry in watcher:
                    if entry is None:  # the initial values are all delivered
                        break
                    initial.append(entry)
            yield self._snapshot_of(initial)
            async for entry in watcher:
                if entry is None:
                    continue
                event = self._event(entry)
                if event is not None:
                    yield event
        except TimeoutError:
            raise Unavailable(
                f"reading policy bucket {self._bucket} took over {self.timeout_s * 6:.0f} s",
                reason="POLICY_STORE_TIMEOUT",
            ) from None
        finally:
            try:
                async with asyncio.timeout(self.timeout_s):
                    await watcher.stop()  # type: ignore[no-untyped-call]
            except (TimeoutError, nats.errors.Error) as exc:
                logger.debug("stopping the policy bucket watcher: %s", exc)

    # ------------------------------------------------------------------ internals

    def _snapshot_of(self, entries: list[KeyValue.Entry]) -> SourceSnapshot:
        policies: dict[str, PolicyDocument] = {}
        entities: dict[EntityUid, str] = {}
        policy_version = entities_version = 0
        for entry in entries:
            event = self._event(entry)
            if isinstance(event, PolicyPut):
                policies[event.document.name] = event.document
                policy_version = max(policy_version, event.document.revision)
            elif isinstance(event, PolicyDeleted):
                policy_version = max(policy_version, event.revision)
            elif isinstance(event, EntityPut):
                entities[event.uid] = event.text
                entities_version = max(entities_version, event.revision)
            elif isinstance(event, EntityDeleted):
                entities_version = max(entities_version, event.revision)
        document = (
            EntitiesDocument(join_entities(entities), entities_version)
            if entities_version
            else None
        )
        return SourceSnapshot(
            tuple(policies[n] for n in sorted(policies)), document, policy_version
        )

    def _event(self, entry: KeyValue.Entry) -> SourceEvent | None:
        key = entry.key
        revision = entry.revision or 0
        deleted = entry.operation in (KV_DEL, KV_PURGE)
        if key.startswith(POLICY_PREFIX):
            name = _parse_policy_key(key)
            if name is None:
                logger.error("ignoring policy bucket key %r: not a valid document key", key)
                return None
            if deleted:
                return PolicyDeleted(name, revision)
            return PolicyPut(_document(name, entry.value or b"", revision))
        if key.startswith(ENTITY_PREFIX):
            uid = _parse_entity_key(key)
            if uid is None:
                logger.error("ignoring policy bucket key %r: not a valid entity key", key)
                return None
            if deleted:
                return EntityDeleted(uid, revision)
            # Kept as stored: a value that is not entity JSON fails the build, visibly.
            return EntityPut(uid, (entry.value or b"").decode(errors="replace"), revision)
        logger.warning("ignoring policy bucket key %r: unknown prefix", key)
        return None

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await call()
        except TimeoutError:
            raise Unavailable(
                f"policy store: {what} took over {self.timeout_s:.1f} s",
                reason="POLICY_STORE_TIMEOUT",
            ) from None
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyWrongLastSequenceError):
            raise
        except nats.js.errors.APIError as exc:
            if exc.err_code in _WRONG_LAST_SEQUENCE:
                raise
            raise Unavailable(
                f"policy store: {what} failed: {exc}", reason="POLICY_STORE_ERROR"
            ) from None
        except nats.errors.Error as exc:
            raise Unavailable(
                f"policy store: {what} failed: {type(exc).__name__}: {exc}",
                reason="POLICY_STORE_ERROR",
            ) from None

    async def _cas(self, name: str, expected: int, call: Callable[[], Awaitable[int]]) -> int:
        try:
            return await self._call(f"write {name!r}", call)
        except nats.js.errors.KeyWrongLastSequenceError:
            actual = 0
            with contextlib.suppress(NotFound):
                actual = (await self.get_policy(name)).revision
            raise _mismatch(name, expected, actual) from None

    async def _pipelined(
        self,
        what: str,
        writes: list[tuple[str, bytes]],
        write: Callable[[str, bytes], Awaitable[int]],
    ) -> list[int]:
        """Run ``write`` over ``writes``, ``_WRITE_WINDOW`` at a time; the first failure wins."""

        async def one(key: str, value: bytes) -> int:
            return await self._call(f"{what} ({key})", lambda: write(key, value))

        revisions: list[int] = []
        for start in range(0, len(writes), _WRITE_WINDOW):
            window = writes[start : start + _WRITE_WINDOW]
            try:
                async with asyncio.TaskGroup() as tasks:
                    pending = [tasks.create_task(one(key, value)) for key, value in window]
            except* SymbiError as group:
                first = group.exceptions[0]
                assert isinstance(first, SymbiError)
                raise first from None
            revisions.extend(task.result() for task in pending)
        return revisions


def _mismatch(name: str, expected: int, actual: int) -> Aborted:
    return Aborted(
        f"{name!r} is at revision {actual}, not the expected {expected}: re-read and retry",
        reason="REVISION_MISMATCH",
        details={"name": name, "expected": str(expected), "actual": str(actual)},
    )
