"""A tool's definition as the gateway verifies, hashes and re-serves it.

A server's ``tools/list`` entry carries more than the model ever sees (icons, version-specific
fields, ``_meta``). The *tool document* is the part that shapes what an agent does with the
tool: ``name``, ``title``, ``description``, ``inputSchema``, ``outputSchema`` and
``annotations``, in their MCP wire spelling. The document is what a SchemaPin signature covers,
what the definition hash (rug-pull detection) covers, and the only part of a tool the gateway
passes on to agents, so nothing unsigned reaches them. The signature travels in the tool's
``_meta`` under :data:`SIGNATURE_META_KEY` (docs/adr/0080-tool-signature-transport.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schemapin import SchemaPinCore, SchemaSigningWorkflow

from symbi_common.errors import InvalidArgument

__all__ = [
    "DOCUMENT_FIELDS",
    "SIGNATURE_META_KEY",
    "ToolDefinition",
    "canonical_json",
    "sha256_digest",
    "sign_tool_document",
    "tool_document",
]

#: ``_meta`` key of a tool's SchemaPin signature: base64 ECDSA P-256 over the SHA-256 of the
#: canonical tool document.
SIGNATURE_META_KEY = "org.schemapin/signature"

#: The fields of a ``tools/list`` entry that form the signed tool document.
DOCUMENT_FIELDS = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")


def canonical_json(value: Any) -> str:
    """SchemaPin's canonical form: sorted keys, no insignificant whitespace, UTF-8 text."""
    text: str = SchemaPinCore.canonicalize_schema(value)
    return text


def sha256_digest(value: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``value``."""
    return "sha256:" + hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def tool_document(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The signed part of a wire-form tool (a ``tools/list`` entry with camelCase keys).

    Fields that are absent or ``null`` are left out, so a server that omits ``title`` and one
    that sends ``"title": null`` describe the same document.
    """
    return {key: raw[key] for key in DOCUMENT_FIELDS if raw.get(key) is not None}


def sign_tool_document(document: Mapping[str, Any], private_key_pem: str) -> str:
    """Sign a tool document with a SchemaPin (ECDSA P-256) private key; base64 signature.

    For tool authors and tests: put the result in the tool's ``_meta`` under
    :data:`SIGNATURE_META_KEY`.
    """
    signature: str = SchemaSigningWorkflow(private_key_pem).sign_schema(dict(document))
    return signature


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """One tool as a server listed it: its document, signature and definition hash."""

    document: Mapping[str, Any]
    signature: str | None
    definition_hash: str
    #: Bytes of the document's canonical JSON.
    size: int = 0

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> ToolDefinition:
        """Build from a wire-form tool.

        Raises:
            InvalidArgument: the entry has no string ``name`` or no object ``inputSchema``,
                or a signature that is not a string.
        """
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidArgument("a listed tool has no name", reason="MALFORMED_TOOL")
        if not isinstance(raw.get("inputSchema"), Mapping):
            raise InvalidArgument(
                f"tool {name!r} has no inputSchema object", reason="MALFORMED_TOOL"
            )
        meta = raw.get("_meta")
        signature = meta.get(SIGNATURE_META_KEY) if isinstance(meta, Mapping) else None
        if signature is not None and not isinstance(signature, str):
            raise InvalidArgument(
                f"tool {name!r}: _meta[{SIGNATURE_META_KEY!r}] must be a base64 string",
                reason="MALFORMED_TOOL",
            )
        document = tool_document(raw)
        canonical = canonical_json(document).encode("utf-8")
        return cls(
            # A plain dict (canonical_json cannot serialize mapping proxies); never mutated.
            document=document,
            signature=signature or None,
            definition_hash="sha256:" + hashlib.sha256(canonical).hexdigest(),
            size=len(canonical),
        )

    @property
    def name(self) -> str:
        """The tool's name on its server."""
        name: str = self.document["name"]
        return name

    @property
    def title(self) -> str | None:
        """Human-readable title, when the server gave one."""
        value = self.document.get("title")
        return value if isinstance(value, str) else None

    @property
    def description(self) -> str:
        """The description the model reads ("" when there is none)."""
        value = self.document.get("description")
        return value if isinstance(value, str) else ""

    @property
    def input_schema(self) -> Mapping[str, Any]:
        """JSON Schema of the arguments."""
        schema: Mapping[str, Any] = self.document["inputSchema"]
        return schema

    @property
    def output_schema(self) -> Mapping[str, Any] | None:
        """JSON Schema of ``structuredContent``, when declared."""
        value = self.document.get("outputSchema")
        return value if isinstance(value, Mapping) else None

    @property
    def annotations(self) -> Mapping[str, Any] | None:
        """Behaviour hints (read-only, destructive, ...), when declared."""
        value = self.document.get("annotations")
        return value if isinstance(value, Mapping) else None
