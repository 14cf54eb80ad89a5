"""Base images for sandboxed tasks, built locally from Debian packages.

Production nodes pull images from a registry as usual. Development machines and CI reach no
container registry, so ``symbi sandbox build-images`` builds the two base images here:

- ``symbi/busybox`` — the static busybox binary (Debian ``busybox-static``) with its applets,
  ``/etc/passwd`` naming ``nobody`` (65534) and empty ``/tmp``; about 2 MB.
- ``symbi/python`` — Debian's ``python3`` and the shared libraries it needs, downloaded with
  ``apt-get download`` (the machine's own apt configuration) and unpacked with ``dpkg-deb -x``
  into one root filesystem, plus busybox for a shell. No package manager and no maintainer
  scripts end up in the image.

Both are packed with :mod:`tarfile` and loaded with ``docker import``. Each image carries the
label ``symbi.image.recipe``; ``if_missing`` rebuilds only images that are absent or were built
by an older recipe. This module blocks (it is called from the CLI, never on an event loop).
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from symbi_common.errors import FailedPrecondition, NotFound, Unavailable

__all__ = [
    "BUSYBOX_IMAGE",
    "IMAGES",
    "PYTHON_IMAGE",
    "BuiltImage",
    "ImageRecipe",
    "build_images",
]

_log = logging.getLogger(__name__)

BUSYBOX_IMAGE = "symbi/busybox:latest"
PYTHON_IMAGE = "symbi/python:latest"
RECIPE_LABEL = "symbi.image.recipe"

# Packages an image without a package manager never needs, and whose dependency trees
# (perl, dpkg) would triple the image: apt-cache lists them because Debian's python3
# package scripts use them at install time.
_EXCLUDED_PACKAGES = frozenset(
    {"dpkg", "install-info", "tar", "mailcap", "mime-support", "debconf", "readline-common"}
)
_EXCLUDED_PREFIXES = ("perl", "libperl")

# Stdlib parts an agent has no use for in a sandbox without a display or a network.
_PYTHON_PRUNE = ("test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data")

_CMD_TIMEOUT_S = 600.0
_IMPORT_TIMEOUT_S = 300

ProgressSink = Callable[[str], None]


@dataclass(frozen=True)
class ImageRecipe:
    """How to build one base image: a name, a recipe version and a root filesystem builder."""

    name: str
    version: str
    description: str
    populate: Callable[[Path, ProgressSink], None]
    command: tuple[str, ...]


@dataclass(frozen=True)
class BuiltImage:
    """The outcome for one image: built (with how long it took) or kept as it was."""

    name: str
    image_id: str
    built: bool
    seconds: float


def _busybox_binary() -> Path:
    for candidate in (Path("/bin/busybox"), Path("/usr/bin/busybox")):
        if candidate.is_file():
            if not _is_static_elf(candidate):
                raise FailedPrecondition(
                    f"{candidate} is dynamically linked; the images need a static busybox: "
                    "install Debian's busybox-static (scripts/ensure-host.sh does)",
                    reason="BUSYBOX_NOT_STATIC",
                )
            return candidate
    raise NotFound(
        "busybox was not found in /bin or /usr/bin; install Debian's busybox-static "
        "(scripts/ensure-host.sh does)",
        reason="BUSYBOX_MISSING",
    )


def _is_static_elf(path: Path) -> bool:
    """True when the ELF file has no program interpreter (PT_INTERP), i.e. is static."""
    with path.open("rb") as f:
        header = f.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2:  # 64-bit ELF only
            return False
        (phoff,) = struct.unpack_from("<Q", header, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    pt_interp = 3
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != pt_interp for i in range(phnum))


def _install_busybox(root: Path) -> None:
    binary = _busybox_binary()
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(binary, bin_dir / "busybox")
    applets = subprocess.run(
        [str(binary), "--list"],
        check=True,
        capture_output=True,
        text=True,
        timeout=_CMD_TIMEOUT_S,
    ).stdout.split()
    for applet in applets:
        link = bin_dir / applet
        if applet != "busybox" and not link.exists() and not link.is_symlink():
            link.symlink_to("busybox")


def _install_base_files(root: Path) -> None:
    etc = root / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    )
    (etc / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    for directory in ("tmp", "root", "run/symbi", "agent", "opt/symbi/sdk", "proc", "sys", "dev"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)


def _populate_busybox(root: Path, progress: ProgressSink) -> None:
    progress("copying the static busybox and its applets")
    _install_base_files(root)
    _install_busybox(root)


def _run(cmd: Sequence[str], *, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(
            list(cmd), cwd=cwd, check=True, capture_output=True, text=True, timeout=_CMD_TIMEOUT_S
        )
    except FileNotFoundError as exc:
        raise FailedPrecondition(
            f"{cmd[0]} is not installed; building symbi/python needs Debian's apt and dpkg",
            reason="TOOL_MISSING",
        ) from exc
    except subprocess.CalledProcessError as exc:
        raise Unavailable(
            f"{' '.join(cmd[:3])} … failed with exit {exc.returncode}: {exc.stderr.strip()[-800:]}",
            reason="IMAGE_BUILD_STEP_FAILED",
        ) from exc
    return done.stdout


def _python_packages() -> list[str]:
    """Debian's ``python3`` and its run-time dependency closure, minus install-time tools."""
    out = _run(
        [
            "apt-cache",
            "depends",
            "--recurse",
            "--no-recommends",
            "--no-suggests",
            "--no-conflicts",
            "--no-breaks",
            "--no-replaces",
            "--no-enhances",
            "python3",
        ]
    )
    names = sorted(
        {
            line.strip()
            for line in out.splitlines()
            if line and not line.startswith(" ") and not line.startswith("<")
        }
    )
    return [
        n for n in names if n not in _EXCLUDED_PACKAGES and not n.startswith(_EXCLUDED_PREFIXES)
    ]


