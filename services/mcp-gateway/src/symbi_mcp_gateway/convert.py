"""Pure converters between the gateway's domain objects and ``symbi.mcp_gateway.v1``."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2
from pydantic import ValidationError

from symbi.mcp_gateway.v1 import mcp_gateway_pb2 as pb
from symbi_common.errors import InvalidArgument
from symbi_mcp_gateway.approvals import CallApproval
from symbi_mcp_gateway.catalog import ToolView
from symbi_mcp_gateway.config import GatewayConfig, McpServerConfig
from symbi_mcp_gateway.definition import canonical_json
from symbi_mcp_gateway.front import exposed_name
from symbi_mcp_gateway.gateway import ServerInfo, ToolResult
from symbi_mcp_gateway.pins import ToolPin
from symbi_mcp_gateway.trust import ToolStatus

__all__ = [
    "approval_to_proto",
    "arguments_from_request",
    "pin_to_proto",
    "result_to_proto",
    "server_config_from_proto",
    "server_to_proto",
    "struct_from",
    "struct_to_dict",
    "tool_to_proto",
]

REDACTED = "***"
_MAX_SAFE_INTEGER = 2**53

_STATUS = {
    ToolStatus.VERIFIED: pb.TOOL_STATUS_VERIFIED,
    ToolStatus.UNSIGNED: pb.TOOL_STATUS_UNSIGNED,
    ToolStatus.INVALID: pb.TOOL_STATUS_INVALID,
    ToolStatus.QUARANTINED: pb.TOOL_STATUS_QUARANTINED,
    ToolStatus.ALLOWED_UNVERIFIED: pb.TOOL_STATUS_ALLOWED_UNVERIFIED,
}


def struct_from(value: Mapping[str, Any]) -> struct_pb2.Struct:
    """A Struct of a JSON object (numbers become doubles, as Struct holds them)."""
    struct = struct_pb2.Struct()
    struct.update(dict(value))
    return struct


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) <= _MAX_SAFE_INTEGER:
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as a JSON object; integral doubles become integers (a Struct cannot tell
    ``1`` from ``1.0``, and tool schemas that ask for integers mean ``1``)."""
    value = json_format.MessageToDict(struct)
    result: dict[str, Any] = _integral(value)
    return result


def arguments_from_request(request: pb.InvokeToolRequest) -> dict[str, Any]:
    """The call's arguments: ``arguments_json`` when set (exact), else ``arguments``.

    Raises:
        InvalidArgument: ``arguments_json`` is not a JSON object.
    """
    if request.arguments_json:
        try:
            value = json.loads(
                request.arguments_json,
                parse_constant=lambda name: _reject_constant(name),
            )
        except ValueError as exc:
            raise InvalidArgument(
                f"arguments_json is not valid JSON: {exc}", reason="INVALID_ARGUMENTS"
            ) from None
        if not isinstance(value, dict):
            raise InvalidArgument(
                "arguments_json must be a JSON object", reason="INVALID_ARGUMENTS"
            )
        return value
    return struct_to_dict(request.arguments)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def server_to_proto(info: ServerInfo, *, configured: bool) -> pb.McpServer:
    config = info.config
    message = pb.McpServer(
        name=config.name,
        transport=config.transport.value,
        command=config.command or "",
        args=list(config.args),
        env={key: REDACTED for key in config.env},
        url=config.url or "",
        domain=config.domain or "",
        trust_mode=config.trust_mode.value,
        connected=info.connected,
        last_error=info.last_error,
        state=info.state.value,
        tool_count=info.tool_count,
        headers={key: REDACTED for key in config.headers},
        cwd=str(config.cwd) if config.cwd is not None else "",
        in_flight=info.in_flight,
        configured=configured,
        limits=pb.ServerLimits(
            connection_timeout_ms=round(config.connection_timeout_s * 1000),
            max_concurrent_connections=config.max_concurrent_connections,
            call_timeout_ms=round(config.call_timeout_s * 1000),
            max_result_bytes=config.max_result_bytes,
            max_argument_bytes=config.max_argument_bytes,
            max_message_bytes=config.max_message_bytes,
            refresh_interval_s=math.ceil(config.refresh_interval_s),
            max_tools=config.max_tools,
        ),
    )
    return message


