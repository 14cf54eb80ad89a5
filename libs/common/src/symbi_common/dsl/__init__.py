"""The agent DSL: parser, formatter, validation, agent definitions and the policy compiler.

Typical use::

    from symbi_common.dsl import load_agent, PolicyCompiler

    definition = load_agent(text, file="researcher.symbi")   # validated, Cedar compiled
    definition.cedar.text          # Cedar policies scoped to Symbi::Agent::"researcher"
    definition.to_json()           # what the lifecycle service stores

Lower level: ``parse`` (text → :class:`Program`), ``format_program`` / ``format_source``,
``PolicyCompiler.compile``, ``check_source`` (diagnostics for the CLI).
"""

from symbi_common.dsl import ast
from symbi_common.dsl.definition import (
    AgentDefinition,
    Integration,
    Parameter,
    PolicySpec,
    SourceFormat,
)
from symbi_common.dsl.diagnostics import (
    Diagnostic,
    DslError,
    DslSyntaxError,
    DslValidationError,
    Severity,
)
from symbi_common.dsl.formatter import format_expr, format_program, format_source
from symbi_common.dsl.guard import GUARD_TAG_PREFIX
from symbi_common.dsl.parser import parse, parse_expression, parse_rule, parse_type
from symbi_common.dsl.policy_compiler import (
    CompiledPolicy,
    CompiledPolicySet,
    Obligation,
    PolicyCompiler,
    RuntimeGuard,
)
from symbi_common.dsl.resources import ResourceBounds, ResourceLimits, SandboxTier
from symbi_common.dsl.source import (
    check_source,
    format_of,
    load_agent,
    load_agents,
    parse_source,
)
from symbi_common.dsl.validation import ValidationRules, build_definitions

__all__ = [
    "GUARD_TAG_PREFIX",
    "AgentDefinition",
    "CompiledPolicy",
    "CompiledPolicySet",
    "Diagnostic",
    "DslError",
    "DslSyntaxError",
    "DslValidationError",
    "Integration",
    "Obligation",
    "Parameter",
    "PolicyCompiler",
    "PolicySpec",
    "ResourceBounds",
    "ResourceLimits",
    "RuntimeGuard",
    "SandboxTier",
    "Severity",
    "SourceFormat",
    "ValidationRules",
    "ast",
    "build_definitions",
    "check_source",
    "format_expr",
    "format_of",
    "format_program",
    "format_source",
    "load_agent",
    "load_agents",
    "parse",
    "parse_expression",
    "parse_rule",
    "parse_source",
    "parse_type",
]
