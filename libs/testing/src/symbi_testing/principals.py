"""Principals, a root and a keyring, all in memory, with a clock the test controls."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from symbi_common.crypto import (
    EnvelopeOpener,
    EnvelopeSealer,
    GroupKeyring,
    Keyring,
    PrincipalKeys,
    RootAuthority,
)

__all__ = ["CryptoWorld", "Principal"]


@dataclass
class Principal:
    keys: PrincipalKeys
    groups: GroupKeyring
    sealer: EnvelopeSealer
    opener: EnvelopeOpener


@dataclass
class CryptoWorld:
    root: RootAuthority = field(default_factory=RootAuthority.create)
    clock_ms: list[int] = field(default_factory=lambda: [1_800_000_000_000])

    def __post_init__(self) -> None:
        self.keyring = Keyring(self.root.certificate, clock=self.now)
        self.principals: dict[str, Principal] = {}

    def now(self) -> int:
        return self.clock_ms[0]

    def principal(self, principal_id: str, role: str = "service") -> Principal:
        """A principal certified by the root (the same one again on a second call)."""
        if principal_id in self.principals:
            return self.principals[principal_id]
        keys = PrincipalKeys.generate(principal_id)
        assert self.keyring.add_certificate(self.root.issue_for(keys, role))
        groups = GroupKeyring()
        principal = Principal(
            keys,
            groups,
            EnvelopeSealer(keys, self.keyring, groups, clock=self.now),
            EnvelopeOpener(keys, self.keyring, groups, clock=self.now),
        )
        self.principals[principal_id] = principal
        return principal

    def share_topic(self, topic: str, generation: int, *members: Principal) -> bytes:
        """Give ``members`` the same new group key of ``topic``."""
        key = os.urandom(32)
        for member in members:
            member.groups.add(topic, generation, key)
        return key
