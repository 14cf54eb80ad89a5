"""Envelopes: what opens, and every reason an envelope is refused."""

from __future__ import annotations

import pytest

from symbi.bus.v1 import envelope_pb2
from symbi_common.crypto import EnvelopeRejected, RejectReason
from symbi_common.crypto.envelope import associated_data, signed_bytes
from symbi_testing.principals import CryptoWorld as World

R = RejectReason


def rejected_with(reason: int, action: object) -> EnvelopeRejected:
    with pytest.raises(EnvelopeRejected) as info:
        action()  # type: ignore[operator]
    assert info.value.reject_reason == reason, f"{info.value.reason_label}: {info.value.message}"
    return info.value


def test_direct_message_round_trip(crypto_world: World) -> None:
    a, b = crypto_world.principal("svc-a"), crypto_world.principal("svc-b")
    data = a.sealer.seal_bytes(
        b"hello", subject="symbi.direct.svc-b", recipient="svc-b", content_type="text/plain"
    )
    opened = b.opener.open(data, subject="symbi.direct.svc-b")
    assert opened.payload == b"hello"
    assert opened.sender.principal_id == "svc-a"
    assert opened.envelope.content_type == "text/plain"
    assert b"hello" not in data  # encrypted on the wire


def test_topic_message_round_trip(crypto_world: World) -> None:
    a, b = crypto_world.principal("svc-a"), crypto_world.principal("svc-b")
    crypto_world.share_topic("platform", 1, a, b)
    data = a.sealer.seal_bytes(b"event", subject="symbi.topic.platform", topic="platform")
    assert b.opener.open(data).payload == b"event"
    assert a.opener.open(data).payload == b"event"  # members read their own topic too


def test_oversized(crypto_world: World) -> None:
    a, b = crypto_world.principal("svc-a"), crypto_world.principal("svc-b")
    data = a.sealer.seal_bytes(b"x" * (2 * 1024 * 1024), subject="s", recipient="svc-b")
    rejected_with(R.REJECT_REASON_OVERSIZED, lambda: b.opener.open(data))


@pytest.mark.parametrize("garbage", [b"", b"\xff\xff\xff", b"not a protobuf at all \x00\x01"])
def test_malformed(crypto_world: World, garbage: bytes) -> None:
    b = crypto_world.principal("svc-b")
    rejected_with(R.REJECT_REASON_MALFORMED, lambda: b.opener.open(garbage))


def test_unknown_fields_are_refused(crypto_world: World) -> None:
    a, b = crypto_world.principal("svc-a"), crypto_world.principal("svc-b")
    data = a.sealer.seal_bytes(b"x", subject="s", recipient="svc-b")
    extra = data + b"\xa0\x06\x01"  # field 100, varint 1
    rejected_with(R.REJECT_REASON_MALFORMED, lambda: b.opener.open(extra))


def test_unsupported_version(crypto_world: World) -> None:
    a, b = crypto_world.principal("svc-a"), crypto_world.principal("svc-b")
    env = a.sealer.seal(b"x", subject="s", recipient="svc-b")
    env.version = 2
    rejected_with(
        R.REJECT_REASON_UNSUPPORTED_VERSION,
        lambda: b.opener.open(env.SerializeToString(deterministic=True)),
    )


def test_subject_mismatch(crypto_world: World) -> None:
    a, b = crypto_world.principal("svc-a"), crypto_world.principal("svc-b")
    data = a.sealer.seal_bytes(b"x", subject="symbi.direct.svc-b", recipient="svc-b")
    rejected_with(
        R.REJECT_REASON_SUBJECT_MISMATCH, lambda: b.opener.open(data, subject="symbi.task.node-1")
    )


def test_clock_skew_and_expiry(crypto_world: World) -> None:
    a, b = crypto_world.principal("svc-a"), crypto_world.principal("svc-b")
    data = a.sealer.seal_bytes(b"x", subject="s", recipient="svc-b", ttl_ms=60_000)
    crypto_world.clock_ms[0] -= (
        31_000  # the receiver's clock is behind: the sender looks 31 s ahead
    )
    rejected_with(R.REJECT_REASON_CLOCK_SKEW, lambda: b.opener.open(data))
    crypto_world.clock_ms[0] += 31_000 + 60_000 + 29_000  # inside ttl + skew
    assert b.opener.open(data).payload == b"x"
    crypto_world.clock_ms[0] += 2_000  # past ttl + skew
    rejected_with(R.REJECT_REASON_EXPIRED, lambda: b.opener.open(data))


