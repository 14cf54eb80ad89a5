"""Signed notes and checkpoints, against the Go ``note`` package's published example."""

from __future__ import annotations

import base64

import pytest

from symbi_audit.checkpoint import Checkpoint, CheckpointPolicy, SignedCheckpoint
from symbi_audit.errors import NoteError
from symbi_audit.merkle import EMPTY_ROOT, leaf_hash
from symbi_audit.note import NoteSigner, NoteVerifier, key_id, open_note, sign_note

# The example key pair and note of golang.org/x/mod/sumdb/note (its documentation and tests).
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIGNATURE_LINE = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvq"
    "fqdngotpRZb6KE6RyyBwJnAM=\n"
)
GO_NOTE = GO_TEXT + "\n" + GO_SIGNATURE_LINE


def test_key_encodings_and_signature_match_the_go_reference_byte_for_byte() -> None:
    signer = NoteSigner.parse(GO_SKEY)
    assert signer.private_key_text() == GO_SKEY
    assert str(signer.verifier) == GO_VKEY
    assert signer.key_id == 0xC74F20A3
    assert key_id("PeterNeumann", signer.verifier.public_key) == 0xC74F20A3
    # Ed25519 is deterministic, so the signed note must equal the published one.
    assert sign_note(GO_TEXT, [signer]) == GO_NOTE


def test_open_accepts_the_reference_note_and_rejects_changes() -> None:
    verifier = NoteVerifier.parse(GO_VKEY)
    assert open_note(GO_NOTE, [verifier]).text == GO_TEXT
    with pytest.raises(NoteError, match="does not verify"):
        open_note(GO_NOTE.replace("cryptography", "cryptographY"), [verifier])


def test_unknown_signatures_are_ignored_but_a_note_needs_one_trusted() -> None:
    verifier = NoteVerifier.parse(GO_VKEY)
    other = NoteSigner.generate("witness.example/w1")
    cosigned = GO_NOTE + other.signature_line(GO_TEXT)
    assert open_note(cosigned, [verifier]).verified_by == (verifier,)
    with pytest.raises(NoteError, match="trusted"):
        open_note(cosigned, [NoteSigner.generate("PeterNeumann").verifier])


@pytest.mark.parametrize(
    "bad",
    [
        GO_TEXT,  # no signatures
        GO_TEXT + "\n",  # blank line but no signature lines
        GO_NOTE[:-1],  # missing final newline
        GO_NOTE.replace("\u2014 ", "- "),  # not an em dash
        GO_NOTE.replace("x08go", "x08g!"),  # not base64
        GO_TEXT + "\n" + "\u2014 PeterNeumann AAAA\n",  # too short for a key ID
        GO_NOTE.replace("your problem,", "your\x01problem,"),  # control character
    ],
)
def test_malformed_notes_are_rejected(bad: str) -> None:
    with pytest.raises(NoteError):
        open_note(bad, [NoteVerifier.parse(GO_VKEY)])


@pytest.mark.parametrize(
    "key",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong id
        "PeterNeumann+c74f20a3+Apc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # bad key
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # space
        "PeterNeumann+c74f20a3",
    ],
)
def test_mangled_verifier_keys_are_rejected(key: str) -> None:
    with pytest.raises(NoteError):
        NoteVerifier.parse(key)


def test_checkpoint_body_round_trips_and_signs() -> None:
    signer = NoteSigner.generate("audit.symbi.example/log")
    root = leaf_hash(b"x")
    checkpoint = Checkpoint("audit.symbi.example/log", 42, root)
    assert checkpoint.body() == (
        f"audit.symbi.example/log\n42\n{base64.b64encode(root).decode()}\n"
    )
    signed = checkpoint.sign(signer)
    opened = SignedCheckpoint.open(signed.note, [signer.verifier])
    assert opened.checkpoint == checkpoint
    assert (opened.size, opened.root_hash) == (42, root)


def test_forged_checkpoints_are_rejected() -> None:
    signer = NoteSigner.generate("log.example/a")
    signed = Checkpoint("log.example/a", 7, EMPTY_ROOT).sign(signer)
    forged = signed.note.replace("\n7\n", "\n8\n")
    with pytest.raises(NoteError, match="does not verify"):
        SignedCheckpoint.open(forged, [signer.verifier])
    impostor = Checkpoint("log.example/a", 7, EMPTY_ROOT).sign(NoteSigner.generate("log.example/a"))
    with pytest.raises(NoteError):
        SignedCheckpoint.open(impostor.note, [signer.verifier])


def test_checkpoint_parse_rejects_bad_fields() -> None:
    for text in ["o\n007\nAAAA\n", "o\n1\n", "o\nx\nAAAA\n", "o\n1\n!!!!\n"]:
        with pytest.raises(NoteError):
            Checkpoint.parse(text)
    with pytest.raises(Exception, match="origin"):
        Checkpoint("other", 1, EMPTY_ROOT).sign(NoteSigner.generate("log.example/a"))


def test_checkpoint_policy() -> None:
    policy = CheckpointPolicy(every_entries=100, every_seconds=2.0)
    assert not policy.due(size=10, last_size=10, now=100.0, last_time=0.0)
    assert policy.due(size=110, last_size=10, now=0.5, last_time=0.0)
    assert not policy.due(size=50, last_size=10, now=1.0, last_time=0.0)
    assert policy.due(size=11, last_size=10, now=2.0, last_time=0.0)
    assert policy.seconds_until_due(now=1.5, last_time=0.0) == pytest.approx(0.5)
    with pytest.raises(Exception, match="every_entries"):
        CheckpointPolicy(every_entries=0)
