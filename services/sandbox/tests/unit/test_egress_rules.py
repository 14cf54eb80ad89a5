"""Egress decisions that need no network: grants, input checks, address blocking."""

from __future__ import annotations

import pytest

from symbi_common.errors import InvalidArgument, PermissionDenied
from symbi_sandbox.channel import AgentContext, EgressConfig, EgressGate


@pytest.mark.parametrize(
    ("address", "permitted"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.17.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),
        ("::1", False),
        ("fd00::1", False),
        ("fe80::1", False),
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
    ],
)
def test_default_blocks_node_local_and_private_addresses(address: str, permitted: bool) -> None:
    assert EgressConfig().permits_address(address) is permitted


def test_allowed_networks_override_blocks() -> None:
    config = EgressConfig(allowed_networks=("127.0.0.0/8",))
    assert config.permits_address("127.0.0.1")
    assert not config.permits_address("10.0.0.1")
    with pytest.raises(InvalidArgument):
        EgressConfig(blocked_networks=("not-a-network",))


async def test_refusals_before_any_network_use(egress_policy, audit) -> None:  # type: ignore[no-untyped-def]
    gate = EgressGate(egress_policy, audit, EgressConfig())
    granted = AgentContext("t1", "agent-a", "n1", network=True)
    with pytest.raises(InvalidArgument, match="DNS name or IP"):
        await gate.open(granted, "bad host!", 80)
    with pytest.raises(InvalidArgument, match=r"1\.\.65535"):
        await gate.open(granted, "example.org", 0)
    with pytest.raises(InvalidArgument, match=r"1\.\.65535"):
        await gate.open(granted, "example.org", True)
    with pytest.raises(PermissionDenied, match="not on the agent's allow-list") as denied:
        await gate.open(granted, "example.org", 443)
    assert denied.value.reason == "EGRESS_DENIED"
    offline = AgentContext("t1", "agent-a", "n1", network=False)
    with pytest.raises(PermissionDenied) as not_granted:
        await gate.open(offline, "example.org", 443)
    assert not_granted.value.reason == "NETWORK_NOT_GRANTED"
    assert egress_policy.asked == [("example.org", 443)]
    assert [(r.decision, r.details["destination"]) for r in audit.of("sandbox.egress")] == [
        ("deny", "example.org:443"),
        ("deny", "example.org:443"),
    ]


async def test_literal_ip_is_checked_without_resolution(egress_policy, audit) -> None:  # type: ignore[no-untyped-def]
    egress_policy.allowed.add(("169.254.169.254", 80))
    gate = EgressGate(egress_policy, audit, EgressConfig())
    with pytest.raises(PermissionDenied) as blocked:
        await gate.open(AgentContext("t1", "a", "n", network=True), "169.254.169.254", 80)
    assert blocked.value.reason == "EGRESS_BLOCKED"
