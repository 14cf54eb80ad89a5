"""Diagnostics: what is wrong, where, and a hint — and the errors that carry them.

::

    InvalidArgument (symbi_common.errors)
    └── DslError                 carries ``diagnostics``
        ├── DslSyntaxError       the text does not parse
        └── DslValidationError   it parses, but a limit, tier, capability or policy is wrong
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from symbi_common.errors import InvalidArgument

__all__ = [
    "Diagnostic",
    "DslError",
    "DslSyntaxError",
    "DslValidationError",
    "Severity",
]


class Severity(enum.Enum):
    """How bad a diagnostic is: an error rejects the source, a warning does not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem at one place. ``line`` and ``column`` are 1-based (0 when unknown)."""

    file: str
    line: int
    column: int
    message: str
    hint: str = ""
    severity: Severity = Severity.ERROR
    #: A short stable identifier (``syntax``, ``resource-limit``, ``sandbox-tier``, ...).
    code: str = "syntax"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        text = f"{where}: {self.severity.value}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form (``severity`` as its string value)."""
        data = asdict(self)
        data["severity"] = self.severity.value
        return data


class DslError(InvalidArgument):
    """A DSL text or agent definition was rejected; ``diagnostics`` lists every problem found."""

    def __init__(self, diagnostics: Iterable[Diagnostic], *, summary: str) -> None:
        diags = tuple(diagnostics)
        first = diags[0] if diags else None
        lines = [str(d) for d in diags]
        message = summary if not lines else f"{summary}:\n" + "\n".join(lines)
        details = {
            "count": str(len(diags)),
            "diagnostics": json.dumps([d.to_dict() for d in diags]),
        }
        if first is not None:
            details.update(file=first.file, line=str(first.line), column=str(first.column))
        super().__init__(message, details=details)
        self.diagnostics: tuple[Diagnostic, ...] = diags

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        """The diagnostics of severity ERROR."""
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)


class DslSyntaxError(DslError):
    """The text is not valid DSL; never a parser traceback."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        diags = tuple(diagnostics)
        noun = "error" if len(diags) == 1 else "errors"
        super().__init__(diags, summary=f"DSL syntax: {len(diags)} {noun}")


class DslValidationError(DslError):
    """The text parses but does not describe a valid agent."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        diags = tuple(diagnostics)
        count = sum(1 for d in diags if d.severity is Severity.ERROR)
        noun = "problem" if count == 1 else "problems"
        super().__init__(diags, summary=f"agent definition: {count} {noun}")
