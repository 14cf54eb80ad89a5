"""The policy question the gateway asks before every call, and the answer it expects.

The wiring phase maps :class:`ToolCallAuthorization` to a Cedar request of the Symbi schema:
principal ``Symbi::Agent::"<agent>"``, action ``tool_call``, resource
``Symbi::Tool::"<server>/<tool>"`` (parent ``Symbi::McpServer::"<server>"``), context
``{tool, server, args_summary}``. A listing question (which tools may this agent see) is the
same request without ``args_summary``.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_SUMMARY_CHARS",
    "Decision",
    "PolicyDecision",
    "ToolCallAuthorization",
    "summarize_arguments",
]

#: Longest argument summary sent to the policy engine.
MAX_SUMMARY_CHARS = 1024
_MAX_STRING_CHARS = 128


class Decision(enum.StrEnum):
    """The policy engine's verdict."""

    ALLOW = "allow"
    DENY = "deny"
    ALLOW_WITH_CONDITIONS = "conditional"


@dataclass(frozen=True, slots=True)
class ToolCallAuthorization:
    """May ``agent_id`` call ``tool`` on ``server`` (with these arguments)?"""

    agent_id: str
    server: str
    tool: str
    #: :func:`summarize_arguments` of the call; ``None`` when asking about visibility only.
    args_summary: str | None = None
    #: Facts about the tool a policy may test (``resource.verified``, ``McpServer.domain``).
    verified: bool = False
    domain: str | None = None
    trust_mode: str = ""

    @property
    def tool_id(self) -> str:
        """``<server>/<tool>``: the Cedar ``Symbi::Tool`` entity id."""
        return f"{self.server}/{self.tool}"


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """An answer. ``conditions`` come from ``@condition`` annotations of permitting policies."""

    decision: Decision
    reasons: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    policies: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        """Whether the call may proceed (conditions still apply)."""
        return self.decision is not Decision.DENY

    @classmethod
    def allow(cls, *conditions: str) -> PolicyDecision:
        """An allow (with conditions when given)."""
        kind = Decision.ALLOW_WITH_CONDITIONS if conditions else Decision.ALLOW
        return cls(kind, conditions=conditions)

    @classmethod
    def deny(cls, *reasons: str) -> PolicyDecision:
        """A deny with its reasons."""
        return cls(Decision.DENY, reasons=reasons)


def _summarize_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if len(value) <= _MAX_STRING_CHARS:
            return value
        return f"{value[:_MAX_STRING_CHARS]}…(+{len(value) - _MAX_STRING_CHARS} chars)"
    if isinstance(value, list | tuple):
        return f"<array of {len(value)}>"
    if isinstance(value, Mapping):
        return f"<object with {len(value)} keys>"
    return f"<{type(value).__name__}>"


def summarize_arguments(arguments: Mapping[str, Any]) -> str:
    """A short, deterministic JSON text describing a call's arguments, for policy rules.

    Top-level scalars are kept (strings cut at 128 characters) so rules can match paths or
    names; arrays and objects are reduced to their sizes. The whole text is capped at
    :data:`MAX_SUMMARY_CHARS` (docs/adr/0081-tool-trust-and-call-path.md).
    """
    summary = {str(key): _summarize_value(value) for key, value in arguments.items()}
    text = json.dumps(summary, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    if len(text) > MAX_SUMMARY_CHARS:
        text = text[: MAX_SUMMARY_CHARS - 1] + "…"
    return text
