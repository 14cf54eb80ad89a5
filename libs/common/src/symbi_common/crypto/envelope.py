"""Sealing and opening envelopes: AES-256-GCM inside, Ed25519 outside.

Seal: the payload is encrypted with AES-256-GCM under the destination's key — for a direct
message, ``HKDF-SHA256(X25519(sender, recipient))`` bound to both ids and key ids; for a
topic, the topic's current group key — with the canonical header (every field but nonce,
ciphertext and signature) as associated data. The sender then signs the canonical encoding
of every field but the signature. Envelopes are serialized deterministically.

Open, in order (cheap checks first; nothing is decrypted before the signature verifies):
size → parse, and the bytes must be the canonical serialization → version and field shapes →
subject → clock skew and expiry → sender certificate (unknown, expired, revoked) →
signature → destination (ours? do we hold the key?) → decryption. The first failure raises
:class:`~symbi_common.crypto.rejects.EnvelopeRejected` with its reason.

Replay and rate limits need per-consumer state and live in :mod:`symbi_common.bus`.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nacl.exceptions import BadSignatureError

from symbi.bus.v1 import envelope_pb2
from symbi_common.crypto.encoding import canonical, encode_map
from symbi_common.crypto.groupkeys import GroupKeyring, derive_key, group_key_id
from symbi_common.crypto.identity import PRINCIPAL_ID_RE, Certificate, PrincipalKeys, now_ms
from symbi_common.crypto.keyring import Keyring
from symbi_common.crypto.rejects import EnvelopeRejected, RejectReason
from symbi_common.errors import InvalidArgument, Unavailable

__all__ = ["EnvelopeLimits", "EnvelopeOpener", "EnvelopeSealer", "OpenedEnvelope", "new_message_id"]

ENVELOPE_VERSION = 1
_AAD_LABEL = b"symbi.envelope.aad.v1"
_SIG_LABEL = b"symbi.envelope.sig.v1"
_DIRECT_LABEL = b"symbi.envelope.direct.v1"


def new_message_id() -> str:
    """Time-ordered unique id: 12 hex digits of milliseconds + 20 random hex digits."""
    return f"{int(time.time() * 1000):012x}{os.urandom(10).hex()}"


def _header_fields(env: envelope_pb2.Envelope) -> list[tuple[int, bytes | str | int]]:
    """The header as :func:`~symbi_common.crypto.encoding.canonical` fields: the specification
    of the AAD (:func:`associated_data` is its unrolled, equivalent form)."""
    kind = env.WhichOneof("destination") or ""
    return [
        (1, env.version),
        (2, env.id),
        (3, env.sender),
        (4, env.sender_key_id),
        (5, kind),
        (6, getattr(env, kind) if kind else ""),
        (7, env.subject),
        (8, env.timestamp_ms),
        (9, env.ttl_ms),
        (10, env.content_type),
        (11, env.key_id),
        (12, encode_map(env.trace)),
        (13, env.reply_to),
        (14, env.correlation_id),
    ]


_AAD_PREFIX = _AAD_LABEL + b"\x00"
_TL = struct.Struct(">BI").pack  # tag ‖ length
_TLQ = struct.Struct(">BIq").pack  # tag ‖ length 8 ‖ signed 64-bit integer


def _aad(
    version: int,
    msg_id: str,
    sender: str,
    sender_key_id: str,
    kind: str,
    destination: str,
    subject: str,
    timestamp_ms: int,
    ttl_ms: int,
    content_type: str,
    key_id: str,
    trace: bytes,
    reply_to: str,
    correlation_id: str,
) -> bytes:
    """``canonical(_AAD_LABEL, _header_fields(env))``, unrolled: it runs twice per message
    (seal and open), and the generic loop cost more than the AES-GCM it authenticates."""
    i = msg_id.encode()
    s = sender.encode()
    sk = sender_key_id.encode()
    k = kind.encode()
    d = destination.encode()
    sub = subject.encode()
    ct = content_type.encode()
    kid = key_id.encode()
    rt = reply_to.encode()
    c = correlation_id.encode()
    return b"".join(
        (
            _AAD_PREFIX,
            _TLQ(1, 8, version),
            _TL(2, len(i)),
            i,
            _TL(3, len(s)),
            s,
            _TL(4, len(sk)),
            sk,
            _TL(5, len(k)),
            k,
            _TL(6, len(d)),
            d,
            _TL(7, len(sub)),
            sub,
            _TLQ(8, 8, timestamp_ms),
            _TLQ(9, 8, ttl_ms),
            _TL(10, len(ct)),
            ct,
            _TL(11, len(kid)),
            kid,
            _TL(12, len(trace)),
            trace,
            _TL(13, len(rt)),
            rt,
            _TL(14, len(c)),
            c,
        )
    )


def associated_data(env: envelope_pb2.Envelope) -> bytes:
    """The canonical header (every field but nonce, ciphertext and signature)."""
    kind = env.WhichOneof("destination") or ""
    if kind == "recipient":
        destination = env.recipient
    elif kind == "topic":
        destination = env.topic
    else:
        destination = ""
    return _aad(
        env.version,
        env.id,
        env.sender,
        env.sender_key_id,
        kind,
        destination,
        env.subject,
        env.timestamp_ms,
        env.ttl_ms,
        env.content_type,
        env.key_id,
        encode_map(env.trace) if env.trace else b"",
        env.reply_to,
        env.correlation_id,
    )


def signed_bytes(env: envelope_pb2.Envelope, aad: bytes | None = None) -> bytes:
    """``SIG_LABEL ‖ 0x00 ‖ AAD ‖ tlv(15, nonce) ‖ tlv(16, ciphertext)``: every field but the
    signature (the AAD is fixed-format, so the concatenation stays unambiguous)."""
    if aad is None:
        aad = associated_data(env)
    return _signed(aad, env.nonce, env.ciphertext)


_SIG_PREFIX = _SIG_LABEL + b"\x00"


def _signed(aad: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    return b"".join(
        (_SIG_PREFIX, aad, _TL(15, len(nonce)), nonce, _TL(16, len(ciphertext)), ciphertext)
    )


def _direct_info(sender: str, sender_key: str, recipient: str, recipient_key: str) -> bytes:
    return canonical(
        _DIRECT_LABEL, [(1, sender), (2, sender_key), (3, recipient), (4, recipient_key)]
    )


@dataclass(frozen=True)
class EnvelopeLimits:
    max_bytes: int = 1024 * 1024
    clock_skew_ms: int = 30_000
    max_ttl_ms: int = 7 * 86_400_000


@dataclass(frozen=True)
class OpenedEnvelope:
    envelope: envelope_pb2.Envelope
    payload: bytes
    sender: Certificate


class _DirectCiphers:
    """AES keys of direct channels, derived once per (sender key, recipient key) pair."""

    def __init__(self, own: PrincipalKeys, capacity: int = 10_000) -> None:
        self.own = own
        self.capacity = capacity
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str, str], AESGCM] = OrderedDict()

    def get(self, direction: str, peer: Certificate) -> AESGCM:
        cache_key = (direction, peer.key_id, peer.principal_id)
        with self._lock:
            cipher = self._cache.get(cache_key)
            if cipher is not None:
                self._cache.move_to_end(cache_key)
                return cipher
        if direction == "out":
            info = _direct_info(
                self.own.principal_id, self.own.key_id, peer.principal_id, peer.key_id
            )
        else:
            info = _direct_info(
                peer.principal_id, peer.key_id, self.own.principal_id, self.own.key_id
            )
        cipher = AESGCM(derive_key(self.own, peer.x25519_public, info))
        with self._lock:
            self._cache[cache_key] = cipher
            if len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
        return cipher


class EnvelopeSealer:
    """Seals payloads as this principal."""

    def __init__(
        self,
        keys: PrincipalKeys,
        keyring: Keyring,
        groups: GroupKeyring,
        *,
        clock: Callable[[], int] = now_ms,
        direct_ciphers: _DirectCiphers | None = None,
    ) -> None:
        self.keys = keys
        self.keyring = keyring
        self.groups = groups
        self.clock = clock
        self._ciphers = direct_ciphers or _DirectCiphers(keys)

    def seal(
        self,
        payload: bytes,
        *,
        subject: str,
        recipient: str | None = None,
        topic: str | None = None,
        content_type: str = "application/octet-stream",
        ttl_ms: int = 300_000,
        msg_id: str | None = None,
        trace: Mapping[str, str] | None = None,
        reply_to: str = "",
        correlation_id: str = "",
    ) -> envelope_pb2.Envelope:
        if (recipient is None) == (topic is None):
            raise InvalidArgument(
                "an envelope goes to exactly one recipient or one topic", reason="BAD_DESTINATION"
            )
        cipher: AESGCM
        if recipient is not None:
            peer = self.keyring.current(recipient)
            if peer is None:
                raise Unavailable(
                    f"no valid certificate for recipient {recipient!r}", reason="UNKNOWN_RECIPIENT"
                )
            kind, destination = "recipient", recipient
            key_id = f"dh:{self.keys.key_id}:{peer.key_id}"
            cipher = self._ciphers.get("out", peer)
        else:
            assert topic is not None
            latest = self.groups.latest(topic)
            if latest is None:
                raise Unavailable(f"no group key for topic {topic!r} yet", reason="NO_GROUP_KEY")
            generation, cipher = latest
            kind, destination = "topic", topic
            key_id = group_key_id(topic, generation)
        msg_id = msg_id or new_message_id()
        sender, sender_key_id = self.keys.principal_id, self.keys.key_id
        timestamp_ms = self.clock()
        nonce = os.urandom(12)
        # The AAD is computed from the values, not read back from the protobuf message.
        aad = _aad(
            ENVELOPE_VERSION,
            msg_id,
            sender,
            sender_key_id,
            kind,
            destination,
            subject,
            timestamp_ms,
            ttl_ms,
            content_type,
            key_id,
            encode_map(trace) if trace else b"",
            reply_to,
            correlation_id,
        )
        ciphertext = cipher.encrypt(nonce, payload, aad)
        env = envelope_pb2.Envelope(
            version=ENVELOPE_VERSION,
            id=msg_id,
            sender=sender,
            sender_key_id=sender_key_id,
            subject=subject,
            timestamp_ms=timestamp_ms,
            ttl_ms=ttl_ms,
            content_type=content_type,
            key_id=key_id,
            reply_to=reply_to,
            correlation_id=correlation_id,
            nonce=nonce,
            ciphertext=ciphertext,
            signature=self.keys.sign(_signed(aad, nonce, ciphertext)),
        )
        if recipient is not None:
            env.recipient = recipient
        else:
            env.topic = destination
        if trace:
            env.trace.update(trace)
        return env

    def seal_bytes(self, payload: bytes, **kwargs: object) -> bytes:
        return self.seal(payload, **kwargs).SerializeToString(deterministic=True)  # type: ignore[arg-type]


class EnvelopeOpener:
    """Opens envelopes addressed to this principal (or to topics it holds keys for)."""

    def __init__(
        self,
        keys: PrincipalKeys,
        keyring: Keyring,
        groups: GroupKeyring,
        *,
        limits: EnvelopeLimits = EnvelopeLimits(),
        clock: Callable[[], int] = now_ms,
        direct_ciphers: _DirectCiphers | None = None,
    ) -> None:
        self.keys = keys
        self.keyring = keyring
        self.groups = groups
        self.limits = limits
        self.clock = clock
        self._ciphers = direct_ciphers or _DirectCiphers(keys)

    def parse(self, data: bytes) -> envelope_pb2.Envelope:
        """Size, parse and shape checks only (no crypto)."""
        if len(data) > self.limits.max_bytes:
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_OVERSIZED,
                f"envelope of {len(data)} bytes exceeds {self.limits.max_bytes}",
            )
        env = envelope_pb2.Envelope()
        try:
            env.ParseFromString(data)
        except Exception:  # DecodeError, or anything the parser raises on garbage
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_MALFORMED, "not a protobuf Envelope"
            ) from None
        # Re-serializing without unknown fields must give back the same bytes: this refuses
        # unknown fields, reordered fields and non-minimal encodings in one comparison.
        env.DiscardUnknownFields()
        if env.SerializeToString(deterministic=True) != data:
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_MALFORMED,
                "envelope is not in canonical encoding (unknown or reordered fields)",
                sender=env.sender,
                msg_id=env.id,
            )
        if env.version == 0:
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_MALFORMED, "envelope has no version", sender=env.sender
            )
        if env.version != ENVELOPE_VERSION:
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_UNSUPPORTED_VERSION,
                f"envelope version {env.version} is not supported (this is {ENVELOPE_VERSION})",
                sender=env.sender,
                msg_id=env.id,
            )
        kind = env.WhichOneof("destination")
        if (
            not env.id
            or len(env.id) > 64
            or not PRINCIPAL_ID_RE.match(env.sender)
            or len(env.nonce) != 12
            or len(env.signature) != 64
            or kind is None
            or not getattr(env, kind)
        ):
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_MALFORMED,
                "envelope is missing its id, sender, destination, nonce or signature",
                sender=env.sender,
                msg_id=env.id,
            )
        return env

    def open(self, data: bytes, *, subject: str | None = None) -> OpenedEnvelope:
        env = self.parse(data)
        # Each field read from the protobuf message builds a new Python object: read once.
        msg_id, sender_id, signed_subject = env.id, env.sender, env.subject
        timestamp_ms, ttl_ms = env.timestamp_ms, env.ttl_ms
        ids = {"sender": sender_id, "msg_id": msg_id, "subject": signed_subject}
        if subject is not None and signed_subject != subject:
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_SUBJECT_MISMATCH,
                f"signed for subject {signed_subject!r} but arrived on {subject!r}",
                **ids,
            )
        now = self.clock()
        skew = self.limits.clock_skew_ms
        if ttl_ms > self.limits.max_ttl_ms:
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_MALFORMED,
                f"ttl {ttl_ms} ms exceeds {self.limits.max_ttl_ms}",
                **ids,
            )
        if timestamp_ms > now + skew:
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_CLOCK_SKEW,
                f"timestamp is {timestamp_ms - now} ms in the future (window {skew} ms)",
                **ids,
            )
        if now > timestamp_ms + ttl_ms + skew:
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_EXPIRED,
                f"expired {now - timestamp_ms - ttl_ms} ms ago",
                **ids,
            )
        try:
            sender = self.keyring.lookup(sender_id, env.sender_key_id, at_ms=now)
        except EnvelopeRejected as exc:
            exc.msg_id, exc.subject = msg_id, signed_subject
            raise
        aad = associated_data(env)
        nonce, ciphertext = env.nonce, env.ciphertext
        try:
            sender.verify_key.verify(_signed(aad, nonce, ciphertext), env.signature)
        except BadSignatureError:
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_BAD_SIGNATURE, "signature does not verify", **ids
            ) from None
        cipher = self._cipher_for(env, sender, ids)
        try:
            payload = cipher.decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_UNDECRYPTABLE,
                "payload does not decrypt under its key",
                **ids,
            ) from None
        return OpenedEnvelope(env, payload, sender)

    def _cipher_for(
        self, env: envelope_pb2.Envelope, sender: Certificate, ids: dict[str, str]
    ) -> AESGCM:
        if env.WhichOneof("destination") == "recipient":
            if env.recipient != self.keys.principal_id:
                raise EnvelopeRejected(
                    RejectReason.REJECT_REASON_WRONG_RECIPIENT,
                    f"addressed to {env.recipient!r}, not to us",
                    **ids,
                )
            if env.key_id != f"dh:{sender.key_id}:{self.keys.key_id}":
                raise EnvelopeRejected(
                    RejectReason.REJECT_REASON_UNDECRYPTABLE,
                    f"encrypted for key {env.key_id!r}, which is not ours",
                    **ids,
                )
            return self._ciphers.get("in", sender)
        prefix = f"grp:{env.topic}:"
        generation = env.key_id.removeprefix(prefix)
        if not env.key_id.startswith(prefix) or not generation.isdigit():
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_MALFORMED,
                f"key id {env.key_id!r} does not name a group key",
                **ids,
            )
        cipher = self.groups.cipher(env.topic, int(generation))
        if cipher is None:
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_NOT_AUTHORIZED,
                f"we hold no key for topic {env.topic!r} generation {generation}",
                **ids,
            )
        return cipher
