"""Compliance reports: what happened in a time window, as data, JSON, Markdown and HTML.

Events are classified by convention (see ``docs/audit.md``), configurable through
:class:`ReportRules`:

- the decision of an event is ``details["decision"]`` (``allow``, ``deny``,
  ``conditional``), lower-cased; events without one count as ``none``;
- a *denied action* is an event whose decision is in ``denied_decisions``;
- a *policy change* is an event whose type is in ``policy_change_types``;
- a *sandbox violation* is an event whose type is in ``sandbox_violation_types``.
"""

from __future__ import annotations

import dataclasses
import html
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from symbi_audit.checkpoint import SignedCheckpoint
from symbi_audit.event import format_timestamp
from symbi_audit.query import LogEntry
from symbi_common.errors import InvalidArgument

__all__ = ["ComplianceReport", "ReportItem", "ReportRules", "build_report"]

_SUMMARY_KEYS = ("action", "resource", "tool", "policy_id", "change", "kind", "reason")


@dataclasses.dataclass(frozen=True, slots=True)
class ReportRules:
    """How events are classified for a report (defaults follow ``docs/audit.md``)."""

    decision_field: str = "decision"
    denied_decisions: frozenset[str] = frozenset({"deny"})
    policy_change_types: frozenset[str] = frozenset(
        {"policy.changed", "policy.put", "policy.deleted"}
    )
    sandbox_violation_types: frozenset[str] = frozenset({"sandbox.violation"})
    max_listed: int = 1000
    """At most this many events are listed per section; counts are always complete."""

    def __post_init__(self) -> None:
        if self.max_listed < 0:
            raise InvalidArgument("max_listed must be >= 0")


