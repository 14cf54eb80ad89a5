"""Parsed program → validated :class:`AgentDefinition` objects, or diagnostics saying why not.

Checks: capability names (well formed, not repeated, and in the catalog when one is given);
resource limits (memory, CPU, timeout) parsed and in range; the sandbox tier is one Symbi runs
(Tier1/docker, Tier2/gvisor — Firecracker, E2B and others are refused); policy blocks compile
to Cedar that validates against the schema; webhook secrets are vault references; schedules
have a readable cron expression.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from symbi_common.dsl import ast
from symbi_common.dsl.definition import (
    AgentDefinition,
    Integration,
    JSONValue,
    Parameter,
    PolicySpec,
    SourceFormat,
    to_json_value,
)
from symbi_common.dsl.diagnostics import Diagnostic, DslError, DslValidationError, Severity
from symbi_common.dsl.formatter import format_expr
from symbi_common.dsl.policy_compiler import (
    AGENT_ID_PATTERN,
    CompiledPolicySet,
    PolicyCompiler,
    default_compiler,
)
from symbi_common.dsl.resources import (
    ResourceBounds,
    ResourceLimits,
    SandboxTier,
    parse_cpu_millicores,
    parse_duration_ms,
    parse_duration_text,
    parse_memory_mb,
    tier_from_name,
)

__all__ = ["CAPABILITY_PATTERN", "ValidationRules", "build_definitions"]

#: What a capability name may look like.
CAPABILITY_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}")

_MEMORY_KEYS = {"max_memory_mb": "mb", "memory_mb": "mb", "memory_limit_mb": "mb"}
_MEMORY_SIZE_KEYS = frozenset({"memory_limit", "max_memory"})
_CPU_KEYS = {"max_cpu_cores": "cores", "cpu_cores": "cores", "cpus": "cores", "cpu_millicores": "m"}
_CPU_TEXT_KEYS = frozenset({"cpu", "cpu_limit", "max_cpu"})
_TIMEOUT_KEYS = {
    "timeout": "ms",
    "timeout_ms": "ms",
    "max_runtime": "ms",
    "max_duration": "ms",
    "timeout_s": "s",
    "timeout_seconds": "s",
}
_SANDBOX_KEYS = frozenset({"sandbox", "sandbox_tier", "tier", "isolation"})
_MEMORY_MODES = frozenset({"ephemeral", "persistent", "encrypted", "shared", "none"})
_MEMORY_SIZE = re.compile(r"\s*[0-9][0-9_.]*\s*([kmgt]i?b?|b)?\s*", re.I)


@dataclass(frozen=True, slots=True)
class ValidationRules:
    """What validation accepts: resource ranges, the default tier, a capability catalog."""

    bounds: ResourceBounds = field(default_factory=ResourceBounds)
    #: Tier of agents whose definition names none (the runtime's ``default_sandbox_tier``).
    default_tier: SandboxTier = SandboxTier.GVISOR
    #: When set, capability names must be in it.
    capabilities: frozenset[str] | None = None


class _Report:
    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[Diagnostic] = []

    def error(
        self, at: ast.Node | ast.Pos, message: str, hint: str = "", code: str = "definition"
    ) -> None:
        pos = at if isinstance(at, ast.Pos) else at.pos
        self.items.append(Diagnostic(self.file, pos.line, pos.column, message, hint, code=code))

    def warn(self, node: ast.Node, message: str, hint: str = "", code: str = "definition") -> None:
        self.items.append(
            Diagnostic(
                self.file, node.pos.line, node.pos.column, message, hint, Severity.WARNING, code
            )
        )

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.items.extend(diagnostics)

    @property
    def failed(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)


def build_definitions(
    program: ast.Program,
    *,
    file: str = "<string>",
    rules: ValidationRules | None = None,
    compiler: PolicyCompiler | None = None,
    source_format: SourceFormat = "dsl",
    agent_ids: dict[str, str] | None = None,
) -> tuple[list[AgentDefinition], list[Diagnostic]]:
    """Every agent of ``program`` validated, plus all diagnostics (warnings included).

    Definitions are returned only for agents without errors. ``agent_ids`` maps agent names
    to the ids to use as Cedar principals (default: the name).
    """
    rules = rules or ValidationRules()
    compiler = compiler or default_compiler()
    report = _Report(file)
    top_policies = [i for i in program.items if isinstance(i, ast.PolicyDef)]
    sections = [i for i in program.items if isinstance(i, ast.SectionDef)]
    metadata = _metadata(program, report)
    agents = program.agents()
    names = {a.name for a in agents}
    for section in sections:
        _check_section(section, names, report)

    seen: dict[str, ast.AgentDef] = {}
    definitions: list[AgentDefinition] = []
    for agent in agents:
        if agent.name in seen:
            report.error(
                agent,
                f"agent `{agent.name}` is defined twice",
                f"the first definition is at line {seen[agent.name].pos.line}",
            )
            continue
        seen[agent.name] = agent
        before = len(report.items)
        agent_id = (agent_ids or {}).get(agent.name, agent.name)
        definition = _agent(
            agent,
            agent_id,
            program=program,
            top_policies=top_policies,
            sections=sections,
            metadata=metadata,
            single=len(agents) == 1,
            rules=rules,
            compiler=compiler,
            report=report,
            file=file,
            source_format=source_format,
        )
        own_errors = any(d.severity is Severity.ERROR for d in report.items[before:])
        if definition is not None and not own_errors:
            definitions.append(definition)

    if not agents and top_policies:
        # A policy library: make sure it compiles, for an example agent.
        try:
            result = compiler.compile("example", top_policies, file=file)
            report.extend(result.warnings)
        except DslError as exc:
            report.extend(exc.diagnostics)
    return definitions, report.items


def _metadata(program: ast.Program, report: _Report) -> dict[str, JSONValue]:
    out: dict[str, JSONValue] = {}
    for block in program.items:
        if not isinstance(block, ast.Metadata):
            continue
        for entry in block.entries:
            if isinstance(entry, ast.Setting):
                out[entry.key] = to_json_value(entry.value)
    executor = out.get("executor")
    if executor is not None and str(executor) == "claude_code" and not out.get("allowed_tools"):
        node = next(i for i in program.items if isinstance(i, ast.Metadata))
        report.error(
            node,
            'metadata `executor = "claude_code"` needs `allowed_tools`',
            'list the tools the subprocess may use, e.g. allowed_tools = "Read,Grep,Glob"',
        )
    return out


def _check_section(section: ast.SectionDef, agents: set[str], report: _Report) -> None:
    settings = {e.key: e for e in section.entries if isinstance(e, ast.Setting)}
    target = settings.get("agent")
    if target is not None and not isinstance(target.value, ast.Section):
        name = to_json_value(target.value)
        if isinstance(name, str) and name not in agents and agents:
            report.warn(
                target,
                f"{section.KEYWORD} refers to agent `{name}`, which this file does not define",
            )
    if isinstance(section, ast.ScheduleDef):
        cron = settings.get("cron")
        if cron is None:
            report.error(section, "a schedule needs a `cron` expression", 'e.g. cron = "0 9 * * *"')
        elif (
            not isinstance(cron.value, ast.StringLit) or not 5 <= len(cron.value.value.split()) <= 7
        ):
            report.error(
                cron,
                f"cannot read the cron expression {format_expr(cron.value)}"
                if not isinstance(cron.value, ast.Section)
                else "cron must be a string",
                "write 5 fields (minute hour day month weekday), or 6-7 with seconds and year",
            )
    if isinstance(section, ast.WebhookDef):
        path = settings.get("path")
        if path is not None and (
            not isinstance(path.value, ast.StringLit) or not path.value.value.startswith("/")
        ):
            report.error(path, "a webhook path is a string starting with `/`")
        secret = settings.get("secret")
        if secret is not None and not isinstance(secret.value, ast.VaultRef):
            value = secret.value
            if not (isinstance(value, ast.StringLit) and value.value.startswith("vault://")):
                report.error(
                    secret,
                    "a webhook secret must be a vault:// reference, not the secret itself",
                    'e.g. secret "vault://webhooks/github/secret"',
                )


def _attached(section: ast.SectionDef, agent: str, single: bool) -> bool:
    for entry in section.entries:
        if isinstance(entry, ast.Setting) and entry.key == "agent":
            if isinstance(entry.value, ast.Section):
                return False
            return bool(to_json_value(entry.value) == agent)
    # Blocks that name no agent belong to every agent of the file (memory stores, channels),
    # except schedules and webhooks, which trigger one agent and need it named when ambiguous.
    return single or not isinstance(section, ast.ScheduleDef | ast.WebhookDef)


def _agent(
    agent: ast.AgentDef,
    agent_id: str,
    *,
    program: ast.Program,
    top_policies: Sequence[ast.PolicyDef],
    sections: Sequence[ast.SectionDef],
    metadata: dict[str, JSONValue],
    single: bool,
    rules: ValidationRules,
    compiler: PolicyCompiler,
    report: _Report,
    file: str,
    source_format: SourceFormat,
) -> AgentDefinition | None:
    if AGENT_ID_PATTERN.fullmatch(agent_id) is None:
        report.error(
            agent,
            f"`{agent_id}` cannot be an agent id",
            "agent ids use letters, digits and _ . -, starting with a letter or digit",
        )
        return None
    capabilities = _capabilities(agent, rules, report)
    attrs = _with_attributes(agent, report)
    resources, sandbox, execution = _execution(attrs, rules, report)

    attached = [s for s in sections if _attached(s, agent.name, single)]
    policies = [i for i in agent.items if isinstance(i, ast.PolicyDef)]
    policies += top_policies
    for section in attached:
        if isinstance(section, ast.ChannelDef):
            policies += [e for e in section.entries if isinstance(e, ast.PolicyDef)]
    params = tuple(agent.params or ())
    cedar: CompiledPolicySet | None = None
    try:
        cedar = compiler.compile(agent_id, policies, file=file, shadowed={p.name for p in params})
        report.extend(cedar.warnings)
    except DslError as exc:
        report.extend(exc.diagnostics)
    if cedar is not None:
        _cross_check_tier(cedar, sandbox, agent, report)
    if cedar is None or resources is None or sandbox is None:
        return None
    return AgentDefinition(
        id=agent_id,
        name=agent.name,
        params=tuple(Parameter(p.name, _type_text(p.type)) for p in params),
        returns=_type_text(agent.returns) if agent.returns is not None else None,
        capabilities=capabilities,
        policies=tuple(PolicySpec(p.name, tuple(_rule_text(r) for r in p.rules)) for p in policies),
        cedar=cedar,
        resources=resources,
        sandbox=sandbox,
        execution=execution,
        metadata=metadata,
        integrations=tuple(
            Integration(
                s.KEYWORD,  # type: ignore[arg-type]
                s.name,
                _section_settings(s),
            )
            for s in attached
        ),
        source=program.source,
        source_format=source_format,
        source_file=file,
    )


def _type_text(t: ast.TypeRef) -> str:
    if not t.args:
        return t.name
    return f"{t.name}<{', '.join(_type_text(a) for a in t.args)}>"


def _rule_text(rule: ast.PolicyRule) -> str:
    text = f"{rule.kind}: {format_expr(rule.action)}"
    if rule.modifier is not None:
        text += f" with {format_expr(rule.modifier)}"
    if rule.scope is not None:
        text += f" for {format_expr(rule.scope)}"
    if rule.scope_target is not None:
        text += f" on {format_expr(rule.scope_target)}"
    if rule.condition is not None:
        text += f" if {format_expr(rule.condition)}"
    return text


def _section_settings(section: ast.SectionDef) -> dict[str, JSONValue]:
    value = to_json_value(ast.Section(section.entries))
    assert isinstance(value, dict)
    return value


def _capabilities(agent: ast.AgentDef, rules: ValidationRules, report: _Report) -> tuple[str, ...]:
    blocks = [i for i in agent.items if isinstance(i, ast.Capabilities)]
    for extra in blocks[1:]:
        report.error(
            extra,
            "capabilities are declared more than once",
            f"merge them into the declaration at line {blocks[0].pos.line}",
        )
    names: list[str] = []
    for block in blocks[:1]:
        positions = block.name_pos if len(block.name_pos) == len(block.names) else None
        for i, name in enumerate(block.names):
            where: ast.Node | ast.Pos = positions[i] if positions else block
            if CAPABILITY_PATTERN.fullmatch(name) is None:
                report.error(
                    where,
                    f"invalid capability name {name!r}",
                    "use 1-64 letters, digits and _ . : -, starting with a letter",
                    code="capability",
                )
            elif name in names:
                report.error(where, f"capability `{name}` is listed twice", code="capability")
            elif rules.capabilities is not None and name not in rules.capabilities:
                close = difflib.get_close_matches(name, sorted(rules.capabilities), n=3)
                hint = "did you mean " + ", ".join(f"`{c}`" for c in close) + "?" if close else ""
                report.error(where, f"unknown capability `{name}`", hint, code="capability")
            else:
                names.append(name)
    return tuple(names)


def _with_attributes(agent: ast.AgentDef, report: _Report) -> dict[str, ast.WithAttr]:
    attrs: dict[str, ast.WithAttr] = {}
    for block in agent.items:
        if not isinstance(block, ast.WithBlock):
            continue
        for attr in block.attrs:
            previous = attrs.get(attr.name)
            if previous is not None and previous.value != attr.value:
                report.error(
                    attr,
                    f"`{attr.name}` is set twice with different values",
                    f"the first is at line {previous.pos.line}",
                )
                continue
            attrs[attr.name] = attr
    return attrs


def _execution(
    attrs: dict[str, ast.WithAttr], rules: ValidationRules, report: _Report
) -> tuple[ResourceLimits | None, SandboxTier | None, dict[str, JSONValue]]:
    bounds = rules.bounds
    memory = cpu = timeout = None
    sandbox: SandboxTier | None = rules.default_tier
    execution: dict[str, JSONValue] = {}
    ok = True

    for name, attr in attrs.items():
        value = attr.value
        try:
            if name in _SANDBOX_KEYS and value is not None:
                sandbox = _tier(value)
            elif (
                name in _MEMORY_KEYS
                or name in _MEMORY_SIZE_KEYS
                or (name == "memory" and value is not None and _is_size(value))
            ):
                memory = _memory(name, value)
            elif name in _CPU_KEYS or name in _CPU_TEXT_KEYS:
                cpu = _cpu(name, value)
            elif name in _TIMEOUT_KEYS:
                timeout = _timeout(name, value)
            else:
                execution[name] = True if value is None else to_json_value(value)
                if name == "memory" and isinstance(value, ast.StringLit | ast.NameLit):
                    mode = value.value if isinstance(value, ast.StringLit) else value.id
                    if mode not in _MEMORY_MODES:
                        report.warn(
                            attr,
                            f"unknown memory mode {mode!r}",
                            "known modes: " + ", ".join(sorted(_MEMORY_MODES)),
                        )
        except ValueError as exc:
            code = "sandbox-tier" if name in _SANDBOX_KEYS else "resource-limit"
            report.error(attr, f"`{name}`: {exc}", code=code)
            ok = False
            if name in _SANDBOX_KEYS:
                sandbox = None

    limits = bounds.default
    memory_mb = limits.memory_mb if memory is None else memory
    cpu_m = limits.cpu_millicores if cpu is None else cpu
    timeout_ms = limits.timeout_ms if timeout is None else timeout
    checks: list[tuple[str, int, int, int, str, frozenset[str]]] = [
        (
            "memory",
            memory_mb,
            bounds.min_memory_mb,
            bounds.max_memory_mb,
            "MiB",
            frozenset(_MEMORY_KEYS) | _MEMORY_SIZE_KEYS | {"memory"},
        ),
        (
            "CPU",
            cpu_m,
            bounds.min_cpu_millicores,
            bounds.max_cpu_millicores,
            "millicores",
            frozenset(_CPU_KEYS) | _CPU_TEXT_KEYS,
        ),
        (
            "timeout",
            timeout_ms,
            bounds.min_timeout_ms,
            bounds.max_timeout_ms,
            "ms",
            frozenset(_TIMEOUT_KEYS),
        ),
    ]
    for label, amount, low, high, unit, keys in checks:
        if low <= amount <= high:
            continue
        culprit = next((a for n, a in attrs.items() if n in keys), None)
        report.error(
            culprit if culprit is not None else ast.NO_POS,
            f"{label} limit {amount} {unit} is out of range",
            f"allowed: {low} to {high} {unit}",
            code="resource-limit",
        )
        ok = False
    if not ok:
        return None, sandbox, execution
    return ResourceLimits(memory_mb, cpu_m, timeout_ms), sandbox, execution


def _is_size(value: ast.Expr) -> bool:
    if isinstance(value, ast.NumberLit):
        return True
    return isinstance(value, ast.StringLit) and _MEMORY_SIZE.fullmatch(value.value) is not None


def _tier(value: ast.Expr) -> SandboxTier:
    if isinstance(value, ast.StringLit):
        return tier_from_name(value.value)
    if isinstance(value, ast.NameLit):
        return tier_from_name(value.id)
    raise ValueError(f"expected a tier name, got {format_expr(value)}; use Tier1 or Tier2")


def _number(value: ast.Expr | None) -> float | None:
    if isinstance(value, ast.NumberLit):
        return float(value.value)
    return None


def _memory(name: str, value: ast.Expr | None) -> int:
    number = _number(value)
    if number is not None:
        return round(number)
    if isinstance(value, ast.StringLit):
        return parse_memory_mb(value.value)
    raise ValueError(f'expected a size in MiB or text like "512MB", got {_show(value)}')


def _cpu(name: str, value: ast.Expr | None) -> int:
    number = _number(value)
    if number is not None:
        return round(number) if _CPU_KEYS.get(name) == "m" else round(number * 1000)
    if isinstance(value, ast.StringLit):
        return parse_cpu_millicores(value.value)
    raise ValueError(f'expected a number of cores or text like "500m", got {_show(value)}')


def _timeout(name: str, value: ast.Expr | None) -> int:
    unit = _TIMEOUT_KEYS[name]
    number = _number(value)
    if number is not None:
        return parse_duration_ms(number, unit)
    if isinstance(value, ast.DurationLit):
        return parse_duration_ms(float(value.amount), value.unit)
    if isinstance(value, ast.StringLit):
        return parse_duration_text(value.value, unit)
    raise ValueError(f'expected a duration like 30s or "5m", got {_show(value)}')


def _show(value: ast.Expr | None) -> str:
    return "nothing" if value is None else format_expr(value)


def _cross_check_tier(
    cedar: CompiledPolicySet, sandbox: SandboxTier | None, agent: ast.AgentDef, report: _Report
) -> None:
    for obligation in cedar.obligations:
        if obligation.key not in ("sandbox_tier", "sandbox") or sandbox is None:
            continue
        try:
            required = tier_from_name(obligation.value.strip('"'))
        except ValueError:
            continue
        if required is not sandbox and required is SandboxTier.GVISOR:
            report.error(
                agent,
                f"policy `{obligation.policy}` requires sandbox {required.tier_name} "
                f"but the agent runs in {sandbox.tier_name}",
                f'set sandbox = "{required.tier_name}" in its `with` block',
                code="sandbox-tier",
            )


def raise_for(diagnostics: Sequence[Diagnostic]) -> None:
    """Raise DslValidationError if any diagnostic is an error."""
    if any(d.severity is Severity.ERROR for d in diagnostics):
        raise DslValidationError(diagnostics)
