"""DSL ``policy`` blocks → Cedar policies scoped to one agent (ADR 0040).

Every compiled policy has ``principal == Symbi::Agent::"<agent id>"``:

* ``allow:`` → ``permit`` for each action it names (verbs map to schema actions where one
  fits, else to ``use_capability`` with ``context.capability``); the ``if`` guard becomes a
  ``when`` clause, or a runtime guard (:mod:`symbi_common.dsl.guard`).
* ``deny:`` → ``forbid`` with ``@reason``.
* ``require:`` and ``audit:`` → conditions (``@condition("require_approval")``,
  ``"rate_limit:N/U"``, ``"audit_full"``) on the block's permits; a requirement that is a
  predicate (``session.mfa_verified == true``) → ``forbid ... unless`` it holds; other
  settings (``tls_verification: true``) → obligations for the runtime, not Cedar.

The output is validated against the shared schema with ``cedarpy.validate_policies``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

import cedarpy

from symbi_common.cedar import schema_text
from symbi_common.dsl import ast
from symbi_common.dsl.diagnostics import Diagnostic, DslValidationError, Severity
from symbi_common.dsl.formatter import format_expr
from symbi_common.dsl.guard import (
    GuardError,
    cedar_string,
    guard_tag,
    impurity,
    to_cedar,
)
from symbi_common.errors import InvalidArgument

__all__ = [
    "AGENT_ID_PATTERN",
    "VERBS",
    "WILDCARDS",
    "CompiledPolicy",
    "CompiledPolicySet",
    "Obligation",
    "PolicyCompiler",
    "RuntimeGuard",
    "VerbMapping",
    "default_compiler",
]

#: What an agent id (the principal's entity id) may look like.
AGENT_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True)
class VerbMapping:
    """Where a DSL verb lands in Cedar.

    ``action`` is the schema action; ``attribute`` is how a literal argument constrains the
    request: a context attribute (``destination``, ``path``, ``tool``, ``target``) or
    ``resource:<EntityType>``; ``mode`` pins ``context.mode`` (file access).
    """

    action: str
    attribute: str = "target"
    mode: str | None = None


def _verbs(action: str, names: str, **kw: str) -> dict[str, VerbMapping]:
    return {name: VerbMapping(action, **kw) for name in names.split()}


#: DSL verbs with a dedicated schema action. Others become ``use_capability``.
VERBS: dict[str, VerbMapping] = {
    **_verbs(
        "network",
        "network network_access http http_request https_request fetch egress connect "
        "internet web_access api_access",
        attribute="destination",
    ),
    **_verbs("file_access", "file_access filesystem files", attribute="path"),
    **_verbs("file_access", "read_file read_files file_read", attribute="path", mode="read"),
    **_verbs(
        "file_access",
        "write_file write_files file_write write_output",
        attribute="path",
        mode="write",
    ),
    **_verbs(
        "tool_call",
        "tool tools tool_call invoke invoke_tool use_tool call call_tool mcp",
        attribute="tool",
    ),
    **_verbs("send_message", "send send_message message messaging", attribute="resource:Agent"),
    **_verbs("publish", "publish broadcast emit publish_alert", attribute="resource:Topic"),
    **_verbs("subscribe", "subscribe listen", attribute="resource:Topic"),
    **_verbs(
        "read_context",
        "read read_data read_context memory_read read_memory recall retrieve",
        attribute="resource:Dataset",
    ),
    **_verbs(
        "write_context",
        "write write_data write_context memory_write write_memory store remember persist",
        attribute="resource:Dataset",
    ),
    **_verbs("share_context", "share share_context share_memory", attribute="resource:Dataset"),
    **_verbs("execute", "execute execute_code exec run_code spawn spawn_process shell"),
    **_verbs("schedule", "schedule"),
    **_verbs("allocate", "allocate"),
    **_verbs("create_agent", "create_agent spawn_agent"),
    **_verbs("modify_agent", "modify_agent"),
}

#: Verbs that mean "every action".
WILDCARDS: frozenset[str] = frozenset(
    {"all", "any", "*", "all_operations", "all_actions", "everything"}
)
#: Arguments that mean "any target".
_ANY_ARGUMENT = frozenset({"any", "all", "*", "_", "anything"})

_CONDITION_KEYS_APPROVAL = re.compile(r"approval")
_RATE_KEYS = frozenset({"rate_limit", "rate_limiting", "rate", "max_rate"})
_AUDIT_KEYS = frozenset({"audit", "audit_trail", "audit_log", "audit_full", "full_audit"})
_RATE = re.compile(
    r"\s*([1-9][0-9]{0,8})\s*(?:/|per\s+)\s*(s|sec|secs|second|seconds|m|min|mins|minute|"
    r"minutes|h|hr|hrs|hour|hours|d|day|days)\s*"
)
_RATE_UNITS = {
    "s": "s",
    "se": "s",
    "m": "m",
    "mi": "m",
    "h": "h",
    "hr": "h",
    "ho": "h",
    "d": "d",
    "da": "d",
}

_Polarity = Literal["assert_true", "unless_false"]


@dataclass(frozen=True, slots=True)
class RuntimeGuard:
    """A guard the DSL runtime evaluates, reporting ``true_tag`` or ``false_tag``.

    The runtime adds exactly one of the two tags to ``context.tags`` of each request it
    makes for the agent; with neither, the compiled policies fail closed.
    """

    rule_id: str
    expression: str
    true_tag: str
    false_tag: str
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Obligation:
    """A ``require:`` or ``audit:`` setting for the runtime (``tls_verification = true``)."""

    policy: str
    kind: str  # require | audit
    key: str
    value: str  # DSL text of the value


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """One Cedar policy compiled from one DSL rule."""

    id: str
    effect: Literal["permit", "forbid"]
    text: str
    policy: str
    rule_kind: str
    line: int
    column: int
    conditions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CompiledPolicySet:
    """An agent's DSL policies in Cedar, validated against the schema."""

    agent_id: str
    policies: tuple[CompiledPolicy, ...]
    runtime_guards: tuple[RuntimeGuard, ...] = ()
    obligations: tuple[Obligation, ...] = ()
    warnings: tuple[Diagnostic, ...] = field(default=(), compare=False)

    @property
    def document(self) -> str:
        """The policy-store document name for this agent's compiled policies."""
        return f"agents/{self.agent_id}"

    @property
    def text(self) -> str:
        """The whole Cedar document (empty when the agent has no policies)."""
        return "\n\n".join(p.text for p in self.policies) + ("\n" if self.policies else "")