def _populate_python(root: Path, progress: ProgressSink) -> None:
    policy = _run(["apt-cache", "policy", "python3"])
    if not policy.strip() or "Candidate: (none)" in policy:
        progress("apt has no package lists yet: running apt-get update")
        _run(["apt-get", "update", "-qq"])
    packages = _python_packages()
    progress(f"downloading {len(packages)} Debian packages (python3 and its libraries)")
    debs = root.parent / "debs"
    debs.mkdir()
    _run(["apt-get", "download", "-qq", *packages], cwd=debs)
    files = sorted(debs.glob("*.deb"))
    progress(f"unpacking {len(files)} packages")
    for deb in files:
        _run(["dpkg-deb", "-x", str(deb), str(root)])
    shutil.rmtree(debs)
    for sub in ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/lintian"):
        shutil.rmtree(root / sub, ignore_errors=True)
    for stdlib in (root / "usr/lib").glob("python3.*"):
        for name in _PYTHON_PRUNE:
            shutil.rmtree(stdlib / name, ignore_errors=True)
    # The unpacked tree has separate /bin and /usr/bin; busybox goes to /bin, python3 stays
    # in /usr/bin, so PATH needs both (set by the recipe's Env).
    _install_base_files(root)
    _install_busybox(root)
    progress("building the dynamic linker cache")
    _run(["ldconfig", "-r", str(root)])
    progress("precompiling the standard library")
    _precompile_stdlib(root)


def _precompile_stdlib(root: Path) -> None:
    # The image's root is read-only at run time, so Python cannot write .pyc files then;
    # compiling now saves every task the parse of each stdlib module it imports.
    python = next((root / "usr/bin").glob("python3.*[0-9]"), None)
    if python is None:
        raise Unavailable("the unpacked packages contain no /usr/bin/python3.X", reason="NO_PYTHON")
    _run(
        [
            "chroot",
            str(root),
            f"/usr/bin/{python.name}",
            "-m",
            "compileall",
            "-q",
            f"/usr/lib/{python.name}",
        ]
    )


