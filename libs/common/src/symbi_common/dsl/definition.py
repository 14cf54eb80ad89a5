"""The agent definition: what the lifecycle service stores for each agent.

Built from DSL text or a TOML/YAML config by :mod:`symbi_common.dsl.validation`; serialises
to JSON (``to_json`` / ``from_json``) for the KV bucket. Everything in it has been validated:
resource limits are in range, the tier is one Symbi runs, and the policies compiled to Cedar
that passed the schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from symbi_common.dsl import ast
from symbi_common.dsl.formatter import format_expr
from symbi_common.dsl.policy_compiler import (
    CompiledPolicy,
    CompiledPolicySet,
    Obligation,
    RuntimeGuard,
)
from symbi_common.dsl.resources import ResourceLimits, SandboxTier
from symbi_common.errors import InvalidArgument

__all__ = [
    "FORMAT_VERSION",
    "AgentDefinition",
    "Integration",
    "Parameter",
    "PolicySpec",
    "to_json_value",
]

#: Version of the JSON form; bumped when a field changes meaning.
FORMAT_VERSION = 1

JSONValue = Any  # str | int | float | bool | None | list[JSONValue] | dict[str, JSONValue]
SourceFormat = Literal["dsl", "toml", "yaml"]


@dataclass(frozen=True, slots=True)
class Parameter:
    """A parameter of the agent: its name and its type as written (``Array<Record>``)."""

    name: str
    type: str


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """A policy block as written: its name and its rules in canonical DSL form."""

    name: str
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Integration:
    """A ``schedule``, ``channel``, ``memory`` or ``webhook`` block attached to the agent."""

    kind: Literal["schedule", "channel", "memory", "webhook"]
    name: str | None
    settings: dict[str, JSONValue]


@dataclass(frozen=True, slots=True)
class AgentDefinition:
    """A validated agent, ready to be stored and scheduled."""

    id: str
    name: str
    params: tuple[Parameter, ...]
    returns: str | None
    capabilities: tuple[str, ...]
    policies: tuple[PolicySpec, ...]
    cedar: CompiledPolicySet
    resources: ResourceLimits
    sandbox: SandboxTier
    #: Other ``with`` attributes (memory mode, privacy, security, ...), as JSON values.
    execution: dict[str, JSONValue]
    #: ``metadata`` block entries (version, author, description, tags, ...).
    metadata: dict[str, JSONValue]
    integrations: tuple[Integration, ...]
    source: str = field(repr=False)
    source_format: SourceFormat = "dsl"
    source_file: str = "<string>"

    @property
    def version(self) -> str | None:
        value = self.metadata.get("version")
        return str(value) if value is not None else None

    @property
    def description(self) -> str | None:
        value = self.metadata.get("description")
        return str(value) if value is not None else None

    def integrations_of(self, kind: str) -> tuple[Integration, ...]:
        return tuple(i for i in self.integrations if i.kind == kind)

    # ---------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, JSONValue]:
        """A JSON-ready dict (``from_dict`` reverses it)."""
        return {
            "format": FORMAT_VERSION,
            "id": self.id,
            "name": self.name,
            "params": [{"name": p.name, "type": p.type} for p in self.params],
            "returns": self.returns,
            "capabilities": list(self.capabilities),
            "policies": [{"name": p.name, "rules": list(p.rules)} for p in self.policies],
            "cedar": {
                "agent_id": self.cedar.agent_id,
                "policies": [
                    {
                        "id": p.id,
                        "effect": p.effect,
                        "text": p.text,
                        "policy": p.policy,
                        "rule_kind": p.rule_kind,
                        "line": p.line,
                        "column": p.column,
                        "conditions": list(p.conditions),
                    }
                    for p in self.cedar.policies
                ],
                "runtime_guards": [
                    {
                        "rule_id": g.rule_id,
                        "expression": g.expression,
                        "true_tag": g.true_tag,
                        "false_tag": g.false_tag,
                        "line": g.line,
                        "column": g.column,
                    }
                    for g in self.cedar.runtime_guards
                ],
                "obligations": [
                    {"policy": o.policy, "kind": o.kind, "key": o.key, "value": o.value}
                    for o in self.cedar.obligations
                ],
            },
            "resources": {
                "memory_mb": self.resources.memory_mb,
                "cpu_millicores": self.resources.cpu_millicores,
                "timeout_ms": self.resources.timeout_ms,
            },
            "sandbox": self.sandbox.value,
            "execution": self.execution,
            "metadata": self.metadata,
            "integrations": [
                {"kind": i.kind, "name": i.name, "settings": i.settings} for i in self.integrations
            ],
            "source": self.source,
            "source_format": self.source_format,
            "source_file": self.source_file,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, JSONValue]) -> AgentDefinition:
        """Rebuild a definition stored by ``to_dict``; InvalidArgument if it is malformed."""
        try:
            if data.get("format") != FORMAT_VERSION:
                raise ValueError(f"unknown format {data.get('format')!r}")
            cedar = data["cedar"]
            compiled = CompiledPolicySet(
                cedar["agent_id"],
                tuple(
                    CompiledPolicy(
                        p["id"],
                        p["effect"],
                        p["text"],
                        p["policy"],
                        p["rule_kind"],
                        p["line"],
                        p["column"],
                        tuple(p["conditions"]),
                    )
                    for p in cedar["policies"]
                ),
                tuple(RuntimeGuard(**g) for g in cedar["runtime_guards"]),
                tuple(Obligation(**o) for o in cedar["obligations"]),
            )
            return cls(
                id=data["id"],
                name=data["name"],
                params=tuple(Parameter(p["name"], p["type"]) for p in data["params"]),
                returns=data["returns"],
                capabilities=tuple(data["capabilities"]),
                policies=tuple(PolicySpec(p["name"], tuple(p["rules"])) for p in data["policies"]),
                cedar=compiled,
                resources=ResourceLimits(**data["resources"]),
                sandbox=SandboxTier(data["sandbox"]),
                execution=dict(data["execution"]),
                metadata=dict(data["metadata"]),
                integrations=tuple(
                    Integration(i["kind"], i["name"], dict(i["settings"]))
                    for i in data["integrations"]
                ),
                source=data["source"],
                source_format=data["source_format"],
                source_file=data["source_file"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(
                f"stored agent definition is malformed: {exc}", reason="BAD_DEFINITION"
            ) from None

    @classmethod
    def from_json(cls, text: str | bytes) -> AgentDefinition:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidArgument(
                f"stored agent definition is not JSON: {exc}", reason="BAD_DEFINITION"
            ) from None
        if not isinstance(data, dict):
            raise InvalidArgument(
                "stored agent definition is not an object", reason="BAD_DEFINITION"
            )
        return cls.from_dict(data)


def to_json_value(value: ast.Expr | ast.Section) -> JSONValue:
    """A DSL value as JSON: literals as themselves, lists, records and sections as objects,
    durations and names as their text, anything else as its DSL text."""
    match value:
        case ast.StringLit(value=text):
            return text
        case ast.NumberLit(value=number):
            return number
        case ast.BoolLit(value=flag):
            return flag
        case ast.Unary(op="-", operand=ast.NumberLit(value=number)):
            return -number
        case ast.NameLit(id="null" | "None"):
            return None
        case ast.ArrayLit(items=items):
            return [
                {i.name: to_json_value(i.value)}
                if isinstance(i, ast.NamedValue)
                else to_json_value(i)
                for i in items
            ]
        case ast.SetLit(items=items):
            return [to_json_value(i) for i in items]
        case ast.RecordLit(fields=fields) | ast.StructLit(fields=fields):
            return {f.key: to_json_value(f.value) for f in fields}
        case ast.Section(entries=entries):
            out: dict[str, JSONValue] = {}
            for entry in entries:
                if isinstance(entry, ast.Setting):
                    out[entry.key] = to_json_value(entry.value)
                else:
                    out.setdefault("policies", []).append(entry.name)
            return out
        case ast.VaultRef(path=path):
            return f"vault://{path}"
    return format_expr(value)
