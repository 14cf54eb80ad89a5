"""Agent configs in TOML or YAML → the same syntax tree as DSL text (docs/dsl.md, "Config").

A config says declaratively what a DSL file says with blocks; policy rules are written in
DSL rule syntax, one string per rule. Unknown keys are errors, so a typo never silently
drops a limit or a rule. Shape (TOML; YAML has the same keys)::

    [metadata]
    version = "1.0.0"

    [agent]                       # or [[agents]] for several
    name = "researcher"
    params = { topic = "String" } # or ["topic: String"]
    returns = "Report"
    capabilities = ["web_search"]
    sandbox = "gvisor"            # Tier1 | docker | Tier2 | gvisor
    [agent.resources]
    memory = "512MB"              # or memory_mb = 512
    cpu = 1.5                     # cores, or "500m"
    timeout = "30s"               # or timeout_ms / timeout_s
    [agent.execution]             # other `with` attributes
    memory = "ephemeral"
    [[agent.policies]]
    name = "web"
    rules = ['allow: network("api.example.com")', "deny: execute_code"]

    [[schedules]]                 # also channels, memories, webhooks
    name = "nightly"
    agent = "researcher"
    cron = "0 2 * * *"
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from typing import Any

import yaml

from symbi_common.dsl import ast
from symbi_common.dsl.diagnostics import Diagnostic, DslSyntaxError
from symbi_common.dsl.parser import parse_rule, parse_type

__all__ = ["program_from_config"]

_AGENT_KEYS = frozenset(
    {"name", "params", "returns", "capabilities", "sandbox", "resources", "execution", "policies"}
)
_RESOURCE_KEYS = {
    "memory": "memory_limit",
    "memory_mb": "max_memory_mb",
    "cpu": "cpu",
    "cpu_cores": "max_cpu_cores",
    "cpu_millicores": "cpu_millicores",
    "timeout": "timeout",
    "timeout_ms": "timeout_ms",
    "timeout_s": "timeout_s",
}
_SECTIONS: dict[str, type[ast.SectionDef]] = {
    "schedules": ast.ScheduleDef,
    "channels": ast.ChannelDef,
    "memories": ast.MemoryDef,
    "webhooks": ast.WebhookDef,
}
_TOP_KEYS = frozenset({"metadata", "agent", "agents", *_SECTIONS})


class _ConfigError(Exception):
    def __init__(self, where: str, message: str, hint: str = "", at: str | None = None) -> None:
        super().__init__(message)
        self.where = where
        self.message = message
        self.hint = hint
        self.at = at  # text to look for in the file, to report a line


def program_from_config(text: str, *, file: str = "<string>", format: str = "toml") -> ast.Program:
    """The syntax tree a TOML or YAML agent config describes.

    Raises DslSyntaxError naming the key (and, where it can be found, the line) at fault.
    """
    try:
        data = _load(text, format)
        if not isinstance(data, dict):
            raise _ConfigError("", f"a {format.upper()} agent config is a table of keys")
        builder = _Builder(text, file)
        return builder.program(data)
    except _ConfigError as exc:
        line, column = _locate(text, exc.at or exc.where.rsplit(".", 1)[-1])
        where = f"`{exc.where}`: " if exc.where else ""
        raise DslSyntaxError(
            [Diagnostic(file, line, column, where + exc.message, exc.hint, code="config")]
        ) from None


def _load(text: str, format: str) -> Any:
    if format == "toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise _ConfigError("", f"not valid TOML: {exc}") from None
    if format == "yaml":
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise _ConfigError("", f"not valid YAML: {exc}") from None
    raise _ConfigError("", f"unknown config format {format!r}; use toml or yaml")


def _locate(text: str, needle: str) -> tuple[int, int]:
    if not needle:
        return 1, 1
    at = text.find(needle)
    if at < 0:
        return 0, 0
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1


def _check_keys(where: str, data: dict[str, Any], allowed: frozenset[str]) -> None:
    for key in data:
        if key not in allowed:
            raise _ConfigError(
                f"{where}.{key}" if where else key,
                f"unknown key `{key}`",
                "allowed: " + ", ".join(sorted(allowed)),
            )


class _Builder:
    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file

    def program(self, data: dict[str, Any]) -> ast.Program:
        _check_keys("", data, _TOP_KEYS)
        items: list[ast.Item | ast.SectionDef] = []
        if "metadata" in data:
            items.append(
                ast.Metadata(self.entries("metadata", self.table("metadata", data["metadata"])))
            )
        agents: list[Any] = []
        if "agent" in data:
            agents.append(self.table("agent", data["agent"]))
        if "agents" in data:
            agents += self.array("agents", data["agents"])
        for section, cls in _SECTIONS.items():
            if section in data:
                items += self.sections(section, cls, data[section])
        for i, agent in enumerate(agents):
            where = "agent" if "agent" in data and i == 0 else f"agents[{i}]"
            items.append(self.agent(where, self.table(where, agent)))
        return ast.Program(tuple(items), source=self.text)  # type: ignore[arg-type]

    # -------------------------------------------------------------- shapes
    def table(self, where: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _ConfigError(where, "expected a table")
        return value

    def array(self, where: str, value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise _ConfigError(where, "expected an array")
        return value

    def string(self, where: str, value: Any) -> str:
        if not isinstance(value, str):
            raise _ConfigError(where, "expected a string")
        return value

    # -------------------------------------------------------------- values
    def value(self, where: str, value: Any) -> ast.Expr:
        if isinstance(value, bool):
            return ast.BoolLit(value)
        if isinstance(value, int | float):
            return ast.NumberLit(value)
        if isinstance(value, str):
            return ast.StringLit(value)
        if isinstance(value, list):
            return ast.ArrayLit(tuple(self.value(f"{where}[{i}]", v) for i, v in enumerate(value)))
        if isinstance(value, dict):
            return ast.RecordLit(
                tuple(
                    ast.Field(str(k), self.value(f"{where}.{k}", v), quoted=True)
                    for k, v in value.items()
                )
            )
        if value is None:
            return ast.NameLit("null")
        raise _ConfigError(where, f"unsupported value {value!r}")

    def entries(self, where: str, data: dict[str, Any]) -> tuple[ast.Setting, ...]:
        out: list[ast.Setting] = []
        for key, value in data.items():
            if isinstance(value, dict):
                out.append(
                    ast.Setting(str(key), ast.Section(self.entries(f"{where}.{key}", value)))
                )
            else:
                out.append(ast.Setting(str(key), self.value(f"{where}.{key}", value)))
        return tuple(out)

    def sections(self, where: str, cls: type[ast.SectionDef], value: Any) -> list[ast.SectionDef]:
        out: list[ast.SectionDef] = []
        if isinstance(value, dict):  # [memories.store] style: keyed by name
            for name, body in value.items():
                table = self.table(f"{where}.{name}", body)
                out.append(cls(str(name), self.entries(f"{where}.{name}", table)))
            return out
        for i, body in enumerate(self.array(where, value)):
            table = dict(self.table(f"{where}[{i}]", body))
            name = table.pop("name", None)
            if name is not None:
                name = self.string(f"{where}[{i}].name", name)
            out.append(cls(name, self.entries(f"{where}[{i}]", table)))
        return out

    # -------------------------------------------------------------- agents
    def agent(self, where: str, data: dict[str, Any]) -> ast.AgentDef:
        _check_keys(where, data, _AGENT_KEYS)
        if "name" not in data:
            raise _ConfigError(where, "an agent needs a `name`")
        name = self.string(f"{where}.name", data["name"])
        if not name.isidentifier():
            raise _ConfigError(f"{where}.name", f"{name!r} is not a valid agent name", at=name)
        items: list[ast.AgentItem] = []
        if "capabilities" in data:
            caps = self.array(f"{where}.capabilities", data["capabilities"])
            items.append(
                ast.Capabilities(
                    tuple(self.string(f"{where}.capabilities[{i}]", c) for i, c in enumerate(caps))
                )
            )
        for i, policy in enumerate(self.array(f"{where}.policies", data.get("policies", []))):
            items.append(
                self.policy(f"{where}.policies[{i}]", self.table(f"{where}.policies[{i}]", policy))
            )
        attrs: list[ast.WithAttr] = []
        if "sandbox" in data:
            attrs.append(ast.WithAttr("sandbox", self.value(f"{where}.sandbox", data["sandbox"])))
        resources = self.table(f"{where}.resources", data.get("resources", {}))
        _check_keys(f"{where}.resources", resources, frozenset(_RESOURCE_KEYS))
        for key, value in resources.items():
            attrs.append(
                ast.WithAttr(_RESOURCE_KEYS[key], self.value(f"{where}.resources.{key}", value))
            )
        execution = self.table(f"{where}.execution", data.get("execution", {}))
        for key, value in execution.items():
            attrs.append(ast.WithAttr(str(key), self.value(f"{where}.execution.{key}", value)))
        if attrs:
            items.append(ast.WithBlock(tuple(attrs), ast.Block()))
        params = self.params(f"{where}.params", data["params"]) if "params" in data else None
        returns = None
        if "returns" in data:
            returns = self.type(
                f"{where}.returns", self.string(f"{where}.returns", data["returns"])
            )
        return ast.AgentDef(name, tuple(items), params, returns)

    def params(self, where: str, value: Any) -> tuple[ast.Param, ...]:
        out: list[ast.Param] = []
        if isinstance(value, dict):
            for name, type_ in value.items():
                out.append(
                    ast.Param(
                        str(name),
                        self.type(f"{where}.{name}", self.string(f"{where}.{name}", type_)),
                    )
                )
            return tuple(out)
        for i, item in enumerate(self.array(where, value)):
            text = self.string(f"{where}[{i}]", item)
            name, sep, type_ = text.partition(":")
            if not sep or not name.strip().isidentifier():
                raise _ConfigError(f"{where}[{i}]", f"expected `name: Type`, got {text!r}", at=text)
            out.append(ast.Param(name.strip(), self.type(f"{where}[{i}]", type_.strip())))
        return tuple(out)

    def type(self, where: str, text: str) -> ast.TypeRef:
        type_ = self.parsed(where, text, parse_type)
        assert isinstance(type_, ast.TypeRef)
        return type_

    def policy(self, where: str, data: dict[str, Any]) -> ast.PolicyDef:
        _check_keys(where, data, frozenset({"name", "rules"}))
        name = self.string(f"{where}.name", data.get("name"))
        if not name.isidentifier():
            raise _ConfigError(f"{where}.name", f"{name!r} is not a valid policy name", at=name)
        rules = self.array(f"{where}.rules", data.get("rules", []))
        parsed = [
            self.parsed(f"{where}.rules[{i}]", self.string(f"{where}.rules[{i}]", r), parse_rule)
            for i, r in enumerate(rules)
        ]
        return ast.PolicyDef(name, tuple(parsed))

    def parsed(self, where: str, text: str, parse: Callable[..., Any]) -> Any:
        try:
            return parse(text, file=self.file)
        except DslSyntaxError as exc:
            line, column = _locate(self.text, text)
            diags = [
                Diagnostic(
                    self.file,
                    line or d.line,
                    (column + d.column - 1) if line and d.line == 1 else d.column,
                    f"`{where}`: {d.message}",
                    d.hint,
                    code="config",
                )
                for d in exc.diagnostics
            ]
            raise DslSyntaxError(diags) from None
