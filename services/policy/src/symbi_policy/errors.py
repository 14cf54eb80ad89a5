"""Errors of the policy domain, all within the ``symbi_common.errors`` tree.

::

    InvalidArgument
    └── PolicyValidationError      a document (policies or entities) failed validation;
                                   carries every PolicyProblem found, each with a position
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from symbi_common.errors import InvalidArgument

__all__ = ["PolicyProblem", "PolicyValidationError"]


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """One thing wrong with a document: where (document, policy, line, column) and what."""

    document: str
    line: int
    column: int
    message: str
    #: The policy's id (``@id`` or ``<document>#<index>``), or "" when the problem is not
    #: inside one policy (e.g. an empty document, or an entities file).
    policy: str = ""

    def __str__(self) -> str:
        where = f"{self.document}:{self.line}:{self.column}"
        return (
            f"{where}: policy {self.policy}: {self.message}"
            if self.policy
            else f"{where}: {self.message}"
        )


class PolicyValidationError(InvalidArgument):
    """A policy or entities document was rejected; ``problems`` lists what and where."""

    def __init__(self, problems: Sequence[PolicyProblem]) -> None:
        if not problems:
            raise ValueError("PolicyValidationError needs at least one problem")
        self.problems: tuple[PolicyProblem, ...] = tuple(problems)
        first = self.problems[0]
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(
            f"{first}{more}",
            reason="POLICY_INVALID",
            details={
                "document": first.document,
                "policy": first.policy,
                "line": str(first.line),
                "column": str(first.column),
                "problem": first.message,
                "problems": str(len(self.problems)),
            },
        )
