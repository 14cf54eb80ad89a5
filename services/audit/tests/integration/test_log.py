"""AuditLog's report over the real store, and publisher authentication at ingest."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import nacl.signing
import pytest

from symbi_audit.event import AuditEvent, sign_event
from symbi_audit.log import AuditLog, EventAuthenticator
from symbi_audit.note import NoteSigner
from symbi_common.errors import InvalidArgument, Unauthenticated

Events = Callable[..., list[AuditEvent]]


def test_report_over_a_window(tmp_path: Path, log_key: NoteSigner, events: Events) -> None:
    batch = events(100)
    with AuditLog.open(tmp_path / "a.db", signer=log_key) as log:
        log.append_batch(batch)
        log.checkpoint()
        since = batch[0].timestamp + timedelta(seconds=20)
        report = log.report(since, since + timedelta(seconds=40))
    assert report.total == 40
    assert (report.first_index, report.last_index) == (20, 59)
    assert report.by_type == {t: 10 for t in sorted(report.by_type)}
    assert report.denied_total == sum(1 for i in range(20, 60) if i % 8 == 0)
    assert report.sandbox_violations_total == 10
    assert report.policy_changes_total == 10
    assert report.checkpoint_size == 100


def test_log_key_must_name_the_store(tmp_path: Path, log_key: NoteSigner) -> None:
    with AuditLog.open(tmp_path / "a.db", signer=log_key):
        pass
    with pytest.raises(Exception, match="belongs to log"):
        AuditLog.open(tmp_path / "a.db", signer=NoteSigner.generate("other.example/log"))
    with AuditLog.open(tmp_path / "b.db", signer=log_key) as other, pytest.raises(InvalidArgument):
        other.append_batch([None] * 10_001)  # type: ignore[list-item]


class Keyring:
    def __init__(self, keys: dict[str, bytes]) -> None:
        self.keys = keys

    def public_key(self, key_id: str) -> bytes | None:
        return self.keys.get(key_id)


def test_event_authenticator(events: Events) -> None:
    key = nacl.signing.SigningKey.generate()
    auth = EventAuthenticator(Keyring({"svc:a#1": bytes(key.verify_key)}))
    event = events(1)[0]
    signed = sign_event(event, "svc:a#1", key)
    auth.check(signed)
    with pytest.raises(Unauthenticated, match="not signed"):
        auth.check(event)
    with pytest.raises(Unauthenticated, match="unknown key"):
        auth.check(sign_event(event, "svc:b#1", key))
    with pytest.raises(Unauthenticated, match="does not verify"):
        auth.check(sign_event(event, "svc:a#1", nacl.signing.SigningKey.generate()))
    EventAuthenticator(Keyring({}), require_signature=False).check(event)
