"""``symbi dsl``: check, format and compile agent definitions offline.

``check`` accepts DSL files (``.symbi``, ``.dsl``) and agent configs (``.toml``, ``.yaml``);
``fmt`` rewrites DSL files in canonical form; ``cedar`` prints the Cedar an agent's policy
blocks compile to.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from symbi_common.dsl import (
    DslError,
    Severity,
    check_source,
    format_of,
    format_source,
    load_agents,
)
from symbi_common.dsl.policy_compiler import PolicyCompiler
from symbi_common.errors import InvalidArgument

app = typer.Typer(
    help="Agent definitions: check DSL files and TOML/YAML configs, format DSL, print Cedar.",
    no_args_is_help=True,
)

# Exit codes: 0 ok, 1 a file has errors (or, for fmt --check, would change), 2 bad usage.
_FAILED = 1
_BAD_INPUT = 2


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(f"{path}: error: cannot read: {exc}", err=True)
        return None


@app.command()
def check(
    files: Annotated[list[Path], typer.Argument(help="DSL files or TOML/YAML agent configs.")],
    strict: Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print diagnostics as JSON lines.")
    ] = False,
    no_runtime_guards: Annotated[
        bool,
        typer.Option(
            "--no-runtime-guards",
            help="Refuse policy guards the policy engine cannot decide (see ADR 0040).",
        ),
    ] = False,
) -> None:
    """Parse, validate and compile each FILE; print every problem as FILE:LINE:COL."""
    compiler = PolicyCompiler(runtime_guards=not no_runtime_guards)
    failed = False
    errors = warnings = 0
    for path in files:
        text = _read(path)
        if text is None:
            failed = True
            errors += 1
            continue
        diagnostics = check_source(text, file=str(path), compiler=compiler)
        for d in diagnostics:
            if as_json:
                typer.echo(json.dumps(d.to_dict(), sort_keys=True))
            else:
                typer.echo(str(d))
            if d.severity is Severity.ERROR:
                errors += 1
            else:
                warnings += 1
        if any(d.severity is Severity.ERROR or strict for d in diagnostics):
            failed = True
    if not as_json:
        typer.echo(
            f"checked {len(files)} file{'s' if len(files) != 1 else ''}: "
            f"{errors} error{'s' if errors != 1 else ''}, "
            f"{warnings} warning{'s' if warnings != 1 else ''}",
            err=True,
        )
    if failed:
        raise typer.Exit(_FAILED)


@app.command()
def fmt(
    files: Annotated[list[Path], typer.Argument(help="DSL files to format in place.")],
    check_only: Annotated[
        bool,
        typer.Option("--check", help="Change nothing; exit 1 if any file is not formatted."),
    ] = False,
) -> None:
    """Rewrite each DSL FILE in canonical form (comments kept; a file that does not parse is
    left untouched and reported)."""
    failed = False
    for path in files:
        if format_of(str(path)) != "dsl":
            typer.echo(f"{path}: skipped: not a DSL file", err=True)
            continue
        text = _read(path)
        if text is None:
            failed = True
            continue
        try:
            formatted = format_source(text, file=str(path))
        except DslError as exc:
            for d in exc.diagnostics:
                typer.echo(str(d), err=True)
            failed = True
            continue
        if formatted == text:
            continue
        if check_only:
            typer.echo(f"would reformat {path}")
            failed = True
        else:
            path.write_text(formatted, encoding="utf-8")
            typer.echo(f"reformatted {path}")
    if failed:
        raise typer.Exit(_FAILED)


@app.command()
def cedar(
    file: Annotated[Path, typer.Argument(help="A DSL file or agent config.")],
    agent: Annotated[
        str | None, typer.Option("--agent", help="The agent to print (default: all).")
    ] = None,
) -> None:
    """Print the Cedar policies each agent's policy blocks compile to."""
    text = _read(file)
    if text is None:
        raise typer.Exit(_BAD_INPUT)
    try:
        definitions = load_agents(text, file=str(file))
    except DslError as exc:
        for d in exc.diagnostics:
            typer.echo(str(d), err=True)
        raise typer.Exit(_FAILED) from None
    except InvalidArgument as exc:
        typer.echo(f"{file}: error: {exc.message}", err=True)
        raise typer.Exit(_FAILED) from None
    chosen = [d for d in definitions if agent is None or d.name == agent]
    if not chosen:
        typer.echo(f"{file}: no agent {agent!r}", err=True)
        raise typer.Exit(_BAD_INPUT)
    for definition in chosen:
        sys.stdout.write(f"// agent {definition.name}: document {definition.cedar.document}\n")
        sys.stdout.write(definition.cedar.text)
        for guard in definition.cedar.runtime_guards:
            sys.stdout.write(
                f"// runtime guard {guard.rule_id}: {guard.expression} "
                f"(reported as {guard.true_tag} / {guard.false_tag})\n"
            )
