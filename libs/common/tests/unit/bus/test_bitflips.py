"""Property: any single-bit change anywhere in a sealed envelope is refused."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbi_common.crypto import EnvelopeRejected
from symbi_testing.principals import CryptoWorld as World


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payload=st.binary(max_size=256),
    topic=st.booleans(),
    where=st.floats(0, 1, exclude_max=True),
    bit=st.integers(0, 7),
)
def test_any_single_bit_flip_is_rejected(
    crypto_world: World, payload: bytes, topic: bool, where: float, bit: int
) -> None:
    sender, receiver = crypto_world.principal("svc-a"), crypto_world.principal("svc-b")
    if topic and receiver.groups.latest("t") is None:
        crypto_world.share_topic("t", 1, sender, receiver)
    kwargs = {"topic": "t"} if topic else {"recipient": "svc-b"}
    data = sender.sealer.seal_bytes(payload, subject="symbi.x", **kwargs)
    assert receiver.opener.open(data).payload == payload
    index = int(where * len(data))
    flipped = bytearray(data)
    flipped[index] ^= 1 << bit
    try:
        receiver.opener.open(bytes(flipped))
    except EnvelopeRejected:
        return
    raise AssertionError(f"a flip of bit {bit} at byte {index}/{len(data)} was accepted")
