"""Per-task host directories (agent socket, agent code) and per-task user ids.

Each task gets ``<root>/<digest of task id and attempt>/`` holding ``channel/`` (the agent socket's
directory, bind-mounted read-only at ``/run/symbi``) and ``agent/`` (the task's code, mounted
read-only at ``/agent``). Directories are created root-owned ``0755`` so that the task's own
uid can traverse them but not write into them. Code arrives as a tar archive (unpacked with
the ``data`` filter: no absolute paths, no ``..``, no links out, no devices) or as one file
(``main.py``).
"""

from __future__ import annotations

import hashlib
import io
import logging
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from symbi_common.errors import InvalidArgument, ResourceExhausted

__all__ = ["TaskDirectory", "UidPool", "Workspace"]

_log = logging.getLogger(__name__)

MAX_UNPACKED_BYTES = 64 * 1024 * 1024
MAX_MEMBERS = 10_000


@dataclass(frozen=True)
class TaskDirectory:
    """The host paths of one task attempt."""

    root: Path
    channel: Path
    code: Path | None


class Workspace:
    """Creates and removes task directories under one root (blocking file I/O)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def prepare(self) -> None:
        """Creates the root (``0711``: tasks can reach their own directory, not list others)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o711)

    def path_for(self, task_id: str, attempt: int) -> Path:
        # A short digest, not the task id: Unix socket paths are limited to 107 bytes and
        # task ids may be 128 characters long.
        digest = hashlib.sha256(f"{task_id}\x00{attempt}".encode()).hexdigest()[:16]
        return self.root / digest

    def create(self, task_id: str, attempt: int, code: bytes) -> TaskDirectory:
        """Creates the task's directories and unpacks its code; replaces leftovers."""
        root = self.path_for(task_id, attempt)
        if root.exists():
            shutil.rmtree(root)
        channel = root / "channel"
        channel.mkdir(parents=True, mode=0o755)
        root.chmod(0o755)
        channel.chmod(0o755)
        code_dir: Path | None = None
        if code:
            code_dir = root / "agent"
            code_dir.mkdir(mode=0o755)
            code_dir.chmod(0o755)
            try:
                _unpack_code(code, code_dir)
            except BaseException:
                shutil.rmtree(root, ignore_errors=True)
                raise
        return TaskDirectory(root=root, channel=channel, code=code_dir)

    def remove(self, task_id: str, attempt: int) -> None:
        shutil.rmtree(self.path_for(task_id, attempt), ignore_errors=True)

    def leftovers(self) -> list[Path]:
        """Task directories present now (at start-up: left by an earlier run)."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir())


def _unpack_code(code: bytes, target: Path) -> None:
    if not _is_archive(code):
        main = target / "main.py"
        main.write_bytes(code)
        main.chmod(0o644)
        return
    with tarfile.open(fileobj=io.BytesIO(code), mode="r:*") as archive:
        members = archive.getmembers()
        if len(members) > MAX_MEMBERS:
            raise InvalidArgument(
                f"task.code: archive has {len(members)} entries; at most {MAX_MEMBERS} allowed",
                reason="MALFORMED_TASK",
                details={"field": "code"},
            )
        total = sum(m.size for m in members if m.isfile())
        if total > MAX_UNPACKED_BYTES:
            raise InvalidArgument(
                f"task.code: archive unpacks to {total} bytes; at most {MAX_UNPACKED_BYTES}",
                reason="MALFORMED_TASK",
                details={"field": "code"},
            )
        try:
            archive.extractall(target, filter=_readable_data)
        except tarfile.FilterError as exc:
            raise InvalidArgument(
                f"task.code: unsafe archive entry refused ({exc})",
                reason="MALFORMED_TASK",
                details={"field": "code"},
            ) from exc


def _is_archive(code: bytes) -> bool:
    try:
        with tarfile.open(fileobj=io.BytesIO(code), mode="r:*") as archive:
            archive.next()
    except (tarfile.TarError, EOFError, OSError):
        return False
    return True


def _readable_data(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
    # The "data" filter refuses traversal, links out and devices; on top, everything must be
    # readable (not writable) by the task's own uid, whatever the archive said.
    checked = tarfile.data_filter(member, path)
    mode = 0o755 if checked.isdir() or (checked.mode or 0) & 0o111 else 0o644
    return checked.replace(mode=mode, uid=0, gid=0, uname="root", gname="root", deep=False)


class UidPool:
    """Hands out distinct uids from ``[base, base + size)`` to running tasks."""

    def __init__(self, base: int, size: int) -> None:
        if base < 1000 or size < 1:
            raise InvalidArgument(
                f"uid range must start at ≥ 1000 and hold ≥ 1 id (got base={base}, size={size})"
            )
        self._base = base
        self._free = list(range(base + size - 1, base - 1, -1))
        self._used: set[int] = set()

    def acquire(self) -> int:
        if not self._free:
            raise ResourceExhausted(
                f"no free sandbox uid ({len(self._used)} in use); too many tasks on this node",
                reason="NO_FREE_UID",
            )
        uid = self._free.pop()
        self._used.add(uid)
        return uid

    def release(self, uid: int) -> None:
        if uid in self._used:
            self._used.remove(uid)
            self._free.append(uid)
