"""Symbi's Cedar vocabulary: the schema every policy is validated against.

The schema file ``symbi.cedarschema`` is the contract between the policy service (which
evaluates policies) and the DSL compiler (which emits them for agents' ``policy`` blocks).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

__all__ = ["ACTIONS", "ENTITY_TYPES", "NAMESPACE", "schema_text"]

NAMESPACE = "Symbi"

#: Every action in the schema, by its Cedar id (``Symbi::Action::"<id>"``).
ACTIONS: frozenset[str] = frozenset(
    {
        "create_agent",
        "modify_agent",
        "schedule",
        "allocate",
        "execute",
        "tool_call",
        "send_message",
        "publish",
        "subscribe",
        "read_context",
        "write_context",
        "share_context",
        "network",
        "file_access",
        "modify_policy",
        "read_audit",
        "read_policy",
        "administer",
        "use_capability",
    }
)

#: Every entity type in the schema (``Symbi::<Type>``).
ENTITY_TYPES: frozenset[str] = frozenset(
    {
        "Role",
        "User",
        "Service",
        "Agent",
        "Node",
        "McpServer",
        "Tool",
        "Topic",
        "Dataset",
        "Resource",
        "PolicyStore",
        "AuditLog",
    }
)


@cache
def schema_text() -> str:
    """The Cedar schema (human-readable syntax) shipped with this package."""
    return resources.files(__package__).joinpath("symbi.cedarschema").read_text(encoding="utf-8")
