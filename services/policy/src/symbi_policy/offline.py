"""Policies from files, decided without the service (``symbi policy validate`` / ``eval``).

A directory of ``*.cedar`` files is a policy set: each file is one document named by its
path relative to the directory, without the suffix (``agents/analyst.cedar`` →
``agents/analyst``). Versions are assigned as a fresh in-memory source would: documents in
name order get revisions 1..N (the policy-set version is N), the entities file N+1.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from pathlib import Path

from symbi_common.errors import InvalidArgument
from symbi_policy.audit import QueueAuditSink
from symbi_policy.compiler import CompiledDocument, PolicyCompiler
from symbi_policy.engine import EngineConfig, PolicyEngine
from symbi_policy.errors import PolicyProblem, PolicyValidationError
from symbi_policy.source import EntitiesDocument, PolicyDocument, SourceSnapshot

__all__ = ["load_policy_directory", "offline_engine", "validate_files"]

POLICY_SUFFIX = ".cedar"
_UNSAFE = re.compile(r"[^A-Za-z0-9_./-]")


def validate_files(
    paths: Iterable[Path], compiler: PolicyCompiler | None = None
) -> tuple[list[tuple[Path, CompiledDocument]], list[PolicyProblem]]:
    """Compile each file on its own; problems name the file as given."""
    compiler = compiler or PolicyCompiler()
    ok: list[tuple[Path, CompiledDocument]] = []
    problems: list[PolicyProblem] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(PolicyProblem(str(path), 1, 1, f"cannot read: {exc}"))
            continue
        try:
            ok.append((path, compiler.compile(_document_name(path.stem), text)))
        except PolicyValidationError as exc:
            problems.extend(dataclasses.replace(p, document=str(path)) for p in exc.problems)
    return ok, problems


def load_policy_directory(directory: Path, entities_file: Path | None = None) -> SourceSnapshot:
    """A snapshot of every ``*.cedar`` file under ``directory`` (recursively) and the entities.

    Raises InvalidArgument when the directory has no policy files or cannot be read.
    """
    if not directory.is_dir():
        raise InvalidArgument(f"--policies must be a directory of *.cedar files: {directory}")
    files = sorted(p for p in directory.rglob(f"*{POLICY_SUFFIX}") if p.is_file())
    if not files:
        raise InvalidArgument(f"no *.cedar files under {directory}")
    documents = []
    for revision, path in enumerate(files, start=1):
        relative = path.relative_to(directory).with_suffix("").as_posix()
        documents.append(
            PolicyDocument(_document_name(relative), _read(path), revision, origin="cedar")
        )
    entities = None
    if entities_file is not None:
        entities = EntitiesDocument(_read(entities_file), len(files) + 1)
    return SourceSnapshot(tuple(documents), entities, len(files))


def offline_engine(
    directory: Path, entities_file: Path | None = None, *, config: EngineConfig | None = None
) -> PolicyEngine:
    """An engine with the directory's policies in force (PolicyValidationError if invalid)."""
    engine = PolicyEngine(audit=QueueAuditSink(), config=config)
    engine.apply(load_policy_directory(directory, entities_file))
    return engine


def _document_name(raw: str) -> str:
    # File names may hold characters document names do not (spaces, `+`): replace them,
    # so a file is never refused for its name alone.
    name = _UNSAFE.sub("_", raw).lstrip("./-_") or "policy"
    return name[:128]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"cannot read {path}: {exc}") from None