def server_config_from_proto(message: pb.McpServer, section: GatewayConfig) -> McpServerConfig:
    """A server configuration from a RegisterServer request; unset limits and trust mode take
    the ``[mcp]`` section's values.

    Raises:
        InvalidArgument: naming every offending field.
    """
    raw: dict[str, Any] = {
        "name": message.name,
        "trust_mode": message.trust_mode or section.tool_verification.value,
        "connection_timeout_s": section.connection_timeout_s,
        "max_concurrent_connections": section.max_concurrent_connections,
        "call_timeout_s": section.call_timeout_s,
        "max_result_bytes": section.max_result_bytes,
        "max_argument_bytes": section.max_argument_bytes,
        "max_message_bytes": section.max_message_bytes,
        "refresh_interval_s": section.refresh_interval_s,
    }
    for key, value in (
        ("command", message.command),
        ("url", message.url),
        ("domain", message.domain),
        ("cwd", message.cwd),
    ):
        if value:
            raw[key] = value
    if message.args:
        raw["args"] = tuple(message.args)
    if message.env:
        raw["env"] = dict(message.env)
    if message.headers:
        raw["headers"] = dict(message.headers)
    limits = message.limits
    if limits.connection_timeout_ms:
        raw["connection_timeout_s"] = limits.connection_timeout_ms / 1000
    if limits.call_timeout_ms:
        raw["call_timeout_s"] = limits.call_timeout_ms / 1000
    counts: tuple[tuple[str, int], ...] = (
        ("max_concurrent_connections", limits.max_concurrent_connections),
        ("max_result_bytes", limits.max_result_bytes),
        ("max_argument_bytes", limits.max_argument_bytes),
        ("max_message_bytes", limits.max_message_bytes),
        ("refresh_interval_s", limits.refresh_interval_s),
        ("max_tools", limits.max_tools),
    )
    for key, count in counts:
        if count:
            raw[key] = count
    if raw["max_message_bytes"] < raw["max_result_bytes"]:
        raw["max_message_bytes"] = raw["max_result_bytes"]
    try:
        return McpServerConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "server"
            message_text = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {message_text}")
        raise InvalidArgument(
            "invalid MCP server: " + "; ".join(problems), reason="INVALID_SERVER"
        ) from None


def tool_to_proto(view: ToolView) -> pb.Tool:
    definition = view.definition
    message = pb.Tool(
        server=view.server,
        name=view.name,
        description=definition.description,
        definition_hash=view.definition_hash,
        status=_STATUS.get(view.status, pb.TOOL_STATUS_UNSPECIFIED),
        key_fingerprint=view.key_fingerprint or "",
        detail=view.detail,
        title=definition.title or "",
        approved_by=view.approved_by or "",
        usable=view.usable,
        exposed_name=exposed_name(view.server, view.name),
        document_json=canonical_json(definition.document),
    )
    message.input_schema.update(dict(definition.input_schema))
    if definition.output_schema is not None:
        message.output_schema.update(dict(definition.output_schema))
    if definition.annotations is not None:
        message.annotations.update(dict(definition.annotations))
    return message


def pin_to_proto(pin: ToolPin) -> pb.Pin:
    return pb.Pin(
        tool_id=pin.tool_id,
        domain=pin.domain or "",
        key_fingerprint=pin.key_fingerprint or "",
        pinned_at_ms=pin.pinned_at_ms,
        definition_hash=pin.definition_hash,
        approved_by=pin.approved_by or "",
        updated_at_ms=pin.updated_at_ms,
        server=pin.server,
        tool=pin.tool,
    )


def result_to_proto(result: ToolResult) -> pb.InvokeToolResponse:
    message = pb.InvokeToolResponse(
        is_error=result.is_error,
        text=result.text,
        result_hash=result.result_hash,
        arguments_hash=result.arguments_hash,
        duration_ms=round(result.duration_ms),
        duration_ms_exact=result.duration_ms,
        content_json=canonical_json(result.content),
        result_bytes=result.result_bytes,
    )
    structured = result.structured_content
    if isinstance(structured, Mapping):
        message.structured_content.update(dict(structured))
        message.has_structured_content = True
    return message


def approval_to_proto(approval: CallApproval, *, now_ms: int) -> pb.CallApproval:
    return pb.CallApproval(
        approval_id=approval.approval_id,
        agent_id=approval.agent_id,
        server=approval.server,
        tool=approval.tool,
        arguments_sha256=approval.arguments_sha256,
        state=approval.state.value,
        policies=list(approval.policies),
        reasons=list(approval.reasons),
        created_at_ms=approval.created_at_ms,
        expires_at_ms=approval.expires_at_ms,
        decided_by=approval.decided_by,
        decided_at_ms=approval.decided_at_ms,
        consumed_at_ms=approval.consumed_at_ms,
        expired=approval.expired(now_ms),
    )
