"""Audit events as every Symbi process emits them.

:class:`AuditEvent` (``event.py``) is the audit log's canonical event; :class:`AuditRecorder`
signs one with the process's key and hands it to a publisher (the secure bus publishes it on
``symbi.audit.<type>``, where the audit service consumes it). :func:`to_proto` and
:func:`from_proto` convert to and from ``symbi.bus.v1.AuditEvent``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta

from symbi.bus.v1 import events_pb2
from symbi_common.auditing.event import (
    AuditEvent,
    JSONValue,
    sign_event,
    timestamp_micros,
)
from symbi_common.crypto.identity import PrincipalKeys
from symbi_common.errors import InvalidArgument

__all__ = ["AuditEvent", "AuditRecorder", "from_proto", "to_proto"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_proto(event: AuditEvent) -> events_pb2.AuditEvent:
    return events_pb2.AuditEvent(
        event_id=str(event.event_id),
        timestamp_us=timestamp_micros(event.timestamp),
        agent_id=event.agent_id,
        actor=event.actor,
        event_type=event.event_type,
        details_json=event.details_json,
        trace_id=event.trace_id,
        compliance_tags=list(event.compliance_tags),
        publisher_key_id=event.publisher_key_id,
        publisher_signature=event.publisher_signature,
    )


def from_proto(message: events_pb2.AuditEvent) -> AuditEvent:
    """The canonical event of a bus message; InvalidArgument names what is wrong."""
    try:
        event_id = uuid.UUID(message.event_id)
    except ValueError:
        raise InvalidArgument(
            f"event_id {message.event_id!r} is not a UUID", reason="BAD_EVENT_ID"
        ) from None
    return AuditEvent(
        event_id=event_id,
        timestamp=_EPOCH + timedelta(microseconds=message.timestamp_us),
        actor=message.actor,
        event_type=message.event_type,
        agent_id=message.agent_id,
        details_json=message.details_json or "{}",
        trace_id=message.trace_id,
        publisher_key_id=message.publisher_key_id,
        publisher_signature=message.publisher_signature,
        compliance_tags=tuple(message.compliance_tags),
    )


Publisher = Callable[[events_pb2.AuditEvent], Awaitable[object]]


class AuditRecorder:
    """Signs audit events as this principal and publishes them."""

    def __init__(self, keys: PrincipalKeys, publish: Publisher) -> None:
        self.keys = keys
        self.publish = publish

    def build(
        self,
        event_type: str,
        *,
        details: Mapping[str, JSONValue] | None = None,
        agent_id: str = "",
        actor: str | None = None,
        compliance_tags: Iterable[str] = (),
        trace_id: str = "",
        event_id: uuid.UUID | None = None,
    ) -> AuditEvent:
        # Created with the key id already in place, so signing re-encodes the event once.
        unsigned = AuditEvent.create(
            event_type=event_type,
            actor=actor or self.keys.principal_id,
            details=details,
            agent_id=agent_id,
            trace_id=trace_id,
            compliance_tags=compliance_tags,
            event_id=event_id,
            publisher_key_id=self.keys.key_id,
        )
        return sign_event(unsigned, self.keys.key_id, self.keys.signing_key)

    async def record(
        self,
        event_type: str,
        *,
        details: Mapping[str, JSONValue] | None = None,
        agent_id: str = "",
        actor: str | None = None,
        compliance_tags: Iterable[str] = (),
        trace_id: str = "",
        event_id: uuid.UUID | None = None,
    ) -> AuditEvent:
        """Build, sign and publish one event; returns it (its id is the log's key)."""
        event = self.build(
            event_type,
            details=details,
            agent_id=agent_id,
            actor=actor,
            compliance_tags=compliance_tags,
            trace_id=trace_id,
            event_id=event_id,
        )
        await self.publish(to_proto(event))
        return event
