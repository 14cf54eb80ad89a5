"""Argument summaries for policy rules, and the token authenticator."""

from __future__ import annotations

import json

from symbi_mcp_gateway import PolicyDecision, StaticTokenAuthenticator, summarize_arguments
from symbi_mcp_gateway.policy import MAX_SUMMARY_CHARS, Decision


def test_summary_keeps_scalars_and_sizes_the_rest() -> None:
    text = summarize_arguments(
        {
            "path": "/repo",
            "n": 3,
            "flag": True,
            "none": None,
            "items": [1, 2],
            "obj": {"a": 1},
            "long": "x" * 500,
        }
    )
    summary = json.loads(text)
    assert summary["path"] == "/repo"
    assert summary["n"] == 3
    assert summary["flag"] is True
    assert summary["none"] is None
    assert summary["items"] == "<array of 2>"
    assert summary["obj"] == "<object with 1 keys>"
    assert summary["long"].startswith("x" * 128)
    assert "+372 chars" in summary["long"]


def test_summary_is_deterministic_and_bounded() -> None:
    args = {f"k{i}": "v" * 100 for i in range(50)}
    assert summarize_arguments(args) == summarize_arguments(dict(reversed(list(args.items()))))
    assert len(summarize_arguments(args)) <= MAX_SUMMARY_CHARS


def test_decision_helpers() -> None:
    assert PolicyDecision.allow().decision is Decision.ALLOW
    assert PolicyDecision.allow("audit_full").decision is Decision.ALLOW_WITH_CONDITIONS
    assert not PolicyDecision.deny("no").allowed


async def test_static_tokens() -> None:
    auth = StaticTokenAuthenticator({"tok-a": "agent-a", "tok-b": "agent-b"})
    assert await auth.authenticate("tok-b") == "agent-b"
    assert await auth.authenticate("tok-c") is None
    assert await auth.authenticate("") is None
