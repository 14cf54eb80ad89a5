"""The key directory: certificates, revocations and sealed group keys in JetStream KV.

Buckets (see :mod:`symbi_common.jetstream.spec`)::

    <prefix>_keyring    cert.<principal>.<key id>      PrincipalCertificate
                        agentcert.<principal>.<key id> PrincipalCertificate of an agent (worker
                                                       nodes may write only these)
                        revoked.<principal>            Revocation (every key of the principal)
                        revoked.<principal>.<key id>   Revocation (one key)
    <prefix>_groupkeys  meta.<topic64>                 TopicState (JSON): generation, members
                        key.<topic64>.<gen>.<member>   SealedGroupKey

``<topic64>`` is the topic name in unpadded base64url, so any topic fits one key token.

Anyone may *write* a certificate or a sealed key (NATS permissions narrow that down), but
nothing written counts unless it verifies: certificates in chain to the root, revocations by
the root, sealed keys by their issuer — which must be a ``service`` (or the root).

:class:`TopicKeys` rotates a topic's group key when its members change: it claims the next
generation with a compare-and-set on the topic's state, then seals the new key to every
member. Several service replicas may run it; the compare-and-set lets exactly one win each
generation, and the others adopt the result.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from symbi.bus.v1 import envelope_pb2
from symbi_common.crypto.groupkeys import GroupKeyring, seal_group_key, unseal_group_key
from symbi_common.crypto.identity import Certificate, PrincipalKeys, now_ms
from symbi_common.crypto.keyring import Keyring, KeyringChange
from symbi_common.crypto.rejects import EnvelopeRejected
from symbi_common.errors import PermissionDenied, SymbiError

__all__ = ["KeyDirectory", "TopicKeys", "TopicMembership", "topic_token"]

log = logging.getLogger(__name__)

KEY_ISSUER_ROLES = frozenset({"service", "root"})


def topic_token(topic: str) -> str:
    return base64.urlsafe_b64encode(topic.encode()).decode().rstrip("=")


def token_topic(token: str) -> str:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


class KeyDirectory:
    """Keeps this principal's keyring and group keys in sync with the buckets."""

    def __init__(
        self,
        js: JetStreamContext,
        keys: PrincipalKeys,
        certificate: Certificate,
        keyring: Keyring,
        groups: GroupKeyring,
        *,
        keyring_bucket: str,
        groups_bucket: str,
    ) -> None:
        self.js = js
        self.keys = keys
        self.certificate = certificate
        self.keyring = keyring
        self.groups = groups
        self.keyring_bucket = keyring_bucket
        self.groups_bucket = groups_bucket
        self._keyring_kv: KeyValue | None = None
        self._groups_kv: KeyValue | None = None
        self._pending_seals: dict[str, envelope_pb2.SealedGroupKey] = {}
        self._keyring_watch: Any = None
        self._groups_watch: Any = None

    @property
    def keyring_kv(self) -> KeyValue:
        assert self._keyring_kv is not None, "KeyDirectory.start() first"
        return self._keyring_kv

    @property
    def groups_kv(self) -> KeyValue:
        assert self._groups_kv is not None, "KeyDirectory.start() first"
        return self._groups_kv

    async def start(self) -> None:
        """Open the buckets, publish our certificate, load everything known so far.

        The watchers opened here deliver the current values first (then a ``None`` marker),
        and keep following the buckets in :meth:`run`: nothing falls between load and watch.
        """
        self._keyring_kv = await self.js.key_value(self.keyring_bucket)
        self._groups_kv = await self.js.key_value(self.groups_bucket)
        await self.publish_certificate(self.certificate)
        self.keyring.add_certificate(self.certificate)
        self._keyring_watch = await self.keyring_kv.watchall()
        self._groups_watch = await self.groups_kv.watch(f"key.*.*.{self.keys.principal_id}")
        await self._drain_initial(self._keyring_watch, self._apply_keyring_update)
        await self._drain_initial(self._groups_watch, self._apply_group_update)

    @staticmethod
    async def _drain_initial(watcher: Any, apply: Callable[[Any], None]) -> None:
        while True:
            entry = await watcher.updates(timeout=10.0)
            if entry is None:
                return
            apply(entry)

    def _apply_keyring_update(self, entry: Any) -> None:
        if entry.operation is None and self._apply_keyring_entry(entry.key, entry.value):
            self.retry_pending()

    def _apply_group_update(self, entry: Any) -> None:
        if entry.operation is None:
            self._apply_sealed(entry.value)

    async def publish_certificate(self, cert: Certificate) -> None:
        prefix = "agentcert" if cert.role == "agent" else "cert"
        await self.keyring_kv.put(f"{prefix}.{cert.principal_id}.{cert.key_id}", cert.to_bytes())

    async def publish_revocation(self, revocation: envelope_pb2.Revocation) -> None:
        suffix = f".{revocation.key_id}" if revocation.key_id else ""
        await self.keyring_kv.put(
            f"revoked.{revocation.principal_id}{suffix}", revocation.SerializeToString()
        )

    async def fetch_certificate(self, principal_id: str, key_id: str) -> bool:
        """Look a certificate up directly (the watch may not have delivered it yet)."""
        for prefix in ("cert", "agentcert"):
            try:
                entry = await self.keyring_kv.get(f"{prefix}.{principal_id}.{key_id}")
            except KeyNotFoundError:
                continue
            return self._apply_keyring_entry(entry.key, entry.value)
        return False

    def _apply_keyring_entry(self, key: str, value: bytes | None) -> bool:
        if not value:
            return False
        try:
            if key.startswith(("cert.", "agentcert.")):
                return self.keyring.add_certificate(Certificate.from_bytes(value))
            if key.startswith("revoked."):
                revocation = envelope_pb2.Revocation()
                revocation.ParseFromString(value)
                return self.keyring.add_revocation(revocation)
        except Exception:
            log.warning("ignoring malformed keyring entry %s", key, exc_info=True)
        return False

    def _apply_sealed(self, value: bytes | None) -> bool:
        if not value:
            return False
        sealed = envelope_pb2.SealedGroupKey()
        try:
            sealed.ParseFromString(value)
            issuer = self.keyring.lookup(sealed.issuer, sealed.issuer_key_id)
        except EnvelopeRejected:
            # The issuer's certificate may not have arrived yet: retry when the keyring changes.
            self._pending_seals[f"{sealed.topic}/{sealed.generation}"] = sealed
            return False
        except Exception:
            log.warning("ignoring a malformed sealed group key", exc_info=True)
            return False
        if issuer.role not in KEY_ISSUER_ROLES:
            log.warning(
                "ignoring a group key for %s sealed by %s (role %s)",
                sealed.topic,
                issuer.principal_id,
                issuer.role,
            )
            return False
        try:
            key = unseal_group_key(self.keys, sealed, issuer)
        except SymbiError as exc:
            log.warning("ignoring a group key for %s: %s", sealed.topic, exc.message)
            return False
        self.groups.add(sealed.topic, sealed.generation, key)
        self._pending_seals.pop(f"{sealed.topic}/{sealed.generation}", None)
        return True

    def retry_pending(self) -> None:
        for sealed in list(self._pending_seals.values()):
            self._apply_sealed(sealed.SerializeToString())

    async def run(self) -> None:
        """Follow both buckets until cancelled."""
        try:
            await asyncio.gather(
                self._follow(self._keyring_watch, self._apply_keyring_update),
                self._follow(self._groups_watch, self._apply_group_update),
            )
        finally:
            for watcher in (self._keyring_watch, self._groups_watch):
                with contextlib.suppress(Exception):
                    await watcher.stop()

    @staticmethod
    async def _follow(watcher: Any, apply: Callable[[Any], None]) -> None:
        async for entry in watcher:
            if entry is not None:
                apply(entry)