@dataclass(frozen=True, slots=True)
class _Target:
    """One action a rule names, resolved."""

    action: str | None  # None: every action
    capability: str | None = None
    constraints: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Guard:
    kind: Literal["cedar", "runtime"]
    text: str  # Cedar condition, or the rule id of a runtime guard

    def clauses(self, polarity: _Polarity) -> list[str]:
        if self.kind == "cedar":
            return [f"when {{ {self.text} }}"]
        if polarity == "assert_true":
            return [f"when {{ {_has_tag(guard_tag(self.text, True))} }}"]
        return [f"unless {{ {_has_tag(guard_tag(self.text, False))} }}"]

    def requirement(self) -> list[str]:
        """Clauses of ``forbid ... unless <this holds>``."""
        if self.kind == "cedar":
            return [f"unless {{ {self.text} }}"]
        return [f"unless {{ {_has_tag(guard_tag(self.text, True))} }}"]


def _has_tag(tag: str) -> str:
    return f"context has tags && context.tags.contains({cedar_string(tag)})"


@dataclass(frozen=True, slots=True)
class _Requirement:
    """A ``require:`` predicate: the block's actions are forbidden unless ``holds``."""

    expr: ast.Expr
    holds: _Guard
    rule_guard: _Guard | None
    rule: ast.PolicyRule
    policy_id: str


_NEVER = object()  # a guard that is constantly false


class _Problems:
    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[Diagnostic] = []

    def error(self, node: ast.Node, message: str, hint: str = "") -> None:
        self.items.append(
            Diagnostic(self.file, node.pos.line, node.pos.column, message, hint, code="policy")
        )

    def warn(self, node: ast.Node, message: str, hint: str = "") -> None:
        self.items.append(
            Diagnostic(
                self.file,
                node.pos.line,
                node.pos.column,
                message,
                hint,
                Severity.WARNING,
                code="policy",
            )
        )

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.ERROR]


