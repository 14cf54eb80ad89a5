"""Policy documents → checked, compiled policies, or errors that say where.

A *document* is a named unit of Cedar text (one `.cedar` file, or one agent's compiled DSL
policy block) holding one or more policies. Compiling parses it with Cedar, validates it
against Symbi's schema, reads the annotation vocabulary (:mod:`symbi_policy.annotations`)
and assigns each policy its stable id. Every problem found is reported with its document,
policy, line and column: cedarpy gives none of those for parse errors, so they are found
here (:mod:`symbi_policy.cedar_text`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import cedarpy

from symbi_policy.annotations import Condition, parse_conditions, validate_policy_id
from symbi_policy.cedar_text import (
    LexError,
    Statement,
    find_fragment,
    position_at,
    split_statements,
    tokenize,
)
from symbi_policy.errors import PolicyProblem, PolicyValidationError
from symbi_policy.schema import NAMESPACE, symbi_schema

__all__ = [
    "DOCUMENT_NAME_PATTERN",
    "CompiledDocument",
    "CompiledPolicy",
    "PolicyCompiler",
    "validate_document_name",
]

#: Document names: usable as KV keys and file paths (`agents/analyst`, `base.network`).
DOCUMENT_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,127}")

#: Batches smaller than this compile on the calling thread (a pool costs more than it saves).
_PARALLEL_FROM = 64
_EOF = "unexpected end of input"
_ACTION_TYPE = f"{NAMESPACE}::Action"
_UNEXPECTED_SEMICOLON = "unexpected token `;`"
_BACKTICKED = re.compile(r"`([^`]+)`")
_FOR_POLICY = re.compile(r"^for policy `[^`]*`,\s*")


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """One checked policy, ready to join a policy set."""

    id: str
    document: str
    index: int
    effect: str  # "permit" | "forbid"
    conditions: tuple[Condition, ...]
    reason: str | None
    line: int
    column: int
    #: The policy in Cedar's JSON form (EST), serialized: policy sets are assembled from it
    #: with the ids above, so decisions name policies by their stable ids.
    est_json: str
    #: The actions the policy's scope admits (None: any action). Used to index the set.
    actions: frozenset[str] | None = None
    #: The principal when the scope is ``principal == <uid>`` (type, id), else None.
    principal: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class CompiledDocument:
    """A document that passed every check."""

    name: str
    digest: str  # sha256 of the text, hex
    policies: tuple[CompiledPolicy, ...]
    #: The text it was compiled from (tells an unchanged document from a changed one).
    source: str = field(default="", compare=False, repr=False)


def validate_document_name(name: str) -> None:
    """Raise PolicyValidationError unless ``name`` is a valid document name."""
    if DOCUMENT_NAME_PATTERN.fullmatch(name) is None:
        raise PolicyValidationError(
            [
                PolicyProblem(
                    name or "<empty>",
                    1,
                    1,
                    f"invalid document name {name!r}: use 1-128 characters from letters, "
                    "digits and _ . / -, starting with a letter or digit",
                )
            ]
        )


class PolicyCompiler:
    """Compiles documents against one schema; remembers recent results (bounded).

    Thread-safe: ``compile`` may run in worker threads and on the event loop at once.
    """

    def __init__(
        self,
        schema: cedarpy.Schema | None = None,
        *,
        cache_size: int = 4096,
        workers: int | None = None,
    ) -> None:
        """``workers``: threads :meth:`compile_many` uses for large batches (default: the
        CPUs this process may use, at most 4)."""
        self._schema = schema if schema is not None else symbi_schema()
        self._cache: OrderedDict[tuple[str, str], CompiledDocument] = OrderedDict()
        self._cache_size = cache_size
        # The reloader compiles in a worker thread while PutPolicy compiles on the loop.
        self._lock = threading.Lock()
        self._workers = workers if workers is not None else min(4, _usable_cpus())

    @property
    def schema(self) -> cedarpy.Schema:
        """The schema policies are validated against."""
        return self._schema

    def compile(self, name: str, text: str, *, release_gil: bool = False) -> CompiledDocument:
        """Check ``text`` as document ``name``; raise PolicyValidationError listing problems.

        ``release_gil``: let other threads run while Cedar validates. Worth it in worker
        threads; on the event loop it is not, because taking the GIL back from a busy
        thread can wait a whole switch interval (5 ms).
        """
        key = (name, text)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        compiled = self._compile(name, text, release_gil)
        with self._lock:
            self._cache[key] = compiled
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return compiled

    def has_compiled(self, name: str, text: str) -> bool:
        """Whether ``compile(name, text)`` would answer from the cache (valid and recent)."""
        with self._lock:
            return (name, text) in self._cache

    def compile_many(
        self, documents: Sequence[tuple[str, str]]
    ) -> list[CompiledDocument | PolicyValidationError]:
        """Compile (name, text) pairs; each result is the document or why it is invalid.

        Large batches (a replica starting on thousands of stored documents) are spread over
        worker threads: Cedar validates without holding the GIL, so on N cores up to N
        documents validate at once while another thread tokenizes.
        """

        parallel = self._workers > 1 and len(documents) >= _PARALLEL_FROM

        def one(document: tuple[str, str]) -> CompiledDocument | PolicyValidationError:
            try:
                return self.compile(*document, release_gil=parallel)
            except PolicyValidationError as exc:
                return exc

        if not parallel:
            return [one(d) for d in documents]
        with ThreadPoolExecutor(self._workers, thread_name_prefix="policy-compile") as pool:
            return list(pool.map(one, documents, chunksize=16))

    def _compile(self, name: str, text: str, release_gil: bool) -> CompiledDocument:
        validate_document_name(name)
        tokens, lex_error = tokenize(text)
        statements = split_statements(tokens)
        if lex_error is not None:
            raise PolicyValidationError([_lex_problem(name, text, statements, lex_error)])
        if not statements:
            raise PolicyValidationError(
                [PolicyProblem(name, 1, 1, "document contains no policies")]
            )
        try:
            # Parses with Cedar's parser (what PolicySet.from_str runs) and converts.
            est = json.loads(cedarpy.policies_to_json_str(text))
        except ValueError as exc:
            whole = _parses(text) or str(exc)
            raise PolicyValidationError(_parse_problems(name, text, statements, whole)) from None
        problems: list[PolicyProblem] = []
        ids = [_generated_or_declared_id(name, s) for s in statements]
        for template_key in est.get("templates") or {}:
            stmt = statements[_positional_index(template_key, len(statements))]
            offset = next((t.start for t in stmt.tokens if t.text.startswith("?")), stmt.start)
            problems.append(
                _problem(
                    name,
                    text,
                    offset,
                    ids[stmt.index],
                    "templates (`?principal` / `?resource` slots) are not supported: "
                    "name the entity, or use `principal in <group>`",
                )
            )
        if not problems:
            problems.extend(self._schema_problems(name, text, statements, ids, release_gil))

        static: dict[str, dict[str, Any]] = est.get("staticPolicies") or {}
        compiled: list[CompiledPolicy] = []
        seen_ids: dict[str, int] = {}
        for key, policy in static.items():
            stmt = statements[_positional_index(key, len(statements))]
            built = _compile_policy(name, text, stmt, policy, problems)
            if built is None:
                continue
            if built.id in seen_ids:
                problems.append(
                    _problem(
                        name,
                        text,
                        _annotation_offset(stmt, "id"),
                        built.id,
                        f"duplicate policy id {built.id!r}: also used by the policy at "
                        f"statement {seen_ids[built.id] + 1} of this document",
                    )
                )
                continue
            seen_ids[built.id] = stmt.index
            compiled.append(built)
        if problems:
            raise PolicyValidationError(sorted(problems, key=lambda p: (p.line, p.column)))
        compiled.sort(key=lambda p: p.index)
        digest = hashlib.sha256(text.encode()).hexdigest()
        return CompiledDocument(name, digest, tuple(compiled), text)

    def _schema_problems(
        self,
        name: str,
        text: str,
        statements: list[Statement],
        ids: list[str],
        release_gil: bool,
    ) -> list[PolicyProblem]:
        result = cedarpy.validate_policies(text, self._schema, release_gil=release_gil)
        if result.validation_passed:
            return []
        problems = []
        for error in result.errors:
            message = _FOR_POLICY.sub("", error.error)
            if error.policy_id.startswith("policy"):
                stmt = statements[_positional_index(error.policy_id, len(statements))]
                offset = _fragment_offset(stmt, message) or stmt.start
                problems.append(_problem(name, text, offset, ids[stmt.index], message))
            else:
                problems.append(PolicyProblem(name, 1, 1, message))
        return problems


def _compile_policy(
    name: str, text: str, stmt: Statement, policy: dict[str, Any], problems: list[PolicyProblem]
) -> CompiledPolicy | None:
    annotations: dict[str, str] = {
        k: ("" if v is None else str(v)) for k, v in (policy.get("annotations") or {}).items()
    }
    effect = str(policy["effect"])
    policy_id = f"{name}#{stmt.index}"
    before = len(problems)
    if "id" in annotations:
        error = validate_policy_id(annotations["id"])
        if error is None:
            policy_id = annotations["id"]
        else:
            problems.append(_problem(name, text, _annotation_offset(stmt, "id"), policy_id, error))
    conditions: tuple[Condition, ...] = ()
    if "condition" in annotations:
        offset = _annotation_offset(stmt, "condition")
        if effect != "permit":
            problems.append(
                _problem(
                    name,
                    text,
                    offset,
                    policy_id,
                    "@condition applies to permit policies only: a forbid has nothing to "
                    "condition (use @reason to explain a deny)",
                )
            )
        else:
            conditions, error = parse_conditions(annotations["condition"])
            if error is not None:
                problems.append(_problem(name, text, offset, policy_id, error))
    if len(problems) > before:
        return None
    position = position_at(text, stmt.start)
    policy.pop("annotations", None)
    # Annotations stay out of the assembled set: the engine keeps them here, and leaving
    # them out keeps `@id` values from being confused with Cedar's own policy ids.
    return CompiledPolicy(
        id=policy_id,
        document=name,
        index=stmt.index,
        effect=effect,
        conditions=conditions,
        reason=annotations.get("reason") or None,
        line=position.line,
        column=position.column,
        est_json=json.dumps(policy, separators=(",", ":")),
        actions=_scope_actions(policy.get("action")),
        principal=_scope_principal(policy.get("principal")),
    )


def _scope_actions(scope: Any) -> frozenset[str] | None:
    """Action ids an EST action constraint admits; None when it admits any (or is unusual)."""
    if not isinstance(scope, dict):
        return None
    op = scope.get("op")
    if op == "==":
        entities = [scope.get("entity")]
    elif op == "in":
        entities = scope.get("entities") or [scope.get("entity")]
    else:
        return None
    ids = set()
    for entity in entities:
        if not isinstance(entity, dict) or entity.get("type") != _ACTION_TYPE:
            return None  # be conservative: index as "any action"
        ids.add(str(entity.get("id")))
    return frozenset(ids)


def _scope_principal(scope: Any) -> tuple[str, str] | None:
    if isinstance(scope, dict) and scope.get("op") == "==":
        entity = scope.get("entity")
        if isinstance(entity, dict) and "type" in entity and "id" in entity:
            return (str(entity["type"]), str(entity["id"]))
    return None


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _positional_index(policy_id: str, count: int) -> int:
    # Cedar names the policies of one parsed text policy0, policy1, … in statement order.
    index = int(policy_id.removeprefix("policy"))
    if not 0 <= index < count:
        raise ValueError(f"Cedar policy id {policy_id!r} out of range for {count} statements")
    return index


def _generated_or_declared_id(name: str, stmt: Statement) -> str:
    tokens = stmt.tokens
    for i in range(len(tokens) - 4):
        if (
            tokens[i].text == "@"
            and tokens[i + 1].text == "id"
            and tokens[i + 2].text == "("
            and tokens[i + 3].text.startswith('"')
        ):
            return tokens[i + 3].text[1:-1]
    return f"{name}#{stmt.index}"


def _annotation_offset(stmt: Statement, key: str) -> int:
    tokens = stmt.tokens
    for i in range(len(tokens) - 1):
        if tokens[i].text == "@" and tokens[i + 1].text == key:
            return tokens[i].start
    return stmt.start


def _problem(name: str, text: str, offset: int, policy: str, message: str) -> PolicyProblem:
    position = position_at(text, offset)
    return PolicyProblem(name, position.line, position.column, message, policy)


def _lex_problem(
    name: str, text: str, statements: list[Statement], error: LexError
) -> PolicyProblem:
    # The failing statement is the one after the last complete one before the error.
    index = sum(1 for s in statements if s.terminated and s.end <= error.offset)
    policy = f"{name}#{index}"
    if index < len(statements):
        policy = _generated_or_declared_id(name, statements[index])
    return _problem(name, text, error.offset, policy, f"invalid token: {error.problem}")


def _parse_problems(
    name: str, text: str, statements: list[Statement], whole_error: str
) -> list[PolicyProblem]:
    problems = []
    for stmt in statements:
        problem = _locate_parse_error(name, text, stmt)
        if problem is not None:
            problems.append(problem)
    if not problems:
        # Every statement parses alone yet the whole does not: report the whole.
        problems.append(PolicyProblem(name, 1, 1, whole_error))
    return problems


def _parses(source: str) -> str | None:
    try:
        cedarpy.PolicySet.from_str(source)
    except ValueError as exc:
        return str(exc)
    return None


def _locate_parse_error(name: str, text: str, stmt: Statement) -> PolicyProblem | None:
    policy = _generated_or_declared_id(name, stmt)
    message = _parses(text[stmt.start : stmt.end])
    if message is None:
        return None
    # Find the first token the parser rejects by bisecting over prefixes. Cedar's parser
    # recovers from errors and then prefers to report "unexpected end of input", so each
    # prefix gets a `;` appended: a prefix that can still become a policy then fails only
    # on that `;` (or parses), one that cannot fails on its own bad token, and stays
    # failing however much is added after it.
    tokens = stmt.tokens

    def viable(count: int) -> bool:
        error = _parses(text[stmt.start : tokens[count - 1].end] + " ;")
        # Errors that are not about a token (an unknown function, a bad escape) only show
        # once the policy is whole; they say nothing about where the syntax went wrong.
        return error is None or error == _UNEXPECTED_SEMICOLON or not _is_syntax_error(error)

    lo, hi = 1, len(tokens) + 1  # hi: "no prefix is non-viable"
    while lo < hi:
        mid = (lo + hi) // 2
        if viable(mid):
            lo = mid + 1
        else:
            hi = mid
    if lo <= len(tokens) and not (lo == len(tokens) and stmt.terminated):
        prefix_error = _parses(text[stmt.start : tokens[lo - 1].end] + " ;") or message
        return _problem(name, text, tokens[lo - 1].start, policy, prefix_error)
    if not stmt.terminated:
        return _problem(name, text, stmt.end, policy, f"{_EOF}: missing `;`")
    if _is_syntax_error(message):
        return _problem(name, text, tokens[-1].start, policy, message)
    # The statement is syntactically whole; Cedar rejected a part of it (an unknown
    # function, a bad escape, ...). Find the part the message quotes.
    offset = _fragment_offset(stmt, message)
    return _problem(name, text, stmt.start if offset is None else offset, policy, message)


def _is_syntax_error(message: str) -> bool:
    return message.startswith(("unexpected token", "invalid token"))


def _fragment_offset(stmt: Statement, message: str) -> int | None:
    candidates: list[tuple[str, int]] = [(f, 1) for f in _BACKTICKED.findall(message)]
    if message.startswith("duplicate annotation: "):
        candidates.insert(0, (message.split(": ", 1)[1], 2))
    elif message.startswith(("invalid policy effect: ", "invalid variable: ")):
        candidates.insert(0, (message.split(": ", 1)[1], 1))
    for fragment, occurrence in candidates:
        offset = find_fragment(stmt.tokens, fragment, occurrence=occurrence)
        if offset is None and "::" in fragment:
            # `Symbi::Action::"x"` may be written without the namespace: match the tail.
            offset = find_fragment(stmt.tokens, fragment.rsplit("::", 1)[1])
        if offset is not None:
            return offset
    return None
