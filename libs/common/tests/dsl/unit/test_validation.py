"""Validation and the agent definition model: limits, tiers, capabilities, integrations,
configs in TOML/YAML, and the JSON form the lifecycle service stores."""

from __future__ import annotations

import pytest

from symbi_common.dsl import (
    AgentDefinition,
    DslSyntaxError,
    DslValidationError,
    ResourceBounds,
    ResourceLimits,
    SandboxTier,
    Severity,
    ValidationRules,
    check_source,
    load_agent,
    load_agents,
)
from symbi_common.errors import InvalidArgument


def agent(with_attrs: str = "", items: str = "") -> str:
    return f"agent a(x: String) -> Out {{\n{items}\n with {with_attrs} {{ }}\n}}\n"


def errors(source: str, **kw: object) -> list[tuple[int, str, str, str]]:
    with pytest.raises(DslValidationError) as info:
        load_agents(source, file="a.symbi", **kw)  # type: ignore[arg-type]
    assert isinstance(info.value, InvalidArgument)
    return [(d.line, d.code, d.message, d.hint) for d in info.value.errors]


# ------------------------------------------------------------------------------ resources


@pytest.mark.parametrize(
    ("attrs", "limits"),
    [
        ("max_memory_mb = 512, max_cpu_cores = 1.5, timeout = 30000", (512, 1500, 30000)),
        ('memory = "2GB", cpu = "500m", timeout = 30.seconds', (2048, 500, 30000)),
        ('memory_limit = "256MiB", cpus = 2, timeout_s = 90', (256, 2000, 90000)),
        ('timeout = "5m"', (512, 1000, 300_000)),
        ("timeout = 2h", (512, 1000, 7_200_000)),
        ('max_memory = "1g", cpu_millicores = 250, timeout_ms = 100', (1024, 250, 100)),
    ],
)
def test_resource_limits_in_their_many_spellings(attrs: str, limits: tuple[int, int, int]) -> None:
    (definition,) = load_agents(agent(attrs))
    assert definition.resources == ResourceLimits(*limits)


def test_defaults_apply_when_nothing_is_said() -> None:
    (definition,) = load_agents("agent a { }")
    assert definition.resources == ResourceBounds().default
    assert definition.sandbox is SandboxTier.GVISOR
    (docker,) = load_agents("agent a { }", rules=ValidationRules(default_tier=SandboxTier.DOCKER))
    assert docker.sandbox is SandboxTier.DOCKER


@pytest.mark.parametrize(
    ("attrs", "message", "hint"),
    [
        ("max_memory_mb = 1000000", "memory limit 1000000 MiB is out of range", "16 to 65536 MiB"),
        ("max_memory_mb = 4", "memory limit 4 MiB is out of range", "16 to 65536"),
        ("max_cpu_cores = 0", "CPU limit 0 millicores is out of range", "10 to 64000"),
        ("max_cpu_cores = 500", "CPU limit 500000 millicores is out of range", ""),
        ("timeout = 10", "timeout limit 10 ms is out of range", "100 to 86400000 ms"),
        ("timeout = 2d", "timeout limit 172800000 ms is out of range", ""),
        ('memory = "lots"', "", ""),
        ('timeout = "soon"', "cannot read 'soon' as a duration", ""),
        ('cpu = "fast"', "cannot read 'fast' as CPU", ""),
        ("timeout = [1]", "expected a duration", ""),
    ],
)
def test_out_of_range_or_unreadable_limits(attrs: str, message: str, hint: str) -> None:
    if not message:  # `memory = "lots"` is a memory mode, not a size: only a warning
        diags = check_source(agent(attrs))
        assert [d.severity for d in diags] == [Severity.WARNING]
        assert "unknown memory mode 'lots'" in diags[0].message
        return
    found = errors(agent(attrs))
    assert len(found) == 1, found
    line, code, text, got_hint = found[0]
    assert line == 3
    assert code == "resource-limit"
    assert message in text
    assert hint in got_hint


def test_bounds_are_configurable() -> None:
    rules = ValidationRules(bounds=ResourceBounds(max_memory_mb=1024))
    assert errors(agent("max_memory_mb = 2048"), rules=rules)
    assert load_agents(agent("max_memory_mb = 1024"), rules=rules)