IMAGES: tuple[ImageRecipe, ...] = (
    ImageRecipe(
        name=BUSYBOX_IMAGE,
        version="1",
        description="static busybox (Debian busybox-static)",
        populate=_populate_busybox,
        command=("/bin/sh",),
    ),
    ImageRecipe(
        name=PYTHON_IMAGE,
        version="1",
        description="Debian python3 with its libraries, and busybox",
        populate=_populate_python,
        command=("/usr/bin/python3",),
    ),
)


def _tar_filter(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _import(client: Any, recipe: ImageRecipe, root: Path, work: Path) -> str:
    archive = work / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        for entry in sorted(os.listdir(root)):
            tar.add(root / entry, arcname=entry, filter=_tar_filter)
    repository, _, tag = recipe.name.partition(":")
    changes = [
        f'LABEL {RECIPE_LABEL}="{recipe.version}"',
        'ENV PATH="/usr/local/bin:/usr/bin:/bin"',
        "USER 65534:65534",
        "WORKDIR /tmp",
        "CMD [" + ", ".join(f'"{c}"' for c in recipe.command) + "]",
    ]
    client.api.import_image_from_file(
        str(archive), repository=repository, tag=tag or "latest", changes=changes
    )
    image = client.images.get(recipe.name)
    return str(image.id)


def _existing_id(client: Any, name: str) -> str | None:
    import docker.errors

    try:
        return str(client.images.get(name).id)
    except docker.errors.ImageNotFound:
        return None


def _remove_quietly(client: Any, image_id: str) -> None:
    """Drops the image a rebuild replaced (kept if a container still uses it)."""
    import docker.errors

    try:
        client.images.remove(image_id)
    except docker.errors.APIError as exc:
        _log.info("kept the replaced image %s: %s", image_id[:19], exc)


def _current(client: Any, recipe: ImageRecipe) -> str | None:
    """The id of the image when it exists and was built by this recipe version."""
    import docker.errors

    try:
        image = client.images.get(recipe.name)
    except docker.errors.ImageNotFound:
        return None
    labels = (image.attrs.get("Config") or {}).get("Labels") or {}
    if labels.get(RECIPE_LABEL) != recipe.version:
        return None
    return str(image.id)


def _prefixed(say: ProgressSink, name: str) -> ProgressSink:
    def emit(line: str) -> None:
        say(f"{name}: {line}")

    return emit


def build_images(
    client: Any,
    *,
    if_missing: bool = False,
    names: Sequence[str] | None = None,
    progress: ProgressSink | None = None,
) -> list[BuiltImage]:
    """Builds the base images (all, or those in ``names``) with the given docker client.

    With ``if_missing`` an image that exists and was built by the current recipe is kept.
    ``progress`` receives one line per step; the work can take a minute (package downloads).
    """
    say = progress or (lambda line: _log.info("%s", line))
    wanted = [
        r for r in IMAGES if names is None or r.name in names or r.name.split(":")[0] in names
    ]
    if names is not None and not wanted:
        known = ", ".join(r.name for r in IMAGES)
        raise NotFound(f"no image recipe named {', '.join(names)}; known: {known}")
    results: list[BuiltImage] = []
    for recipe in wanted:
        existing = _current(client, recipe) if if_missing else None
        if existing is not None:
            say(f"{recipe.name}: present (recipe {recipe.version}), kept")
            results.append(BuiltImage(recipe.name, existing, built=False, seconds=0.0))
            continue
        previous = _existing_id(client, recipe.name)
        started = time.monotonic()
        say(f"{recipe.name}: building ({recipe.description})")
        with tempfile.TemporaryDirectory(prefix="symbi-image-") as tmp:
            work = Path(tmp)
            root = work / "rootfs"
            root.mkdir()
            recipe.populate(root, _prefixed(say, recipe.name))
            say(f"{recipe.name}: importing into docker")
            image_id = _import(client, recipe, root, work)
        seconds = time.monotonic() - started
        if previous is not None and previous != image_id:
            _remove_quietly(client, previous)
        say(f"{recipe.name}: built {image_id[:19]} in {seconds:.1f} s")
        results.append(BuiltImage(recipe.name, image_id, built=True, seconds=seconds))
    return results
