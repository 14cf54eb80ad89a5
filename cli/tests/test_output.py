"""What the command areas share to show things: times, styled states, messages as JSON and the
one-line error."""

from __future__ import annotations

import io
import json

import typer
from rich.console import Console

from symbi.common.v1 import common_pb2
from symbi_cli.output import BAD_INPUT, fail, message_dict, message_json, styled, when


def test_when_is_utc_to_the_second_and_a_dash_for_never() -> None:
    assert when(0) == "-"
    assert when(1_700_000_000_999) == "2023-11-14 22:13:20"


def test_styled_uses_the_state_style_or_none() -> None:
    styles = {"RUNNING": "bold green"}
    assert styled("RUNNING", styles) == "[bold green]RUNNING[/]"
    assert styled("QUEUED", styles) == "QUEUED"


def test_messages_keep_the_proto_field_names() -> None:
    info = common_pb2.ErrorInfo(reason="NO_LEADER", message="é")
    assert message_dict(info) == {"reason": "NO_LEADER", "message": "é"}
    assert message_dict(info, with_defaults=True)["retryable"] is False
    assert json.loads(message_json(info)) == {"reason": "NO_LEADER", "message": "é"}
    assert "é" in message_json(info)
    assert "\\u00e9" in message_json(info, ascii_only=True)
    assert message_json(info, sort_keys=True).index("message") < message_json(
        info, sort_keys=True
    ).index("reason")


def test_fail_prints_the_message_as_text_and_returns_the_exit() -> None:
    stderr = io.StringIO()
    console = Console(file=stderr, width=400, highlight=False)
    exit_ = fail("--tag [bold] is not a tag", console=console)
    assert isinstance(exit_, typer.Exit)
    assert exit_.exit_code == BAD_INPUT
    assert stderr.getvalue() == "error: --tag [bold] is not a tag\n"