# ------------------------------------------------------------------------------ tiers


@pytest.mark.parametrize(
    ("value", "tier"),
    [
        ('"Tier1"', SandboxTier.DOCKER),
        ('"tier1"', SandboxTier.DOCKER),
        ('"docker"', SandboxTier.DOCKER),
        ("docker", SandboxTier.DOCKER),
        ('"Tier2"', SandboxTier.GVISOR),
        ('"gvisor"', SandboxTier.GVISOR),
        ("gvisor", SandboxTier.GVISOR),
    ],
)
def test_supported_tiers(value: str, tier: SandboxTier) -> None:
    (definition,) = load_agents(agent(f"sandbox = {value}"))
    assert definition.sandbox is tier


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"firecracker"', "Firecracker (Tier3) is not available in Symbi"),
        ('"Tier3"', "Tier3 (Firecracker) is not available"),
        ('"e2b"', "E2B remote sandboxes are not available"),
        ('"none"', "agents always run in a sandbox"),
        ('"kata"', "unknown sandbox tier 'kata'"),
        ("42", "expected a tier name"),
    ],
)
def test_refused_tiers_say_what_is_allowed(value: str, message: str) -> None:
    ((line, code, text, _),) = errors(agent(f"sandbox = {value}"))
    assert (line, code) == (3, "sandbox-tier")
    assert message in text
    assert ("Tier1" in text and "Tier2" in text) or "tier name" in text


def test_policy_requiring_gvisor_conflicts_with_docker() -> None:
    source = agent('sandbox = "Tier1"', 'policy p { require: { sandbox_tier: "Tier2" } }')
    ((_, code, text, hint),) = errors(source)
    assert code == "sandbox-tier"
    assert "requires sandbox Tier2" in text
    assert "Tier2" in hint


def test_conflicting_with_blocks() -> None:
    source = 'agent a { with sandbox = "Tier1" { } with sandbox = "Tier2" { } }'
    ((_, _, text, _),) = errors(source)
    assert "`sandbox` is set twice" in text


# ------------------------------------------------------------------------------ capabilities


def test_capabilities_are_checked() -> None:
    source = agent(items='capabilities = ["read", "read", "9lives", "bad name"]')
    found = errors(source)
    assert [m for _, _, m, _ in found] == [
        "capability `read` is listed twice",
        "invalid capability name '9lives'",
        "invalid capability name 'bad name'",
    ]
    assert {code for _, code, _, _ in found} == {"capability"}


def test_capability_catalog_suggests_names() -> None:
    rules = ValidationRules(capabilities=frozenset({"web_search", "summarize"}))
    ((_, _, text, hint),) = errors(agent(items='capabilities = ["web_serch"]'), rules=rules)
    assert text == "unknown capability `web_serch`"
    assert "`web_search`" in hint


def test_capabilities_declared_twice() -> None:
    source = agent(items='capabilities = ["a"]\n capabilities = ["b"]')
    ((_, _, text, _),) = errors(source)
    assert text == "capabilities are declared more than once"


# ------------------------------------------------------------------------------ integrations


def test_integrations_attach_to_their_agent() -> None:
    source = """
memory store { store markdown retention 30d search { vector_weight 0.5 } }
webhook hook { path "/hooks/x" secret "vault://w/s" agent b }
schedule nightly { agent: "a" cron: "0 2 * * *" }
channel chat { topic = "alerts" policy c_guard { deny: send("x") } }
agent a { }
agent b { }
"""
    a, b = load_agents(source)
    assert [(i.kind, i.name) for i in a.integrations] == [
        ("memory", "store"),
        ("schedule", "nightly"),
        ("channel", "chat"),
    ]
    assert [(i.kind, i.name) for i in b.integrations] == [
        ("memory", "store"),
        ("webhook", "hook"),
        ("channel", "chat"),
    ]
    assert a.integrations[0].settings == {
        "store": "markdown",
        "retention": "30d",
        "search": {"vector_weight": 0.5},
    }
    # A channel's policies are the agent's policies too.
    assert [p.name for p in a.policies] == ["c_guard"]
    assert "c_guard" in a.cedar.text


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ('webhook h { path "/x" secret "hunter2" }', "must be a vault:// reference"),
        ('webhook h { path "x" secret vault://a/b }', "starting with `/`"),
        ('schedule s { cron: "every day" }', "cannot read the cron expression"),
        ("schedule s { agent: a }", "needs a `cron` expression"),
    ],
)
def test_integration_checks(block: str, message: str) -> None:
    found = errors(block + "\nagent a { }")
    assert any(message in m for _, _, m, _ in found), found