def test_unknown_sender(crypto_world: World) -> None:
    from symbi_common.crypto import (
        EnvelopeSealer,
        GroupKeyring,
        Keyring,
        PrincipalKeys,
        RootAuthority,
    )

    b = crypto_world.principal("svc-b")
    other_root = RootAuthority.create()
    stranger = PrincipalKeys.generate("svc-a")
    other_ring = Keyring(other_root.certificate, clock=crypto_world.now)
    other_ring.add_certificate(other_root.issue_for(stranger, "service"))
    other_ring.add_certificate(crypto_world.keyring.current("svc-b"))  # type: ignore[arg-type]
    sealer = EnvelopeSealer(stranger, crypto_world.keyring, GroupKeyring(), clock=crypto_world.now)
    data = sealer.seal_bytes(b"x", subject="s", recipient="svc-b")
    rejected_with(R.REJECT_REASON_UNKNOWN_SENDER, lambda: b.opener.open(data))
    # Nor does a certificate from another root get into our keyring.
    assert not crypto_world.keyring.add_certificate(other_root.issue_for(stranger, "service"))


def test_expired_sender_certificate(crypto_world: World) -> None:
    from symbi_common.crypto import EnvelopeSealer, GroupKeyring, PrincipalKeys

    b = crypto_world.principal("svc-b")
    keys = PrincipalKeys.generate("svc-a")
    crypto_world.keyring.add_certificate(
        crypto_world.root.issue_for(keys, "service", validity_s=3600)
    )
    sealer = EnvelopeSealer(keys, crypto_world.keyring, GroupKeyring(), clock=crypto_world.now)
    crypto_world.clock_ms[0] += 2 * 3600 * 1000
    data = sealer.seal_bytes(b"x", subject="s", recipient="svc-b")
    rejected_with(R.REJECT_REASON_EXPIRED_SENDER, lambda: b.opener.open(data))


def test_revoked_sender_by_principal_and_by_key(crypto_world: World) -> None:
    a, b, c = (
        crypto_world.principal("svc-a"),
        crypto_world.principal("svc-b"),
        crypto_world.principal("svc-c"),
    )
    data = a.sealer.seal_bytes(b"x", subject="s", recipient="svc-b")
    assert crypto_world.keyring.add_revocation(
        crypto_world.root.revoke("svc-a", reason="compromised")
    )
    rejected_with(R.REJECT_REASON_REVOKED_SENDER, lambda: b.opener.open(data))
    data_c = c.sealer.seal_bytes(b"x", subject="s", recipient="svc-b")
    assert crypto_world.keyring.add_revocation(
        crypto_world.root.revoke("svc-c", key_id=c.keys.key_id)
    )
    rejected_with(R.REJECT_REASON_REVOKED_SENDER, lambda: b.opener.open(data_c))


def test_revocation_not_signed_by_the_root_is_ignored(crypto_world: World) -> None:
    from symbi_common.crypto.identity import sign_revocation

    a, b = crypto_world.principal("svc-a"), crypto_world.principal("svc-b")
    forged = sign_revocation(b.keys, "svc-a")
    assert not crypto_world.keyring.add_revocation(forged)
    data = a.sealer.seal_bytes(b"x", subject="s", recipient="svc-b")
    assert b.opener.open(data).payload == b"x"


def test_bad_signature_on_a_changed_header(crypto_world: World) -> None:
    a, b = crypto_world.principal("svc-a"), crypto_world.principal("svc-b")
    env = a.sealer.seal(b"x", subject="s", recipient="svc-b", content_type="text/plain")
    env.content_type = "application/json"
    rejected_with(
        R.REJECT_REASON_BAD_SIGNATURE,
        lambda: b.opener.open(env.SerializeToString(deterministic=True)),
    )


def test_wrong_recipient(crypto_world: World) -> None:
    a, b = crypto_world.principal("svc-a"), crypto_world.principal("svc-b")
    crypto_world.principal("svc-c")
    data = a.sealer.seal_bytes(b"x", subject="s", recipient="svc-c")
    rejected_with(R.REJECT_REASON_WRONG_RECIPIENT, lambda: b.opener.open(data))