@dataclasses.dataclass(frozen=True, slots=True)
class ReportItem:
    """One listed event: where it is in the log and a one-line summary of its details."""

    index: int
    event_id: str
    timestamp: str
    agent_id: str
    actor: str
    event_type: str
    summary: str

    @classmethod
    def of(cls, entry: LogEntry) -> ReportItem:
        """The item for a log entry."""
        event = entry.event
        details = event.details
        parts = [f"{k}={details[k]}" for k in _SUMMARY_KEYS if k in details]
        return cls(
            index=entry.index,
            event_id=str(event.event_id),
            timestamp=format_timestamp(event.timestamp),
            agent_id=event.agent_id,
            actor=event.actor,
            event_type=event.event_type,
            summary=", ".join(parts),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class ComplianceReport:
    """Counts and notable events of one window ``[since, until)`` of the log."""

    origin: str
    since: datetime
    until: datetime
    generated_at: datetime
    total: int
    first_index: int | None
    last_index: int | None
    by_type: Mapping[str, int]
    by_agent: Mapping[str, int]
    by_decision: Mapping[str, int]
    by_tag: Mapping[str, int]
    denied_total: int
    denied: tuple[ReportItem, ...]
    policy_changes_total: int
    policy_changes: tuple[ReportItem, ...]
    sandbox_violations_total: int
    sandbox_violations: tuple[ReportItem, ...]
    checkpoint_size: int | None = None
    checkpoint_note: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (timestamps in the canonical UTC form)."""

        def items(values: tuple[ReportItem, ...]) -> list[dict[str, Any]]:
            return [dataclasses.asdict(v) for v in values]

        return {
            "origin": self.origin,
            "since": format_timestamp(self.since),
            "until": format_timestamp(self.until),
            "generated_at": format_timestamp(self.generated_at),
            "total": self.total,
            "first_index": self.first_index,
            "last_index": self.last_index,
            "by_type": dict(self.by_type),
            "by_agent": dict(self.by_agent),
            "by_decision": dict(self.by_decision),
            "by_tag": dict(self.by_tag),
            "denied": {"total": self.denied_total, "events": items(self.denied)},
            "policy_changes": {
                "total": self.policy_changes_total,
                "events": items(self.policy_changes),
            },
            "sandbox_violations": {
                "total": self.sandbox_violations_total,
                "events": items(self.sandbox_violations),
            },
            "checkpoint": None
            if self.checkpoint_note is None
            else {"size": self.checkpoint_size, "note": self.checkpoint_note},
        }

    def to_markdown(self) -> str:
        """A readable Markdown document of the report."""
        out = [
            f"# Audit compliance report — {_md(self.origin)}",
            "",
            f"- Window: {format_timestamp(self.since)} to {format_timestamp(self.until)}",
            f"- Generated: {format_timestamp(self.generated_at)}",
            f"- Events: {self.total}"
            + (
                f" (log entries {self.first_index}..{self.last_index})"
                if self.first_index is not None
                else ""
            ),
            f"- Denied actions: {self.denied_total}",
            f"- Policy changes: {self.policy_changes_total}",
            f"- Sandbox violations: {self.sandbox_violations_total}",
        ]
        if self.checkpoint_size is not None:
            out.append(f"- Anchored by the signed checkpoint at tree size {self.checkpoint_size}")
        for title, counts in (
            ("Events by type", self.by_type),
            ("Events by agent", self.by_agent),
            ("Events by decision", self.by_decision),
            ("Events by compliance tag", self.by_tag),
        ):
            out += ["", f"## {title}", ""]
            if not counts:
                out.append("None.")
                continue
            out += ["| | count |", "|---|---:|"]
            out += [f"| {_md(k) or '(none)'} | {v} |" for k, v in counts.items()]
        for title, total, listed in (
            ("Denied actions", self.denied_total, self.denied),
            ("Policy changes", self.policy_changes_total, self.policy_changes),
            ("Sandbox violations", self.sandbox_violations_total, self.sandbox_violations),
        ):
            out += ["", f"## {title}", ""]
            if not total:
                out.append("None.")
                continue
            out += [
                "| entry | time | agent | actor | type | details |",
                "|---:|---|---|---|---|---|",
            ]
            out += [
                f"| {i.index} | {i.timestamp} | {_md(i.agent_id)} | {_md(i.actor)} | "
                f"{_md(i.event_type)} | {_md(i.summary)} |"
                for i in listed
            ]
            if total > len(listed):
                out += ["", f"…and {total - len(listed)} more (see the JSON form or Query)."]
        return "\n".join(out) + "\n"

    def to_html(self) -> str:
        """A standalone HTML page of the report (every value escaped)."""
        e = html.escape
        window = f"{format_timestamp(self.since)} to {format_timestamp(self.until)}"
        out = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>Audit compliance report — {e(self.origin)}</title>",
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
            "margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}"
            "td.n{text-align:right}</style>",
            "</head><body>",
            f"<h1>Audit compliance report — {e(self.origin)}</h1>",
            "<ul>",
            f"<li>Window: {e(window)}</li>",
            f"<li>Generated: {e(format_timestamp(self.generated_at))}</li>",
            f"<li>Events: {self.total}"
            + (
                f" (log entries {self.first_index}..{self.last_index})"
                if self.first_index is not None
                else ""
            )
            + "</li>",
            f"<li>Denied actions: {self.denied_total}</li>",
            f"<li>Policy changes: {self.policy_changes_total}</li>",
            f"<li>Sandbox violations: {self.sandbox_violations_total}</li>",
        ]
        if self.checkpoint_size is not None:
            out.append(
                f"<li>Anchored by the signed checkpoint at tree size {self.checkpoint_size}</li>"
            )
        out.append("</ul>")
        for title, counts in (
            ("Events by type", self.by_type),
            ("Events by agent", self.by_agent),
            ("Events by decision", self.by_decision),
            ("Events by compliance tag", self.by_tag),
        ):
            out.append(f"<h2>{e(title)}</h2>")
            if not counts:
                out.append("<p>None.</p>")
                continue
            out.append("<table><tr><th></th><th>count</th></tr>")
            out += [
                f'<tr><td>{e(k) or "(none)"}</td><td class="n">{v}</td></tr>'
                for k, v in counts.items()
            ]
            out.append("</table>")
        for title, total, listed in (
            ("Denied actions", self.denied_total, self.denied),
            ("Policy changes", self.policy_changes_total, self.policy_changes),
            ("Sandbox violations", self.sandbox_violations_total, self.sandbox_violations),
        ):
            out.append(f"<h2>{e(title)}</h2>")
            if not total:
                out.append("<p>None.</p>")
                continue
            out.append(
                "<table><tr><th>entry</th><th>time</th><th>agent</th><th>actor</th>"
                "<th>type</th><th>details</th></tr>"
            )
            out += [
                f'<tr><td class="n">{i.index}</td><td>{e(i.timestamp)}</td>'
                f"<td>{e(i.agent_id)}</td><td>{e(i.actor)}</td><td>{e(i.event_type)}</td>"
                f"<td>{e(i.summary)}</td></tr>"
                for i in listed
            ]
            out.append("</table>")
            if total > len(listed):
                out.append(f"<p>…and {total - len(listed)} more (see the JSON form or Query).</p>")
        out.append("</body></html>")
        return "\n".join(out) + "\n"


def _md(text: str) -> str:
    # Table cells: escape the characters that would end a cell or start markup.
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("*", "\\*")


def _sorted(counter: Counter[str]) -> dict[str, int]:
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def build_report(
    entries: Iterable[LogEntry],
    *,
    origin: str,
    since: datetime,
    until: datetime,
    rules: ReportRules | None = None,
    checkpoint: SignedCheckpoint | None = None,
    generated_at: datetime | None = None,
) -> ComplianceReport:
    """Summarise the entries of ``[since, until)`` (entries outside it are skipped)."""
    if since.tzinfo is None or until.tzinfo is None:
        raise InvalidArgument("report window bounds must be timezone-aware")
    if until < since:
        raise InvalidArgument("report window ends before it starts")
    rules = rules or ReportRules()
    by_type: Counter[str] = Counter()
    by_agent: Counter[str] = Counter()
    by_decision: Counter[str] = Counter()
    by_tag: Counter[str] = Counter()
    sections: dict[str, list[ReportItem]] = {"denied": [], "policy": [], "sandbox": []}
    totals: Counter[str] = Counter()
    first: int | None = None
    last: int | None = None
    total = 0
    for entry in entries:
        event = entry.event
        if not since <= event.timestamp < until:
            continue
        total += 1
        first = entry.index if first is None else min(first, entry.index)
        last = entry.index if last is None else max(last, entry.index)
        by_type[event.event_type] += 1
        by_agent[event.agent_id] += 1
        by_tag.update(event.compliance_tags)
        decision_value = event.details.get(rules.decision_field)
        decision = str(decision_value).lower() if decision_value is not None else "none"
        by_decision[decision] += 1
        for section, hit in (
            ("denied", decision in rules.denied_decisions),
            ("policy", event.event_type in rules.policy_change_types),
            ("sandbox", event.event_type in rules.sandbox_violation_types),
        ):
            if hit:
                totals[section] += 1
                if len(sections[section]) < rules.max_listed:
                    sections[section].append(ReportItem.of(entry))
    return ComplianceReport(
        origin=origin,
        since=since.astimezone(UTC),
        until=until.astimezone(UTC),
        generated_at=(generated_at or datetime.now(UTC)).astimezone(UTC),
        total=total,
        first_index=first,
        last_index=last,
        by_type=_sorted(by_type),
        by_agent=_sorted(by_agent),
        by_decision=_sorted(by_decision),
        by_tag=_sorted(by_tag),
        denied_total=totals["denied"],
        denied=tuple(sections["denied"]),
        policy_changes_total=totals["policy"],
        policy_changes=tuple(sections["policy"]),
        sandbox_violations_total=totals["sandbox"],
        sandbox_violations=tuple(sections["sandbox"]),
        checkpoint_size=None if checkpoint is None else checkpoint.size,
        checkpoint_note=None if checkpoint is None else checkpoint.note,
    )