def test_managed_cli_agents_need_allowed_tools() -> None:
    found = errors('metadata { executor = "claude_code" model = "x" }\nagent a { }')
    assert "needs `allowed_tools`" in found[0][2]
    assert load_agents('metadata { executor = "claude_code" allowed_tools = "Read" }\nagent a { }')


def test_duplicate_agents_and_choosing_one() -> None:
    assert "defined twice" in errors("agent a { }\nagent a { }")[0][2]
    with pytest.raises(DslValidationError, match="defines 2 agents"):
        load_agent("agent a { }\nagent b { }")
    assert load_agent("agent a { }\nagent b { }", name="b").name == "b"
    with pytest.raises(DslValidationError, match="no agent `c`"):
        load_agent("agent a { }", name="c")


def test_agent_id_becomes_the_principal() -> None:
    definition = load_agent(agent(items="policy p { allow: read }"), agent_id="tenant1.a-7f3c")
    assert definition.id == "tenant1.a-7f3c"
    assert 'principal == Symbi::Agent::"tenant1.a-7f3c"' in definition.cedar.text


def test_syntax_errors_come_through_unchanged() -> None:
    with pytest.raises(DslSyntaxError):
        load_agents("agent a {")
    diags = check_source("agent a {", file="x.symbi")
    assert diags
    assert diags[0].file == "x.symbi"


# ------------------------------------------------------------------------------ the model


FULL = """
metadata { version = "2.1.0" description = "d" tags = ["x"] }
memory notes { store markdown }
agent analyst(data: Array<Record>, q: String) -> Report {
    capabilities = ["analyze", "network_access"]
    policy net {
        allow: network("api.example.com") if request.hour >= 8
        allow: analyze if data.length < 100
        deny: execute_code
        require: { rate_limiting: "10/minute", tls: true }
        audit: { log_level: "info" }
    }
    with sandbox = "Tier2", max_memory_mb = 1024, max_cpu_cores = 0.5, timeout = 45s,
         memory = "persistent", privacy = "high", requires = ["clearance"] {
        return analyze(data, q);
    }
}
"""


def test_definition_fields() -> None:
    d = load_agent(FULL, file="analyst.symbi")
    assert (d.id, d.name, d.version, d.description) == ("analyst", "analyst", "2.1.0", "d")
    assert [(p.name, p.type) for p in d.params] == [("data", "Array<Record>"), ("q", "String")]
    assert d.returns == "Report"
    assert d.capabilities == ("analyze", "network_access")
    assert d.policies[0].rules[0] == 'allow: network("api.example.com") if request.hour >= 8'
    assert d.resources == ResourceLimits(1024, 500, 45000)
    assert d.sandbox is SandboxTier.GVISOR
    assert d.execution == {"memory": "persistent", "privacy": "high", "requires": ["clearance"]}
    assert d.metadata["tags"] == ["x"]
    assert [i.name for i in d.integrations_of("memory")] == ["notes"]
    assert d.cedar.policies
    assert d.cedar.runtime_guards[0].expression == "data.length < 100"
    assert d.source == FULL
    assert d.source_format == "dsl"
    assert d.source_file == "analyst.symbi"


def test_definition_json_round_trip() -> None:
    d = load_agent(FULL)
    text = d.to_json()
    assert AgentDefinition.from_json(text) == d
    assert len(text.encode()) < 16_000


@pytest.mark.parametrize(
    "stored",
    ["{", "[]", '{"format": 99}', '{"format": 1, "id": "x"}'],
)
def test_malformed_stored_definitions_are_invalid_argument(stored: str) -> None:
    with pytest.raises(InvalidArgument, match="stored agent definition"):
        AgentDefinition.from_json(stored)


# ------------------------------------------------------------------------------ configs

