"""``symbi policy``: Cedar policies offline (validate, eval); push and list need the service."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from symbi_common.errors import InvalidArgument
from symbi_policy import AuthzRequest, PolicyValidationError, decision_to_dict
from symbi_policy.offline import offline_engine, validate_files

app = typer.Typer(
    help="Cedar policies: validate files and evaluate requests offline.",
    no_args_is_help=True,
)

# Exit codes: 0 ok, 1 policies invalid, 2 bad usage or input.
_INVALID = 1
_BAD_INPUT = 2


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Cedar policy files to check.")],
) -> None:
    """Check policy files against Symbi's schema; print every problem as FILE:LINE:COL."""
    ok, problems = validate_files(files)
    for path, document in ok:
        typer.echo(f"ok: {path} ({len(document.policies)} policies)")
    for problem in problems:
        typer.echo(str(problem), err=True)
    if problems:
        raise typer.Exit(_INVALID)


@app.command("eval")
def evaluate(
    policies: Annotated[
        Path, typer.Option("--policies", help="Directory of *.cedar files (searched recursively).")
    ],
    request: Annotated[
        str,
        typer.Option(
            "--request",
            help='The request as JSON, or @FILE: {"principal": "Agent::\\"a\\"", '
            '"action": "publish", "resource": "Topic::\\"t\\"", "context": {}}',
        ),
    ],
    entities: Annotated[
        Path | None, typer.Option("--entities", help="Cedar entities JSON file.")
    ] = None,
) -> None:
    """Decide one request against a policy directory; print the decision as JSON."""
    try:
        raw = Path(request[1:]).read_text(encoding="utf-8") if request.startswith("@") else request
        parsed = AuthzRequest.from_mapping(json.loads(raw))
        engine = offline_engine(policies, entities)
    except PolicyValidationError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(_INVALID) from None
    except (InvalidArgument, ValueError, OSError) as exc:
        message = exc.message if isinstance(exc, InvalidArgument) else str(exc)
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(_BAD_INPUT) from None
    decision = engine.evaluate(parsed)
    json.dump(decision_to_dict(decision), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
