"""Why an envelope was refused: one exception carrying a :class:`RejectReason`."""

from __future__ import annotations

from symbi.bus.v1 import envelope_pb2
from symbi_common.errors import PermissionDenied

__all__ = ["EnvelopeRejected", "RejectReason", "reason_name"]

RejectReason = envelope_pb2.RejectReason


def reason_name(reason: int) -> str:
    """``REJECT_REASON_BAD_SIGNATURE`` → ``bad_signature`` (metric labels, audit details)."""
    return RejectReason.Name(reason).removeprefix("REJECT_REASON_").lower()


class EnvelopeRejected(PermissionDenied):
    """An envelope failed a check; it is never acted on. ``sender`` is the *claimed* sender."""

    def __init__(
        self, reason: int, message: str, *, sender: str = "", msg_id: str = "", subject: str = ""
    ) -> None:
        super().__init__(message, reason=f"ENVELOPE_{reason_name(reason).upper()}")
        self.reject_reason = reason
        self.sender = sender
        self.msg_id = msg_id
        self.subject = subject

    @property
    def reason_label(self) -> str:
        return reason_name(self.reject_reason)
