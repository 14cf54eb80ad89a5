"""What the gateway tells the audit log and the operators.

:class:`AuditEvent` mirrors ``symbi.bus.v1.AuditEvent`` field for field, so the wiring phase
converts without interpretation. :class:`SecurityAlert` is the smaller, louder signal for
things an operator must look at (a rug pull, a changed or revoked key, a server speaking
garbage); every alert is also audited.

Event types (``event_type``) the gateway emits:

========================== ============================================================
``mcp.tool_call``          every call, allowed or refused (``decision``, ``outcome``)
``mcp.tool.pinned``        a tool accepted for the first time; its key/definition pinned
``mcp.tool.updated``       a signed update of an accepted tool (pin moved forward)
``mcp.tool.rejected``      a tool hidden: unsigned (strict), invalid signature, revoked key
``mcp.tool.quarantined``   a definition or key changed without a valid signature
``mcp.tool.approved``      an operator approved a quarantined tool
``mcp.tool.removed``       a tool the server no longer lists
``mcp.tool.warning``       development/permissive mode accepted something strict refuses
``mcp.pin.removed``        an operator removed a pin
``mcp.server.connected``   a session opened (and its tools were re-verified)
``mcp.server.disconnected``a session ended (crash, timeout, protocol violation)
``mcp.server.protocol_violation`` malformed JSON-RPC or an oversized message
``mcp.server.tools_changed`` a server announced a tool-list change; rediscovered
``mcp.approval.requested`` a ``require_approval`` call was refused; an approval is pending
``mcp.approval.approved`` / ``.denied``  an operator decided an approval (``actor``)
``mcp.approval.consumed``  the approved call ran (once)
========================== ============================================================
"""

from __future__ import annotations

import enum
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "GATEWAY_ACTOR",
    "AlertKind",
    "AuditEvent",
    "Detail",
    "SecurityAlert",
]

#: The ``actor`` of events the gateway decides on its own.
GATEWAY_ACTOR = "mcp-gateway"

#: Values an event's details may hold (they become a protobuf Struct).
Detail = str | int | float | bool | None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _freeze(details: Mapping[str, Detail]) -> Mapping[str, Detail]:
    return MappingProxyType(dict(details))


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audit record (see the module docstring for the event types)."""

    event_type: str
    actor: str = GATEWAY_ACTOR
    agent_id: str = ""
    #: ``allow`` | ``deny`` | ``conditional`` for decisions; "" otherwise.
    decision: str = ""
    details: Mapping[str, Detail] = field(default_factory=dict)
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timestamp_ms: int = field(default_factory=_now_ms)

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", _freeze(self.details))


class AlertKind(enum.StrEnum):
    """Why an operator is being alerted."""

    #: A tool's definition changed without a valid new signature.
    RUG_PULL = "rug_pull"
    #: A tool is now signed by a key other than the pinned one.
    KEY_CHANGED = "key_changed"
    #: The key that signs (or was pinned for) a tool is revoked.
    KEY_REVOKED = "key_revoked"
    #: A server sent malformed JSON-RPC or an oversized message.
    PROTOCOL_VIOLATION = "protocol_violation"
    #: A call that policy allows only with a human approval is waiting for one.
    APPROVAL_REQUIRED = "approval_required"


@dataclass(frozen=True, slots=True)
class SecurityAlert:
    """Something an operator must look at; calls to the tool are already refused."""

    kind: AlertKind
    server: str
    message: str
    tool: str = ""
    details: Mapping[str, Detail] = field(default_factory=dict)
    timestamp_ms: int = field(default_factory=_now_ms)

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", _freeze(self.details))
