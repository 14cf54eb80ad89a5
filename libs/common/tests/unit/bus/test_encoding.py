"""The unrolled header encoding is exactly the canonical encoding it specialises."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from symbi.bus.v1 import envelope_pb2
from symbi_common.crypto.encoding import canonical, tlv
from symbi_common.crypto.envelope import (
    _AAD_LABEL,
    _SIG_LABEL,
    _header_fields,
    associated_data,
    signed_bytes,
)

text = st.text(max_size=40)
int64 = st.integers(-(2**63), 2**63 - 1)


@settings(max_examples=300, deadline=None)
@given(
    version=st.integers(0, 2**32 - 1),
    fields=st.fixed_dictionaries(
        {
            "id": text,
            "sender": text,
            "sender_key_id": text,
            "subject": text,
            "content_type": text,
            "key_id": text,
            "reply_to": text,
            "correlation_id": text,
        }
    ),
    destination=st.one_of(st.none(), st.tuples(st.sampled_from(["recipient", "topic"]), text)),
    timestamp_ms=int64,
    ttl_ms=st.integers(0, 2**32 - 1),
    trace=st.dictionaries(st.text(min_size=1, max_size=10), text, max_size=3),
    nonce=st.binary(max_size=16),
    ciphertext=st.binary(max_size=64),
)
def test_associated_data_is_the_canonical_header(
    version: int,
    fields: dict[str, str],
    destination: tuple[str, str] | None,
    timestamp_ms: int,
    ttl_ms: int,
    trace: dict[str, str],
    nonce: bytes,
    ciphertext: bytes,
) -> None:
    env = envelope_pb2.Envelope(
        version=version,
        timestamp_ms=timestamp_ms,
        ttl_ms=ttl_ms,
        nonce=nonce,
        ciphertext=ciphertext,
        **fields,
    )
    if destination is not None:
        setattr(env, destination[0], destination[1])
    env.trace.update(trace)
    aad = canonical(_AAD_LABEL, _header_fields(env))
    assert associated_data(env) == aad
    assert signed_bytes(env) == b"".join(
        (_SIG_LABEL, b"\x00", aad, tlv(15, nonce), tlv(16, ciphertext))
    )