def test_validly_signed_but_undecryptable(crypto_world: World) -> None:
    a, b = crypto_world.principal("svc-a"), crypto_world.principal("svc-b")
    env = a.sealer.seal(b"x", subject="s", recipient="svc-b")
    env.ciphertext = b"\x00" * len(env.ciphertext)  # a real principal sending garbage
    env.signature = a.keys.sign(signed_bytes(env, associated_data(env)))
    rejected_with(
        R.REJECT_REASON_UNDECRYPTABLE,
        lambda: b.opener.open(env.SerializeToString(deterministic=True)),
    )


def test_topic_member_without_the_generation_is_not_authorized(crypto_world: World) -> None:
    a, b = crypto_world.principal("svc-a"), crypto_world.principal("svc-b")
    crypto_world.share_topic("platform", 1, a, b)
    crypto_world.share_topic("platform", 2, a)  # b was removed from the topic at generation 2
    data = a.sealer.seal_bytes(b"after", subject="s", topic="platform")
    rejected_with(R.REJECT_REASON_NOT_AUTHORIZED, lambda: b.opener.open(data))


def test_rotation_keeps_what_members_were_entitled_to(crypto_world: World) -> None:
    a, b, c = (
        crypto_world.principal("svc-a"),
        crypto_world.principal("svc-b"),
        crypto_world.principal("svc-c"),
    )
    crypto_world.share_topic("t", 1, a, b)
    old = a.sealer.seal_bytes(b"gen1", subject="s", topic="t")
    crypto_world.share_topic("t", 2, a, b, c)  # c joins: a new generation
    new = a.sealer.seal_bytes(b"gen2", subject="s", topic="t")
    assert b.opener.open(old).payload == b"gen1"
    assert b.opener.open(new).payload == b"gen2"
    assert c.opener.open(new).payload == b"gen2"
    rejected_with(
        R.REJECT_REASON_NOT_AUTHORIZED, lambda: c.opener.open(old)
    )  # not before it joined


def test_issuer_chain_rules(crypto_world: World) -> None:
    from symbi_common.crypto import PrincipalKeys
    from symbi_common.crypto.identity import issue_certificate

    issuer_keys = PrincipalKeys.generate("lifecycle-issuer")
    assert crypto_world.keyring.add_certificate(crypto_world.root.issue_for(issuer_keys, "issuer"))
    agent = PrincipalKeys.generate("agent-1")
    agent_cert = issue_certificate(
        issuer_keys, (agent.ed25519_public, agent.x25519_public), "agent-1", "agent"
    )
    assert crypto_world.keyring.add_certificate(agent_cert)
    assert crypto_world.keyring.lookup("agent-1", agent.key_id).role == "agent"
    # An issuer may not certify a service.
    svc = PrincipalKeys.generate("svc-evil")
    evil = issue_certificate(
        issuer_keys, (svc.ed25519_public, svc.x25519_public), "svc-evil", "service"
    )
    assert not crypto_world.keyring.add_certificate(evil)
    # Revoking the issuer revokes what it issued.
    crypto_world.keyring.add_revocation(crypto_world.root.revoke("lifecycle-issuer"))
    rejected_with(
        R.REJECT_REASON_REVOKED_SENDER, lambda: crypto_world.keyring.lookup("agent-1", agent.key_id)
    )


def test_a_second_root_is_not_trusted(crypto_world: World) -> None:
    from symbi_common.crypto import RootAuthority

    impostor = RootAuthority.create()
    assert not crypto_world.keyring.add_certificate(impostor.certificate)


def test_reject_carries_sender_and_message_id(crypto_world: World) -> None:
    a, b = crypto_world.principal("svc-a"), crypto_world.principal("svc-b")
    env = a.sealer.seal(b"x", subject="s", recipient="svc-b")
    env.ttl_ms += 1
    error = rejected_with(
        R.REJECT_REASON_BAD_SIGNATURE,
        lambda: b.opener.open(env.SerializeToString(deterministic=True)),
    )
    assert error.sender == "svc-a"
    assert error.msg_id == env.id
    assert error.reason_label == "bad_signature"
    assert isinstance(envelope_pb2.Envelope(), envelope_pb2.Envelope)