class PolicyCompiler:
    """Compiles an agent's policy blocks to Cedar and validates them against the schema."""

    def __init__(self, schema: str | None = None, *, runtime_guards: bool = True) -> None:
        """``schema``: Cedar schema text (default: Symbi's). ``runtime_guards=False`` refuses
        guards the engine cannot decide instead of handing them to the DSL runtime."""
        self._schema = cedarpy.Schema.from_str(schema if schema is not None else schema_text())
        self._runtime_guards = runtime_guards

    def compile(
        self,
        agent_id: str,
        policies: Sequence[ast.PolicyDef],
        *,
        file: str = "<string>",
        shadowed: Iterable[str] = (),
    ) -> CompiledPolicySet:
        """Cedar policies for ``policies``, all scoped to ``agent_id``.

        ``shadowed`` are the agent's parameter names (they are agent data in guards, even if
        called ``request``). Raises DslValidationError listing every rule that cannot be
        compiled, with positions; warnings come back in the result.
        """
        if AGENT_ID_PATTERN.fullmatch(agent_id) is None:
            raise InvalidArgument(
                f"invalid agent id {agent_id!r}: use 1-64 characters from letters, digits "
                "and _ . -, starting with a letter or digit",
                reason="INVALID_AGENT_ID",
            )
        problems = _Problems(file)
        run = _AgentRun(agent_id, frozenset(shadowed), problems, self._runtime_guards)
        seen: dict[str, ast.PolicyDef] = {}
        for policy in policies:
            if policy.name in seen:
                first = seen[policy.name].pos
                problems.error(
                    policy,
                    f"policy `{policy.name}` is defined twice for agent `{agent_id}`",
                    f"the first definition is at line {first.line}; rename one of them",
                )
                continue
            seen[policy.name] = policy
            run.block(policy)
        if problems.errors:
            raise DslValidationError(problems.items)
        compiled = CompiledPolicySet(
            agent_id,
            tuple(run.policies),
            tuple(run.guards),
            tuple(run.obligations),
            tuple(problems.items),
        )
        self._validate(compiled, problems)
        return compiled

    def _validate(self, compiled: CompiledPolicySet, problems: _Problems) -> None:
        if not compiled.policies:
            return
        result = cedarpy.validate_policies(compiled.text, self._schema)
        if result.validation_passed:
            return
        for error in result.errors:
            index = int(re.sub(r"\D", "", str(error.policy_id)) or 0)
            policy = compiled.policies[min(index, len(compiled.policies) - 1)]
            problems.items.append(
                Diagnostic(
                    problems.file,
                    policy.line,
                    policy.column,
                    f"the Cedar compiled from this rule does not validate against the "
                    f"schema: {error.error}",
                    f"compiled policy {policy.id}",
                    code="policy",
                )
            )
        raise DslValidationError(problems.items)


@cache
def default_compiler() -> PolicyCompiler:
    """A compiler for the shared schema, built once (parsing the schema costs milliseconds)."""
    return PolicyCompiler()


