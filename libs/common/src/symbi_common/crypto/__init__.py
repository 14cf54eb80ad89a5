"""Symbi's cryptography: identities and certificates, the keyring, group keys, envelopes.

Pure code (no NATS): the bus in :mod:`symbi_common.bus` moves what this module seals.
"""

from symbi_common.crypto.envelope import (
    EnvelopeLimits,
    EnvelopeOpener,
    EnvelopeSealer,
    OpenedEnvelope,
    new_message_id,
)
from symbi_common.crypto.groupkeys import (
    GroupKeyring,
    group_key_id,
    seal_group_key,
    unseal_group_key,
)
from symbi_common.crypto.identity import (
    Certificate,
    PrincipalKeys,
    RootAuthority,
    fingerprint,
    now_ms,
)
from symbi_common.crypto.keyring import Keyring, KeyringChange
from symbi_common.crypto.rejects import EnvelopeRejected, RejectReason, reason_name

__all__ = [
    "Certificate",
    "EnvelopeLimits",
    "EnvelopeOpener",
    "EnvelopeRejected",
    "EnvelopeSealer",
    "GroupKeyring",
    "Keyring",
    "KeyringChange",
    "OpenedEnvelope",
    "PrincipalKeys",
    "RejectReason",
    "RootAuthority",
    "fingerprint",
    "group_key_id",
    "new_message_id",
    "now_ms",
    "reason_name",
    "seal_group_key",
    "unseal_group_key",
]
