"""Reading agent sources (DSL text, TOML or YAML configs) into validated definitions."""

from __future__ import annotations

from pathlib import PurePath

from symbi_common.dsl import ast
from symbi_common.dsl.config import program_from_config
from symbi_common.dsl.definition import AgentDefinition, SourceFormat
from symbi_common.dsl.diagnostics import Diagnostic, DslError, DslValidationError, Severity
from symbi_common.dsl.parser import parse
from symbi_common.dsl.policy_compiler import PolicyCompiler
from symbi_common.dsl.validation import ValidationRules, build_definitions
from symbi_common.errors import InvalidArgument

__all__ = ["check_source", "format_of", "load_agent", "load_agents", "parse_source"]

_EXTENSIONS: dict[str, SourceFormat] = {
    ".symbi": "dsl",
    ".dsl": "dsl",
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
}


def format_of(file: str) -> SourceFormat:
    """The source format a file name implies (DSL unless it ends in .toml, .yaml or .yml)."""
    return _EXTENSIONS.get(PurePath(file).suffix.lower(), "dsl")


def parse_source(
    text: str, *, file: str = "<string>", format: SourceFormat | None = None
) -> ast.Program:
    """The syntax tree of DSL text or of a TOML/YAML config; DslSyntaxError if malformed."""
    fmt = format or format_of(file)
    if fmt == "dsl":
        return parse(text, file=file)
    return program_from_config(text, file=file, format=fmt)


def load_agents(
    text: str,
    *,
    file: str = "<string>",
    format: SourceFormat | None = None,
    rules: ValidationRules | None = None,
    compiler: PolicyCompiler | None = None,
    agent_ids: dict[str, str] | None = None,
) -> tuple[AgentDefinition, ...]:
    """Every agent a source defines, validated.

    Raises DslSyntaxError or DslValidationError (both InvalidArgument) listing all problems.
    """
    fmt = format or format_of(file)
    program = parse_source(text, file=file, format=fmt)
    definitions, diagnostics = build_definitions(
        program, file=file, rules=rules, compiler=compiler, source_format=fmt, agent_ids=agent_ids
    )
    if any(d.severity is Severity.ERROR for d in diagnostics):
        raise DslValidationError(diagnostics)
    return tuple(definitions)


def load_agent(
    text: str,
    *,
    file: str = "<string>",
    format: SourceFormat | None = None,
    name: str | None = None,
    agent_id: str | None = None,
    rules: ValidationRules | None = None,
    compiler: PolicyCompiler | None = None,
) -> AgentDefinition:
    """The one agent a source defines (or the one called ``name``), validated.

    ``agent_id`` is the id used as its Cedar principal and store key (default: its name).
    """
    fmt = format or format_of(file)
    program = parse_source(text, file=file, format=fmt)
    agents = program.agents()
    if name is not None:
        agents = tuple(a for a in agents if a.name == name)
    if len(agents) != 1:
        names = ", ".join(a.name for a in program.agents()) or "none"
        if name is not None and not agents:
            message = f"this source defines no agent `{name}` (it defines: {names})"
        elif not agents:
            message = "this source defines no agent"
        else:
            message = f"this source defines {len(agents)} agents ({names}); say which one to load"
        raise DslValidationError([Diagnostic(file, 0, 0, message, code="definition")])
    chosen = agents[0]
    ids = {chosen.name: agent_id} if agent_id is not None else None
    definitions, diagnostics = build_definitions(
        program, file=file, rules=rules, compiler=compiler, source_format=fmt, agent_ids=ids
    )
    if any(d.severity is Severity.ERROR for d in diagnostics):
        raise DslValidationError(diagnostics)
    return next(d for d in definitions if d.name == chosen.name)


def check_source(
    text: str,
    *,
    file: str = "<string>",
    format: SourceFormat | None = None,
    rules: ValidationRules | None = None,
    compiler: PolicyCompiler | None = None,
) -> list[Diagnostic]:
    """Every diagnostic for a source (syntax, validation, policy; warnings too). Never raises
    for bad input: an empty list means the source is clean."""
    try:
        program = parse_source(text, file=file, format=format)
    except DslError as exc:
        return list(exc.diagnostics)
    except InvalidArgument as exc:  # e.g. the text is too large to parse
        return [Diagnostic(file, 0, 0, exc.message, code="source")]
    _, diagnostics = build_definitions(
        program,
        file=file,
        rules=rules,
        compiler=compiler,
        source_format=format or format_of(file),
    )
    return diagnostics