class _AgentRun:
    """Compilation state for one agent."""

    def __init__(
        self,
        agent_id: str,
        shadowed: frozenset[str],
        problems: _Problems,
        runtime_guards: bool = True,
    ) -> None:
        self.agent_id = agent_id
        self.runtime_guards = runtime_guards
        self.shadowed = shadowed
        self.problems = problems
        self.principal = f"Symbi::Agent::{cedar_string(agent_id)}"
        self.policies: list[CompiledPolicy] = []
        self.guards: list[RuntimeGuard] = []
        self.obligations: list[Obligation] = []

    # -------------------------------------------------------------- ids
    def rule_id(self, policy: str, index: int) -> str:
        base = f"agent/{self.agent_id}/{policy}"
        if len(base) > 110:
            digest = hashlib.sha256(policy.encode()).hexdigest()[:12]
            base = f"agent/{self.agent_id}/{digest}"
        return f"{base}/{index}"

    # -------------------------------------------------------------- guards
    def guard(
        self, rule: ast.PolicyRule, expr: ast.Expr | None, rule_id: str
    ) -> _Guard | object | None:
        if expr is None:
            return None
        if isinstance(expr, ast.BoolLit):
            return None if expr.value else _NEVER
        bad = impurity(expr)
        if bad is not None:
            self.problems.error(bad.node, bad.message, bad.hint)
            return None
        try:
            text = to_cedar(expr, self.shadowed)
        except GuardError as exc:
            self.problems.error(exc.node, exc.message, exc.hint)
            return None
        if text is not None:
            return _Guard("cedar", text)
        if not self.runtime_guards:
            self.problems.error(
                expr,
                f"this guard reads values the policy engine does not see (`{format_expr(expr)}`)",
                "decide on `request.<attribute>` or `principal.<attribute>`, or allow runtime "
                "guards (ADR 0040)",
            )
            return None
        self.guards.append(
            RuntimeGuard(
                rule_id,
                format_expr(expr),
                guard_tag(rule_id, True),
                guard_tag(rule_id, False),
                expr.pos.line,
                expr.pos.column,
            )
        )
        return _Guard("runtime", rule_id)

    # -------------------------------------------------------------- blocks
    def block(self, policy: ast.PolicyDef) -> None:
        conditions: list[str] = []
        conditional: list[tuple[str, _Guard, ast.PolicyRule]] = []
        requirements: list[_Requirement] = []
        # Conditions first: they ride on every permit of the block, whatever the rule order.
        for index, rule in enumerate(policy.rules, start=1):
            if rule.kind in ("require", "audit"):
                rule_id = self.rule_id(policy.name, index)
                self.requirement_rule(policy, rule, rule_id, conditions, conditional, requirements)
        allowed_actions: set[str] = set()
        for index, rule in enumerate(policy.rules, start=1):
            rule_id = self.rule_id(policy.name, index)
            if rule.kind == "allow":
                allowed_actions |= self.allow_rule(policy, rule, rule_id, conditions, conditional)
            elif rule.kind == "deny":
                self.deny_rule(policy, rule, rule_id)
        for requirement in requirements:
            self.requirement_forbid(policy, requirement, allowed_actions)

    def head(self, effect: str, actions: Sequence[str] | None) -> str:
        if not actions:
            action = "action"
        elif len(actions) == 1:
            action = f'action == Symbi::Action::"{actions[0]}"'
        else:
            action = "action in [" + ", ".join(f'Symbi::Action::"{a}"' for a in actions) + "]"
        return f"{effect}(\n    principal == {self.principal},\n    {action},\n    resource\n)"

    def emit(
        self,
        *,
        policy_id: str,
        effect: Literal["permit", "forbid"],
        policy: ast.PolicyDef,
        rule: ast.PolicyRule,
        head: str,
        clauses: Sequence[str],
        conditions: Sequence[str] = (),
        reason: str | None = None,
    ) -> None:
        notes = [f"@id({cedar_string(policy_id)})"]
        if conditions:
            notes.append(f"@condition({cedar_string(','.join(conditions))})")
        if reason is not None:
            notes.append(f"@reason({cedar_string(reason)})")
        notes.append(f"@dsl({cedar_string(f'policy {policy.name}, line {rule.pos.line}')})")
        body = head + "".join(f"\n{c}" for c in clauses) + ";"
        self.policies.append(
            CompiledPolicy(
                policy_id,
                effect,
                "\n".join(notes) + "\n" + body,
                policy.name,
                rule.kind,
                rule.pos.line,
                rule.pos.column,
                tuple(conditions),
            )
        )

    # -------------------------------------------------------------- allow / deny
    def allow_rule(
        self,
        policy: ast.PolicyDef,
        rule: ast.PolicyRule,
        rule_id: str,
        conditions: Sequence[str],
        conditional: Sequence[tuple[str, _Guard, ast.PolicyRule]],
    ) -> set[str]:
        if rule.scope is not None:
            self.problems.error(
                rule.scope,
                "`for ... on ...` cannot be expressed for an allow rule",
                'name the target as the action\'s argument: `allow: read("dataset")`',
            )
            return set()
        if rule.modifier is not None:
            self.problems.warn(rule.modifier, "`with ...` has no meaning on an allow rule; ignored")
        guard = self.guard(rule, rule.condition, rule_id)
        if guard is _NEVER:
            self.problems.warn(rule, "this rule's guard is always false; it grants nothing")
            return set()
        targets = self.targets(rule.action, allow=True)
        groups = _group(targets)
        actions: set[str] = set()
        for k, (group_actions, constraints) in enumerate(groups, start=1):
            pid = rule_id if len(groups) == 1 else f"{rule_id}.{k}"
            actions |= set(group_actions or ())
            clauses = [f"when {{ {c} }}" for c in constraints]
            if isinstance(guard, _Guard):
                clauses += guard.clauses("assert_true")
            head = self.head("permit", group_actions)
            self.emit(
                policy_id=pid,
                effect="permit",
                policy=policy,
                rule=rule,
                head=head,
                clauses=clauses,
                conditions=conditions,
            )
            # A condition with its own guard rides on a copy of the permit that applies only
            # while that guard is not known to be false.
            for j, (condition, cguard, _crule) in enumerate(conditional, start=1):
                self.emit(
                    policy_id=f"{pid}.c{j}",
                    effect="permit",
                    policy=policy,
                    rule=rule,
                    head=head,
                    clauses=clauses + cguard.clauses("unless_false"),
                    conditions=[condition],
                )
        return actions

    def deny_rule(self, policy: ast.PolicyDef, rule: ast.PolicyRule, rule_id: str) -> None:
        if rule.modifier is not None:
            self.problems.warn(rule.modifier, "`with ...` has no meaning on a deny rule; ignored")
        if rule.scope is not None:
            self.problems.warn(
                rule.scope,
                "`for ... on ...` cannot be expressed in Cedar; the deny applies to every target",
            )
        guard = self.guard(rule, rule.condition, rule_id)
        if guard is _NEVER:
            self.problems.warn(rule, "this rule's guard is always false; it denies nothing")
            return
        targets = self.targets(rule.action, allow=False)
        groups = _group(targets)
        text = format_expr(rule.action)
        reason = f"denied by policy {policy.name} of agent {self.agent_id}: deny {text}"
        if rule.condition is not None:
            reason += f" if {format_expr(rule.condition)}"
        for k, (group_actions, constraints) in enumerate(groups, start=1):
            clauses = [f"when {{ {c} }}" for c in constraints]
            if isinstance(guard, _Guard):
                clauses += guard.clauses("unless_false")
            self.emit(
                policy_id=rule_id if len(groups) == 1 else f"{rule_id}.{k}",
                effect="forbid",
                policy=policy,
                rule=rule,
                head=self.head("forbid", group_actions),
                clauses=clauses,
                reason=reason[:300],
            )

    # -------------------------------------------------------------- require / audit
    def requirement_rule(
        self,
        policy: ast.PolicyDef,
        rule: ast.PolicyRule,
        rule_id: str,
        conditions: list[str],
        conditional: list[tuple[str, _Guard, ast.PolicyRule]],
        requirements: list[_Requirement],
    ) -> None:
        if rule.scope is not None:
            self.problems.warn(
                rule.scope,
                "`for ... on ...` cannot be expressed in Cedar; the requirement applies to "
                "every action the block allows",
            )
        guard = self.guard(rule, rule.condition, rule_id)
        if guard is _NEVER:
            self.problems.warn(rule, "this rule's guard is always false; it requires nothing")
            return
        rule_guard = guard if isinstance(guard, _Guard) else None

        def add(condition: str) -> None:
            if rule_guard is None:
                if condition not in conditions:
                    conditions.append(condition)
            else:
                conditional.append((condition, rule_guard, rule))

        if rule.kind == "audit":
            add("audit_full")
            for key, value in _settings(rule.action):
                self.obligations.append(Obligation(policy.name, "audit", key, value))
            if rule.modifier is not None:
                self.obligations.append(
                    Obligation(policy.name, "audit", "with", format_expr(rule.modifier))
                )
            return

        for k, item in enumerate(_items(rule.action), start=1):
            if isinstance(item, ast.NamedValue | ast.Field):
                key = item.name if isinstance(item, ast.NamedValue) else item.key
                condition = self.setting_condition(item, key, item.value)
                if condition:
                    add(condition)
                elif condition is None:
                    self.obligations.append(
                        Obligation(policy.name, "require", key, format_expr(item.value))
                    )
                continue
            word = _word(item.func) if isinstance(item, ast.Call) else _word(item)
            if word is not None and _CONDITION_KEYS_APPROVAL.search(word):
                add("require_approval")
                continue
            if isinstance(item, ast.Call) and word in _RATE_KEYS and item.args:
                arg = item.args[0]
                condition = self.setting_condition(
                    item, "rate_limit", arg.value if isinstance(arg, ast.NamedValue) else arg
                )
                if condition:
                    add(condition)
                continue
            if word is not None and word in _AUDIT_KEYS:
                add("audit_full")
                continue
            # Anything else is a predicate that must hold for the block's actions.
            pid = f"{rule_id}.p{k}"
            requirement = self.guard(rule, item, pid)
            if requirement is _NEVER:
                self.problems.error(item, "this requirement can never hold")
                continue
            if isinstance(requirement, _Guard):
                requirements.append(_Requirement(item, requirement, rule_guard, rule, pid))

    def setting_condition(self, node: ast.Node, key: str, value: ast.Expr) -> str | None:
        """The condition a ``key: value`` requirement sets; '' for none; None for a setting."""
        if _CONDITION_KEYS_APPROVAL.search(key):
            return "require_approval" if _truthy(value) else ""
        if key in _AUDIT_KEYS:
            return "audit_full" if _truthy(value) else ""
        if key in _RATE_KEYS:
            text = value.value if isinstance(value, ast.StringLit) else None
            match = _RATE.fullmatch(text) if text is not None else None
            if match is None:
                self.problems.error(
                    value,
                    f"cannot read the rate limit {format_expr(value)}",
                    'write it as "N/unit" with a unit of second, minute, hour or day '
                    '(e.g. "100/minute")',
                )
                return ""
            unit = match.group(2)
            short = _RATE_UNITS.get(unit[:2], _RATE_UNITS.get(unit[:1], "m"))
            return f"rate_limit:{match.group(1)}/{short}"
        return None

    def requirement_forbid(
        self, policy: ast.PolicyDef, requirement: _Requirement, allowed: set[str]
    ) -> None:
        """``forbid ... unless <requirement>`` over the actions the block allows."""
        clauses = requirement.rule_guard.clauses("unless_false") if requirement.rule_guard else []
        clauses += requirement.holds.requirement()
        self.emit(
            policy_id=requirement.policy_id,
            effect="forbid",
            policy=policy,
            rule=requirement.rule,
            head=self.head("forbid", sorted(allowed) or None),
            clauses=clauses,
            reason=(
                f"requirement of policy {policy.name} not met: {format_expr(requirement.expr)}"
            )[:300],
        )

    # -------------------------------------------------------------- actions
    def targets(self, action: ast.Expr, *, allow: bool) -> list[_Target]:
        out: list[_Target] = []
        for item in _items(action):
            if isinstance(item, ast.NamedValue | ast.Field):
                self.problems.error(item, "an action list holds verbs, not settings")
                continue
            target = self.target(item, allow=allow)
            if target is not None:
                out.append(target)
        if not out and not self.problems.errors:
            self.problems.error(action, "this rule names no action")
        return out

    def target(self, item: ast.Expr, *, allow: bool) -> _Target | None:
        verb: str | None
        args: tuple[ast.Expr | ast.NamedValue, ...] = ()
        if isinstance(item, ast.Call):
            verb = _word(item.func)
            args = item.args
        else:
            verb = _word(item)
        if verb is None:
            self.problems.error(
                item,
                'a policy rule names actions: a verb (`network`), a string (`"read_data"`), '
                "a call (`read(data)`) or a list of these",
            )
            return None
        if verb in WILDCARDS:
            return _Target(None)
        mapping = VERBS.get(verb)
        action = mapping.action if mapping else "use_capability"
        attribute = mapping.attribute if mapping else "target"
        constraints: list[str] = []
        if mapping is not None and mapping.mode is not None:
            constraints.append(f'context has mode && context.mode == "{mapping.mode}"')
        arg_constraint = self.arguments(item, args, attribute, allow=allow)
        if arg_constraint is False:
            return None
        if isinstance(arg_constraint, str):
            constraints.append(arg_constraint)
        capability = verb if mapping is None else None
        return _Target(action, capability, tuple(constraints))

    def arguments(
        self,
        call: ast.Expr,
        args: Sequence[ast.Expr | ast.NamedValue],
        attribute: str,
        *,
        allow: bool,
    ) -> str | bool | None:
        """A Cedar constraint for the arguments, None for none, False after an error."""
        alternatives: list[str] = []
        for arg in args:
            if isinstance(arg, ast.NamedValue):
                self.problems.error(arg, "an action's arguments cannot be named")
                return False
            if isinstance(arg, ast.StringLit):
                if arg.value in _ANY_ARGUMENT:
                    return None
                alternatives.append(_literal_constraint(attribute, arg.value))
                continue
            name = _dotted(arg)
            if name is None:
                self.problems.error(
                    arg,
                    "an action's argument must be a name, a dotted name or a string",
                    'e.g. `allow: network("api.example.com")` or `deny: write(records)`',
                )
                return False
            if name in _ANY_ARGUMENT:
                return None
            if not allow:
                # A name is a value only the running agent knows; a deny covers every target
                # rather than none (fail closed).
                return None
            alternatives.append(f"context has target && context.target == {cedar_string(name)}")
        if not alternatives:
            return None
        if len(alternatives) == 1:
            return alternatives[0]
        return "(" + " || ".join(f"({a})" for a in alternatives) + ")"