TOML = """
[metadata]
version = "2.1.0"
description = "d"
tags = ["x"]

[agent]
name = "analyst"
params = ["data: Array<Record>", "q: String"]
returns = "Report"
capabilities = ["analyze", "network_access"]
sandbox = "Tier2"

[agent.resources]
memory_mb = 1024
cpu_cores = 0.5
timeout = "45s"

[agent.execution]
memory = "persistent"
privacy = "high"
requires = ["clearance"]

[[agent.policies]]
name = "net"
rules = [
    'allow: network("api.example.com") if request.hour >= 8',
    "allow: analyze if data.length < 100",
    "deny: execute_code",
    'require: { rate_limiting: "10/minute", tls: true }',
    'audit: { log_level: "info" }',
]

[memories.notes]
store = "markdown"
"""

YAML = """
metadata: {version: "2.1.0", description: d, tags: [x]}
agents:
  - name: analyst
    params: {data: "Array<Record>", q: String}
    returns: Report
    capabilities: [analyze, network_access]
    sandbox: gvisor
    resources: {memory: 1GB, cpu: 500m, timeout_ms: 45000}
    execution: {memory: persistent, privacy: high, requires: [clearance]}
    policies:
      - name: net
        rules:
          - 'allow: network("api.example.com") if request.hour >= 8'
          - "allow: analyze if data.length < 100"
          - "deny: execute_code"
          - 'require: { rate_limiting: "10/minute", tls: true }'
          - 'audit: { log_level: "info" }'
memories:
  - name: notes
    store: markdown
"""


@pytest.mark.parametrize(("text", "fmt"), [(TOML, "toml"), (YAML, "yaml")])
def test_configs_map_to_the_same_definition(text: str, fmt: str) -> None:
    from_dsl = load_agent(FULL)
    from_config = load_agent(text, file=f"analyst.{fmt}")
    assert from_config.source_format == fmt
    for name in (
        "id",
        "name",
        "params",
        "returns",
        "capabilities",
        "policies",
        "resources",
        "sandbox",
        "execution",
        "metadata",
        "integrations",
    ):
        assert getattr(from_config, name) == getattr(from_dsl, name), name
    assert from_config.cedar.text.replace("line 2", "line X") != ""
    assert [p.id for p in from_config.cedar.policies] == [p.id for p in from_dsl.cedar.policies]
    assert from_config.cedar.runtime_guards[0].expression == "data.length < 100"


@pytest.mark.parametrize(
    ("text", "fmt", "message", "line"),
    [
        ('[agent]\nname = "a"\nmemroy = 1\n', "toml", "`agent.memroy`: unknown key `memroy`", 3),
        ('[agent]\nname = "a"\n[agent.resources]\nram = 1\n', "toml", "unknown key `ram`", 4),
        (
            '[agent]\nname = "a"\n[[agent.policies]]\nname = "p"\nrules = ["allow read"]\n',
            "toml",
            "`agent.policies[0].rules[0]`: unexpected",
            5,
        ),
        ("agent: [1]\n", "yaml", "`agent`: expected a table", 1),
        ("agent = \n", "toml", "not valid TOML", 1),
        ("[agent]\ncapabilities = []\n", "toml", "an agent needs a `name`", 1),
    ],
)
def test_config_errors_name_the_key(text: str, fmt: str, message: str, line: int) -> None:
    with pytest.raises(DslSyntaxError) as info:
        load_agents(text, file=f"x.{fmt}")
    (diag,) = info.value.diagnostics
    assert message in diag.message
    assert diag.line == line


def test_config_rule_errors_point_into_the_file() -> None:
    text = '[agent]\nname = "a"\n[[agent.policies]]\nname = "p"\nrules = ["allow: read if (x"]\n'
    with pytest.raises(DslSyntaxError) as info:
        load_agents(text, file="a.toml")
    (diag,) = info.value.diagnostics
    assert (diag.line, diag.column) == (5, 28)


def test_config_limits_are_validated_like_dsl() -> None:
    text = '[agent]\nname = "a"\nsandbox = "firecracker"\n[agent.resources]\nmemory_mb = 999999\n'
    found = errors(text, format="toml")
    assert {code for _, code, _, _ in found} == {"sandbox-tier", "resource-limit"}
