"""Query analysis: keywords and filters read from a natural-language question.

Understood inside a question (and removed from the text that is embedded):

- ``tag:NAME`` or ``#NAME`` — only results tagged NAME (several: any of them);
- ``type:short_term|working|long_term|shared`` — memory kinds;
- ``in:memory`` / ``in:knowledge`` — search one source only;
- ``doc:ID`` — one knowledge document;
- ``since:YYYY-MM-DD`` / ``until:YYYY-MM-DD`` (UTC days, ``until`` inclusive);
- time phrases kept in the text but also read as filters: ``today``, ``yesterday``,
  ``this week``, ``last N hours|days|weeks``, ``past hour|day|week|month``.

The remaining content words are the query's keywords (for the keyword search and for
picking answer sentences).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from symbi_common.errors import InvalidArgument

from .keywords import KeywordEncoder
from .memory import MemoryKind

__all__ = ["QueryAnalysis", "QueryAnalyzer", "Scope"]

_OPERATOR = re.compile(r"(?<!\S)(tag|type|in|since|until|doc):(\S+)|(?<![\w#])#([\w][\w\-]{0,63})")
_LAST_N = re.compile(r"\b(?:last|past)\s+(\d{1,4})\s+(hour|day|week|month)s?\b", re.I)
_PAST_ONE = re.compile(r"\b(?:last|past)\s+(hour|day|week|month)\b", re.I)
_UNIT_S = {"hour": 3600.0, "day": 86400.0, "week": 7 * 86400.0, "month": 30 * 86400.0}


class Scope:
    """Which sources a question searches."""

    ALL = "all"
    MEMORY = "memory"
    KNOWLEDGE = "knowledge"


@dataclass(frozen=True, slots=True)
class QueryAnalysis:
    """The parts of a question the pipeline uses."""

    text: str
    keywords: tuple[str, ...]
    tags: tuple[str, ...] = ()
    kinds: tuple[MemoryKind, ...] = ()
    doc_ids: tuple[str, ...] = ()
    scope: str = Scope.ALL
    since: float | None = None
    until: float | None = None


class QueryAnalyzer:
    """Reads operators and time phrases out of questions."""

    def __init__(self, keywords: KeywordEncoder | None = None) -> None:
        self._keywords = keywords or KeywordEncoder()

    def analyze(self, question: str, *, now: float) -> QueryAnalysis:
        """Split ``question`` into search text, keywords and filters."""
        tags: list[str] = []
        kinds: list[MemoryKind] = []
        doc_ids: list[str] = []
        scope = Scope.ALL
        since: float | None = None
        until: float | None = None

        for m in _OPERATOR.finditer(question):
            op, value, hashtag = m.group(1), m.group(2), m.group(3)
            if hashtag:
                tags.append(hashtag)
            elif op == "tag":
                tags.append(value)
            elif op == "type":
                try:
                    kinds.append(MemoryKind(value.lower()))
                except ValueError:
                    raise InvalidArgument(
                        f"type:{value} is not a memory type; allowed: "
                        f"{', '.join(k.value for k in MemoryKind)}",
                        reason="BAD_QUERY_OPERATOR",
                    ) from None
            elif op == "in":
                if value.lower() not in (Scope.MEMORY, Scope.KNOWLEDGE):
                    raise InvalidArgument(
                        f"in:{value} is not a source; allowed: memory, knowledge",
                        reason="BAD_QUERY_OPERATOR",
                    )
                scope = value.lower()
            elif op == "doc":
                doc_ids.append(value)
            elif op == "since":
                since = _day(value, "since")
            else:
                until = _day(value, "until") + 86400.0 - 1e-3
        text = " ".join(_OPERATOR.sub(" ", question).split())

        lowered = text.lower()
        today = dt.datetime.fromtimestamp(now, dt.UTC).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        if since is None:
            if m2 := _LAST_N.search(lowered):
                since = now - int(m2.group(1)) * _UNIT_S[m2.group(2).lower()]
            elif m3 := _PAST_ONE.search(lowered):
                since = now - _UNIT_S[m3.group(1).lower()]
            elif re.search(r"\btoday\b", lowered):
                since = today.timestamp()
            elif re.search(r"\byesterday\b", lowered):
                since = (today - dt.timedelta(days=1)).timestamp()
                until = until if until is not None else today.timestamp() - 1e-3
            elif re.search(r"\bthis week\b", lowered):
                since = (today - dt.timedelta(days=today.weekday())).timestamp()
        if since is not None and until is not None and since > until:
            raise InvalidArgument("since is after until", reason="BAD_QUERY_OPERATOR")
        if not text:
            text = " ".join(tags) or question.strip()
        return QueryAnalysis(
            text=text,
            keywords=tuple(self._keywords.keywords(text)),
            tags=tuple(dict.fromkeys(tags)),
            kinds=tuple(dict.fromkeys(kinds)),
            doc_ids=tuple(dict.fromkeys(doc_ids)),
            scope=scope,
            since=since,
            until=until,
        )


def _day(value: str, op: str) -> float:
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(
            f"{op}:{value} is not a date; use YYYY-MM-DD", reason="BAD_QUERY_OPERATOR"
        ) from None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
