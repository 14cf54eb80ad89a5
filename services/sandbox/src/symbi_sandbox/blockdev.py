"""The block device behind Docker's storage, for ``disk_io_mbps`` (blkio/io cgroup throttling).

Docker throttles a container's block I/O per device (``device_read_bps`` /
``device_write_bps``), through the cgroup's blkio (v1) or io (v2) controller. The device that
matters is the one holding Docker's data root (image layers, the container's writable layer,
its logs): ``docker info`` names the directory, ``stat`` gives its device number, sysfs gives
the disk. Throttling applies to whole disks, so a partition resolves to its disk. A
filesystem with an anonymous device number (major 0: btrfs, overlay, tmpfs, NFS) is looked
up in ``/proc/self/mountinfo`` for a ``/dev/…`` source; if none is found there is nothing to
throttle and :class:`NoBlockDevice` says why.

This reads the node's own filesystem: it is right when dockerd runs on the same host as the
sandbox service (the supported layout); otherwise the data root is not found here and the
limit is reported unavailable.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BlockDevice", "NoBlockDevice", "find_block_device"]


class NoBlockDevice(Exception):
    """No throttleable block device backs the path; the message says why."""


@dataclass(frozen=True)
class BlockDevice:
    """A whole disk: its device node (what Docker is given) and number."""

    path: str
    major: int
    minor: int

    @property
    def number(self) -> str:
        return f"{self.major}:{self.minor}"


def find_block_device(
    path: str,
    *,
    sys_root: Path = Path("/sys"),
    dev_root: Path = Path("/dev"),
    mountinfo: Path = Path("/proc/self/mountinfo"),
) -> BlockDevice:
    """The disk holding ``path``; raises :class:`NoBlockDevice` naming why there is none."""
    try:
        st_dev = os.stat(path).st_dev
    except OSError as exc:
        raise NoBlockDevice(
            f"cannot stat Docker's data root {path} ({exc.strerror}); dockerd must run on this host"
        ) from exc
    major, minor = os.major(st_dev), os.minor(st_dev)
    if major == 0:
        major, minor = _mount_source(path, major, minor, mountinfo)
    link = sys_root / "dev" / "block" / f"{major}:{minor}"
    if not link.exists():
        raise NoBlockDevice(
            f"Docker's data root {path} is on device {major}:{minor}, which is not a block device"
        )
    node = link.resolve()
    if (node / "partition").exists():
        node = node.parent  # throttling applies to the whole disk
        try:
            major, minor = (int(x) for x in (node / "dev").read_text().strip().split(":"))
        except (OSError, ValueError) as exc:
            raise NoBlockDevice(f"cannot read the disk of partition {link}: {exc}") from exc
    name = _devname(node) or node.name
    device = dev_root / name
    try:
        st = os.stat(device)
    except OSError as exc:
        raise NoBlockDevice(
            f"the disk {major}:{minor} of Docker's data root has no device node {device}"
        ) from exc
    if not stat.S_ISBLK(st.st_mode) or (os.major(st.st_rdev), os.minor(st.st_rdev)) != (
        major,
        minor,
    ):
        raise NoBlockDevice(f"{device} is not the block device {major}:{minor}")
    return BlockDevice(str(device), major, minor)


def _devname(node: Path) -> str | None:
    try:
        for line in (node / "uevent").read_text().splitlines():
            key, _, value = line.partition("=")
            if key == "DEVNAME" and value:
                return value
    except OSError:
        return None
    return None


def _mount_source(path: str, major: int, minor: int, mountinfo: Path) -> tuple[int, int]:
    """For an anonymous device (btrfs, overlay, tmpfs): the ``/dev/…`` source of its mount."""
    number = f"{major}:{minor}"
    try:
        lines = mountinfo.read_text().splitlines()
    except OSError as exc:
        raise NoBlockDevice(f"cannot read {mountinfo}: {exc.strerror}") from exc
    for line in lines:
        fields = line.split()
        if len(fields) < 10 or fields[2] != number or "-" not in fields:
            continue
        after = fields[fields.index("-") + 1 :]
        fstype, source = after[0], after[1] if len(after) > 1 else ""
        if source.startswith("/dev/"):
            try:
                st = os.stat(source)
            except OSError:
                continue
            if stat.S_ISBLK(st.st_mode):
                return os.major(st.st_rdev), os.minor(st.st_rdev)
        raise NoBlockDevice(
            f"Docker's data root {path} is on a {fstype} filesystem without a block device "
            f"(source {source or '?'})"
        )
    raise NoBlockDevice(
        f"Docker's data root {path} is on device {number}, which is not a block device"
    )
