"""The log's signing key on disk: loaded at start, generated once if there is none.

The key is stable for the life of the log: every checkpoint it ever signed is checked with
its public key, so a new key would make a new log. The verifier key (``<name>+<id>+<base64>``)
is written next to the store as ``log.pub`` for operators to hand to verifiers.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from symbi_audit.errors import NoteError
from symbi_audit.note import NoteSigner
from symbi_common.errors import ConfigError

__all__ = ["load_or_create_log_key", "write_public_key"]

_log = logging.getLogger(__name__)


def load_or_create_log_key(path: Path, origin: str) -> NoteSigner:
    """The signing key at ``path`` (named ``origin``), generated there (mode 0600) if absent.

    A key of another name, or a file that is not a key, is a :class:`ConfigError`: the process
    must not start signing a log under the wrong name.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _create(path, origin)
    except OSError as exc:
        raise ConfigError(
            f"audit.key_file {path}: cannot read: {exc.strerror}", reason="AUDIT_KEY_UNREADABLE"
        ) from None
    try:
        signer = NoteSigner.parse(text)
    except NoteError as exc:
        raise ConfigError(
            f"audit.key_file {path}: not a log signing key ({exc.message})",
            reason="AUDIT_KEY_INVALID",
        ) from None
    if signer.name != origin:
        raise ConfigError(
            f"audit.key_file {path} is the key of log {signer.name!r}, but audit.origin is "
            f"{origin!r}; a log keeps its name and key for life",
            reason="AUDIT_KEY_ORIGIN_MISMATCH",
        )
    return signer


def _create(path: Path, origin: str) -> NoteSigner:
    try:
        signer = NoteSigner.generate(origin)
    except NoteError as exc:
        raise ConfigError(f"audit.origin {origin!r}: {exc.message}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(signer.private_key_text() + "\n")
            out.flush()
            os.fsync(out.fileno())
        # link() refuses to replace: if another process made a key meanwhile, use that one.
        try:
            os.link(tmp, path)
        except FileExistsError:
            return load_or_create_log_key(path, origin)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(path.parent)
    _log.warning("generated a new audit log key for %s at %s", origin, path)
    return signer


def write_public_key(path: Path, signer: NoteSigner) -> None:
    """Write the verifier key to ``path`` (atomically) unless it already holds it."""
    text = f"{signer.verifier}\n"
    with contextlib.suppress(OSError):
        if path.read_text(encoding="utf-8") == text:
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