def _literal_constraint(attribute: str, value: str) -> str:
    if attribute.startswith("resource:"):
        kind = attribute.split(":", 1)[1]
        if kind == "Topic" and value.startswith("topic://"):
            value = value[len("topic://") :]
        return f"resource == Symbi::{kind}::{cedar_string(value)}"
    if attribute == "destination" and "://" in value:
        value = value.split("://", 1)[1].split("/", 1)[0]
    if "*" in value and attribute in ("destination", "path", "tool", "target"):
        pattern = cedar_string(value)[1:-1]
        return f'context has {attribute} && context.{attribute} like "{pattern}"'
    return f"context has {attribute} && context.{attribute} == {cedar_string(value)}"


def _group(targets: Sequence[_Target]) -> list[tuple[tuple[str, ...] | None, tuple[str, ...]]]:
    """Targets merged into as few policies as possible: (actions or None for all, constraints)."""
    if any(t.action is None and not t.constraints for t in targets):
        return [(None, ())]
    plain = sorted(
        {t.action for t in targets if t.action and not t.capability and not t.constraints}
    )
    caps = sorted({t.capability for t in targets if t.capability and not t.constraints})
    out: list[tuple[tuple[str, ...] | None, tuple[str, ...]]] = []
    if plain:
        out.append((tuple(plain), ()))
    if caps:
        names = ", ".join(cedar_string(c) for c in caps)
        out.append(
            (
                ("use_capability",),
                (f"context has capability && [{names}].contains(context.capability)",),
            )
        )
    for t in targets:
        if t.constraints:
            extra = t.constraints
            if t.capability:
                cap = cedar_string(t.capability)
                extra = (f"context has capability && context.capability == {cap}", *extra)
            out.append(((t.action,) if t.action else None, extra))
    return out


