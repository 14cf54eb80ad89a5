"""Test material: the published reference (beside the clone) and the project's examples.

The reference documents and agents come from outside the project; they are read in place
from ``<repo>/../shared/reference`` (CI places ``shared/`` beside the clone), never copied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]
REFERENCE = REPO.parent / "shared" / "reference"
REFERENCE_AGENTS = REFERENCE / "agents"
EXAMPLES = REPO / "examples" / "agents"

_FENCE = re.compile(
    r"^(?P<quote>>? ?)```(?P<lang>[\w-]*)\n(?P<body>.*?)^(?P=quote)```", re.S | re.M
)
_TOP_LEVEL = re.compile(r"^(metadata|agent|policy|type|function|schedule|channel|memory|webhook)\b")
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')


@dataclass(frozen=True)
class CodeBlock:
    """A fenced code block of a reference document."""

    document: str
    line: int
    lang: str
    body: str
    quoted: bool  # inside a `>` block quote
    planned: bool  # marked as a planned (not yet available) feature

    @property
    def id(self) -> str:
        return f"{self.document}:{self.line}"

    def first_code_line(self) -> str:
        for line in self.body.splitlines():
            stripped = line.strip()
            if stripped and not stripped.startswith(("//", "#", "/*", "*")):
                return stripped
        return ""

    @property
    def is_program(self) -> bool:
        """A whole DSL program: its first code line opens a top-level item (or it is only
        comments)."""
        return self.lang in ("", "rust", "symbiont", "symbi") and (
            not self.first_code_line() or _TOP_LEVEL.match(self.first_code_line()) is not None
        )

    @property
    def is_synopsis(self) -> bool:
        """A syntax summary with metasyntax (``...`` or ``<expr>`` outside strings)."""
        code = _STRING.sub('""', self.body)
        return "..." in code or "<expr>" in code


def reference_blocks(*documents: str) -> list[CodeBlock]:
    """The DSL-like code blocks (``rust``, ``symbiont`` or unlabelled) of the documents."""
    out: list[CodeBlock] = []
    for name in documents:
        text = (REFERENCE / name).read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            lang = match.group("lang")
            if lang not in ("", "rust", "symbiont", "symbi"):
                continue
            quoted = bool(match.group("quote").strip())
            body = match.group("body")
            if quoted:
                body = re.sub(r"^> ?", "", body, flags=re.M)
            before = text[max(0, match.start() - 400) : match.start()]
            # The nearest preceding heading's section says whether the feature is planned.
            section = before.rsplit("\n#", 1)[-1]
            planned = "Planned feature" in section or "(planned)" in body
            line = text.count("\n", 0, match.start()) + 1
            out.append(CodeBlock(name, line, lang, body, quoted, planned))
    return out


def reference_agent_files() -> list[Path]:
    files = sorted(REFERENCE_AGENTS.glob("*.symbi"))
    assert files, (
        f"no reference agents under {REFERENCE_AGENTS} (shared/ must sit beside the clone)"
    )
    return files


def example_files() -> list[Path]:
    files = sorted(
        p for p in EXAMPLES.iterdir() if p.suffix in (".symbi", ".toml", ".yaml", ".yml")
    )
    assert files, f"no examples under {EXAMPLES}"
    return files
