"""The service's pure parts: settings, converters, the bus trust rule, the policy question."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from symbi.bus.v1 import envelope_pb2
from symbi.mcp_gateway.v1 import mcp_gateway_pb2 as pb
from symbi_common.bus import Received
from symbi_common.errors import ConfigError, InvalidArgument, PermissionDenied, Unavailable
from symbi_common.policy_client import PolicyDecision as ServiceDecision
from symbi_mcp_gateway import Decision, ToolCallAuthorization
from symbi_mcp_gateway.app import endpoint_port
from symbi_mcp_gateway.bus_ports import BusPolicy, question_for
from symbi_mcp_gateway.convert import (
    arguments_from_request,
    server_config_from_proto,
    struct_from,
    struct_to_dict,
)
from symbi_mcp_gateway.events import (
    INVOKE_SUBJECT,
    LIST_TOOLS_SUBJECT,
    agent_for,
    replica_principals,
    replica_subject,
)
from symbi_mcp_gateway.kv_pins import pin_key, tool_id_of_key
from symbi_mcp_gateway.settings import McpGatewaySettings
from symbi_testing.principals import CryptoWorld


def _settings(**mcp: Any) -> McpGatewaySettings:
    return McpGatewaySettings(mcp=mcp)


def test_the_section_feeds_the_domain_config_with_the_platform_defaults() -> None:
    settings = _settings(
        servers=[{"name": "time", "command": "mcp-server-time", "trust_mode": "development"}],
        endpoint={"port": 0},
    )
    config = settings.mcp.gateway_config()
    (server,) = config.servers
    # The original runtime's default of 100 is the per-server in-flight call limit.
    assert config.max_concurrent_connections == 100
    assert server.max_concurrent_connections == 100
    assert server.connection_timeout_s == 30
    assert settings.mcp.endpoint.port == 0
    assert settings.mcp.endpoint.path == "/mcp"


def test_the_endpoint_port_follows_an_ephemeral_grpc_port() -> None:
    assert endpoint_port(McpGatewaySettings()) == 50156
    assert endpoint_port(McpGatewaySettings(grpc={"port": 0})) == 0
    assert endpoint_port(
        McpGatewaySettings(grpc={"port": 0}, mcp={"endpoint": {"port": 8123}})
    ) == (8123)
    assert endpoint_port(McpGatewaySettings(mcp={"endpoint": {"port": 0}})) == 0


def test_invalid_servers_stop_the_process_naming_the_key() -> None:
    settings = _settings(servers=[{"name": "x", "url": "ftp://x", "domain": "x.example"}])
    with pytest.raises(ConfigError, match=r"mcp\.servers\[0\]\.url = 'ftp://x'"):
        settings.mcp.gateway_config()
    with pytest.raises(ValueError, match="unknown_key"):
        _settings(unknown_key=1)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    servers = [{"name": "time", "command": "mcp-server-time", "domain": "t.example"}]
    monkeypatch.setenv("SYMBI_CONFIG_PATH", "")
    monkeypatch.setenv("SYMBI_MCP__SERVERS", json.dumps(servers))
    monkeypatch.setenv("SYMBI_MCP__ENDPOINT__PORT", "0")
    monkeypatch.setenv("SYMBI_MCP__TOOL_VERIFICATION", "permissive")
    settings = McpGatewaySettings()
    assert settings.mcp.gateway_config().servers[0].trust_mode.value == "permissive"
    assert settings.mcp.endpoint.port == 0


def test_structs_give_integers_back() -> None:
    struct = struct_from({"n": 3, "f": 2.5, "nested": {"list": [1, 2.0, "x"]}, "none": None})
    assert struct_to_dict(struct) == {
        "n": 3,
        "f": 2.5,
        "nested": {"list": [1, 2, "x"]},
        "none": None,
    }


def test_arguments_json_wins_and_must_be_an_object() -> None:
    request = pb.InvokeToolRequest(arguments_json='{"big": 12345678901234567890}')
    request.arguments.update({"ignored": True})
    assert arguments_from_request(request) == {"big": 12345678901234567890}
    for bad in ("[1]", "{", '{"x": NaN}'):
        with pytest.raises(InvalidArgument):
            arguments_from_request(pb.InvokeToolRequest(arguments_json=bad))


def test_registered_servers_inherit_the_section() -> None:
    section = _settings(tool_verification="permissive", call_timeout_s=9).mcp.gateway_config()
    message = pb.McpServer(name="tools", url="http://127.0.0.1:1/mcp", domain="t.example")
    message.limits.call_timeout_ms = 1500
    config = server_config_from_proto(message, section)
    assert config.trust_mode.value == "permissive"
    assert config.call_timeout_s == 1.5
    assert config.max_concurrent_connections == 100
    with pytest.raises(InvalidArgument, match="exactly one of 'command'"):
        server_config_from_proto(pb.McpServer(name="none", domain="t.example"), section)
    with pytest.raises(InvalidArgument, match="name"):
        server_config_from_proto(pb.McpServer(name="Bad_Name", command="x"), section)


def _received(sender: str, role: str) -> Received:
    return Received(
        subject="symbi.rpc.mcp.invoke",
        sender=sender,
        sender_role=role,
        payload=b"",
        content_type="",
        msg_id="m",
        envelope=envelope_pb2.Envelope(),
    )


def test_the_bus_trust_rule() -> None:
    assert agent_for(_received("node-a", "node"), "agent-alice") == "agent-alice"
    assert agent_for(_received("svc-x-a", "service"), "agent-alice") == "agent-alice"
    assert agent_for(_received("agent-alice", "agent"), "") == "agent-alice"
    assert agent_for(_received("agent-alice", "agent"), "agent-alice") == "agent-alice"
    with pytest.raises(PermissionDenied, match="may not act for"):
        agent_for(_received("agent-alice", "agent"), "agent-bob")
    with pytest.raises(InvalidArgument, match="agent_id is required"):
        agent_for(_received("node-a", "node"), "")
    with pytest.raises(InvalidArgument):
        agent_for(_received("node-a", "node"), "not an id")
    with pytest.raises(PermissionDenied):
        agent_for(_received("issuer-x", "issuer"), "agent-alice")


REQUEST = ToolCallAuthorization(
    agent_id="agent-alice",
    server="time",
    tool="now",
    args_summary='{"tz":"UTC"}',
    verified=True,
    domain="time.example",
    trust_mode="strict",
)


def test_the_policy_question_carries_the_tool_and_its_server() -> None:
    question = question_for(REQUEST)
    assert (question.principal.type, question.principal.id) == ("Agent", "agent-alice")
    assert question.action == "tool_call"
    assert (question.resource.type, question.resource.id) == ("Tool", "time/now")
    assert question.context == {"tool": "now", "server": "time", "args_summary": '{"tz":"UTC"}'}
    tool, server = question.entities
    assert tool["attrs"] == {"name": "now", "verified": True}
    assert tool["parents"] == [{"type": "Symbi::McpServer", "id": "time"}]
    assert server["attrs"] == {"domain": "time.example", "trust_mode": "strict"}
    listing = question_for(ToolCallAuthorization(agent_id="agent-alice", server="time", tool="now"))
    assert "args_summary" not in listing.context


class _Client:
    def __init__(self, *decisions: ServiceDecision) -> None:
        self.decisions = decisions

    async def evaluate(self, question: Any) -> ServiceDecision:
        return self.decisions[0]

    async def evaluate_batch(self, questions: Sequence[Any]) -> list[ServiceDecision]:
        return list(self.decisions)


async def test_policy_answers_become_domain_decisions() -> None:
    conditional = ServiceDecision("allow_with_conditions", conditions=("audit_full",))
    decided = await BusPolicy(_Client(conditional)).authorize(REQUEST)  # type: ignore[arg-type]
    assert decided.decision is Decision.ALLOW_WITH_CONDITIONS
    assert decided.conditions == ("audit_full",)
    deny = ServiceDecision("deny", reasons=("no",), policies=("p",))
    decided = await BusPolicy(_Client(deny)).authorize(REQUEST)  # type: ignore[arg-type]
    assert decided.decision is Decision.DENY
    assert decided.reasons == ("no",)
    closed = ServiceDecision.closed("nobody serves it")
    with pytest.raises(Unavailable, match="nobody serves it"):
        await BusPolicy(_Client(closed)).authorize(REQUEST)  # type: ignore[arg-type]
    with pytest.raises(Unavailable):
        await BusPolicy(_Client(closed, closed)).authorize_many([REQUEST, REQUEST])  # type: ignore[arg-type]
    mixed = await BusPolicy(_Client(closed, ServiceDecision("allow"))).authorize_many(  # type: ignore[arg-type]
        [REQUEST, REQUEST]
    )
    assert [d.decision for d in mixed] == [Decision.DENY, Decision.ALLOW]


def test_pin_keys_are_kv_safe_and_reversible() -> None:
    for tool_id in ("time/get_current_time", "s/a.b c/ü*>"):
        key = pin_key(tool_id)
        assert all(c.isalnum() or c in "-_." for c in key)
        assert tool_id_of_key(key) == tool_id
    assert tool_id_of_key("other.key") is None
    assert tool_id_of_key("pin.%%%") is None


def test_metrics_count_what_the_audit_log_records() -> None:
    from prometheus_client import REGISTRY

    from symbi_mcp_gateway import AuditEvent
    from symbi_mcp_gateway.metrics import observe

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    labels = {"server": "m-srv", "outcome": "refused", "reason": "POLICY_DENIED", "via": "bus"}
    before = value("symbi_mcp_tool_calls_total", **labels)
    observe(
        AuditEvent(
            "mcp.tool_call",
            details={
                "server": "m-srv",
                "outcome": "refused",
                "reason": "POLICY_DENIED",
                "via": "bus",
            },
        )
    )
    assert value("symbi_mcp_tool_calls_total", **labels) == before + 1
    timed = value("symbi_mcp_tool_call_seconds_count", server="m-srv")
    observe(
        AuditEvent("mcp.tool_call", details={"server": "m-srv", "outcome": "ok", "duration_ms": 3})
    )
    assert value("symbi_mcp_tool_call_seconds_count", server="m-srv") == timed + 1
    quarantined = value("symbi_mcp_tool_events_total", event="tool.quarantined")
    observe(AuditEvent("mcp.tool.quarantined", details={"server": "m-srv"}))
    assert value("symbi_mcp_tool_events_total", event="tool.quarantined") == quarantined + 1


def test_each_replica_has_subjects_of_its_own_beside_the_shared_ones() -> None:
    assert (INVOKE_SUBJECT, LIST_TOOLS_SUBJECT) == (
        "symbi.rpc.mcp.invoke",
        "symbi.rpc.mcp.list_tools",
    )
    own = replica_subject("svc-mcp-gateway-a", "invoke")
    assert own == "symbi.rpc.mcp.svc-mcp-gateway-a.invoke"
    # NATS "*" matches one token: a replica's subject is not a shared one, and vice versa.
    assert len(own.split(".")) == len(INVOKE_SUBJECT.split(".")) + 1


def test_an_agent_finds_the_gateway_replicas_in_its_keyring(crypto_world: CryptoWorld) -> None:
    for principal, role in (
        ("svc-mcp-gateway-b", "service"),
        ("svc-mcp-gateway-a", "service"),
        ("svc-policy-a", "service"),
        ("svc-mcp-gateway-x", "agent"),  # a name is not a role
        ("agent-alice", "agent"),
    ):
        crypto_world.principal(principal, role)
    assert replica_principals(crypto_world.keyring) == ["svc-mcp-gateway-a", "svc-mcp-gateway-b"]