def _items(action: ast.Expr) -> tuple[ast.Expr | ast.NamedValue | ast.Field, ...]:
    if isinstance(action, ast.ArrayLit):
        return action.items
    if isinstance(action, ast.RecordLit):
        return action.fields
    return (action,)


def _word(e: ast.Expr | ast.NamedValue) -> str | None:
    match e:
        case ast.StringLit(value=value):
            return value.strip()
        case ast.NameLit(id=name):
            return name
        case ast.Path(parts=parts):
            return "::".join(parts)
    return None


def _dotted(e: ast.Expr) -> str | None:
    match e:
        case ast.NameLit(id=name):
            return name
        case ast.Member(obj=obj, name=name):
            base = _dotted(obj)
            return f"{base}.{name}" if base is not None else None
    return None


def _truthy(value: ast.Expr) -> bool:
    match value:
        case ast.BoolLit(value=flag):
            return flag
        case ast.StringLit(value=text):
            return text.strip().lower() not in ("", "false", "no", "none", "off", "0")
        case ast.NumberLit(value=number):
            return number != 0
    return True


def _settings(action: ast.Expr) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for item in _items(action):
        if isinstance(item, ast.Field):
            out.append((item.key, format_expr(item.value)))
        elif isinstance(item, ast.NamedValue):
            out.append((item.name, format_expr(item.value)))
        else:
            out.append(("scope", format_expr(item)))
    return out