@dataclass(frozen=True)
class TopicMembership:
    """Who belongs to a topic: every principal of ``roles``, plus ``principals`` by id."""

    topic: str
    roles: frozenset[str] = frozenset()
    principals: frozenset[str] = frozenset()

    def members(self, keyring: Keyring) -> dict[str, Certificate]:
        chosen: dict[str, Certificate] = {}
        for cert in keyring.certificates():
            if cert.role in self.roles or cert.principal_id in self.principals:
                current = chosen.get(cert.principal_id)
                if current is None or cert.proto.not_before_ms > current.proto.not_before_ms:
                    chosen[cert.principal_id] = cert
        return chosen


@dataclass
class _TopicState:
    generation: int
    members: dict[str, str]  # principal → key id
    issuer: str
    updated_ms: int = field(default_factory=now_ms)

    def to_bytes(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> _TopicState:
        raw = json.loads(data)
        return cls(
            int(raw["generation"]),
            dict(raw["members"]),
            str(raw["issuer"]),
            int(raw.get("updated_ms", 0)),
        )


class TopicKeys:
    """Rotates group keys of topics when their membership changes (run by services)."""

    def __init__(
        self,
        directory: KeyDirectory,
        topics: Iterable[TopicMembership],
        *,
        debounce_s: float = 0.2,
        seal_grace_s: float = 5.0,
    ) -> None:
        if directory.certificate.role not in KEY_ISSUER_ROLES:
            raise PermissionDenied(
                f"a {directory.certificate.role} may not issue group keys",
                reason="NOT_A_KEY_ISSUER",
            )
        self.directory = directory
        self.topics = {t.topic: t for t in topics}
        self.debounce_s = debounce_s
        self.seal_grace_s = seal_grace_s
        self._changed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.rotations = 0

    def add_topic(self, membership: TopicMembership) -> None:
        self.topics[membership.topic] = membership
        self._changed.set()

    def _recheck_later(self, delay_s: float) -> None:
        if self._loop is not None:
            self._loop.call_later(delay_s, self._changed.set)

    def _on_keyring_change(self, change: KeyringChange) -> None:
        if self._loop is not None:  # the keyring may change from another thread
            self._loop.call_soon_threadsafe(self._changed.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.directory.keyring.on_change(self._on_keyring_change)
        self._changed.set()
        while True:
            await self._changed.wait()
            await asyncio.sleep(self.debounce_s)  # let a burst of certificate arrivals settle
            self._changed.clear()
            for topic in list(self.topics):
                try:
                    await self.reconcile(topic)
                except SymbiError as exc:
                    log.warning("could not reconcile group key of %s: %s", topic, exc.message)

    async def reconcile(self, topic: str) -> bool:
        """Rotate ``topic`` if its members changed or a member lacks the current key."""
        kv = self.directory.groups_kv
        members = self.topics[topic].members(self.directory.keyring)
        wanted = {pid: cert.key_id for pid, cert in members.items()}
        meta_key = f"meta.{topic_token(topic)}"
        for _ in range(5):
            try:
                entry = await kv.get(meta_key)
                state, revision = _TopicState.from_bytes(entry.value or b"{}"), entry.revision
            except KeyNotFoundError:
                state, revision = None, None
            if state is not None and state.members == wanted:
                if await self._complete(topic, state):
                    return False
                age_s = (now_ms() - state.updated_ms) / 1000
                if age_s < self.seal_grace_s:
                    # Its issuer is probably still sealing: look again once the grace is over.
                    self._recheck_later(self.seal_grace_s - age_s)
                    return False
            new_state = _TopicState(
                (state.generation if state else 0) + 1, wanted, self.directory.keys.principal_id
            )
            try:
                if revision is None:
                    await kv.create(meta_key, new_state.to_bytes())
                else:
                    await kv.update(meta_key, new_state.to_bytes(), last=revision)
            except KeyWrongLastSequenceError:
                continue  # another replica rotated first: look again
            except Exception as exc:
                if "wrong last sequence" in str(exc).lower():
                    continue
                raise
            await self._seal(topic, new_state.generation, members)
            self.rotations += 1
            log.info(
                "rotated group key of %s to generation %d (%d members)",
                topic,
                new_state.generation,
                len(members),
            )
            return True
        return False

    async def _complete(self, topic: str, state: _TopicState) -> bool:
        """Every member has its sealed key of the current generation."""
        kv = self.directory.groups_kv
        token = topic_token(topic)
        for member in state.members:
            try:
                await kv.get(f"key.{token}.{state.generation}.{member}")
            except KeyNotFoundError:
                return False
        return True

    async def _seal(self, topic: str, generation: int, members: dict[str, Certificate]) -> None:
        key = os.urandom(32)
        token = topic_token(topic)
        for member_id, cert in members.items():
            sealed = seal_group_key(self.directory.keys, cert, topic, generation, key)
            await self.directory.groups_kv.put(
                f"key.{token}.{generation}.{member_id}", sealed.SerializeToString()
            )
