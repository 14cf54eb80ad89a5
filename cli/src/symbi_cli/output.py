"""What a command shows: the consoles, the one-line error, exit codes, times, states and
protobuf messages as JSON.

Exit codes shared by the areas: 0 ok, :data:`REFUSED` (the service or a check said no),
:data:`BAD_INPUT` (bad usage or input), :data:`UNREACHABLE` (the service cannot be reached).
Each area's docstring says which of them it uses for what.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping
from typing import Any

import typer
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = [
    "BAD_INPUT",
    "REFUSED",
    "UNREACHABLE",
    "echo_json",
    "err",
    "error",
    "fail",
    "fields",
    "folded_err",
    "folded_out",
    "message_dict",
    "message_json",
    "out",
    "styled",
    "when",
]

REFUSED = 1
BAD_INPUT = 2
UNREACHABLE = 3

#: Standard output and error that never fold a long line (it stays one line when piped).
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
#: Standard output and error that fold long lines at the terminal's width.
folded_out = Console(highlight=False)
folded_err = Console(stderr=True, highlight=False)


def error(message: str, *, console: Console = err) -> None:
    """Print ``error: <message>`` (the message is text, not markup)."""
    console.print(f"[bold red]error:[/] {escape(message)}")


def fail(message: str, code: int = BAD_INPUT, *, console: Console = err) -> typer.Exit:
    """Print ``message`` as an error; the Exit to raise with ``code``."""
    error(message, console=console)
    return typer.Exit(code)


def fields(rows: Iterable[tuple[str, str]]) -> Table:
    """A two-column grid of ``(name, value)`` rows, names in bold (one record's fields)."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for name, value in rows:
        table.add_row(name, value)
    return table


def when(ms: int) -> str:
    """Milliseconds since the epoch as a UTC time to the second; ``-`` for 0 (never)."""
    if not ms:
        return "-"
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def styled(state: str, styles: Mapping[str, str]) -> str:
    """``state`` as markup in its style from ``styles`` (plain when it has none)."""
    style = styles.get(state)
    return f"[{style}]{state}[/]" if style else state


def message_dict(message: Message, *, with_defaults: bool = False) -> dict[str, Any]:
    """A message as a dict with the proto field names; ``with_defaults`` adds the fields that
    hold their default value."""
    result: dict[str, Any] = MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=with_defaults,
    )
    return result


def message_json(message: Message, *, sort_keys: bool = False, ascii_only: bool = False) -> str:
    """A message as indented JSON with the proto field names."""
    return json.dumps(message_dict(message), indent=2, sort_keys=sort_keys, ensure_ascii=ascii_only)


def echo_json(message: Message) -> None:
    """Print a message as JSON on standard output, as it is (no markup, no folding)."""
    typer.echo(message_json(message))
