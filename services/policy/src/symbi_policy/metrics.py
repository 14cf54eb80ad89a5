"""Prometheus metrics of the policy service, read from the engine when scraped.

The engine keeps plain counters (``EngineStats``) so that the decision path pays nothing
for metrics; this collector turns them into ``symbi_policy_*`` series at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from symbi_policy.audit import QueueAuditSink
from symbi_policy.engine import PolicyEngine

__all__ = ["EngineCollector"]


class EngineCollector(Collector):
    """Decisions, cache hits, reloads, versions and the audit backlog of one engine."""

    def __init__(self, engine: PolicyEngine, audit: QueueAuditSink) -> None:
        self._engine = engine
        self._audit = audit

    def collect(self) -> Iterator[Metric]:
        stats = self._engine.stats
        decisions = CounterMetricFamily(
            "symbi_policy_decisions", "Decisions made, by outcome.", labels=["outcome"]
        )
        decisions.add_metric(["allow"], stats.allows)
        decisions.add_metric(["deny"], stats.denies)
        yield decisions
        yield CounterMetricFamily(
            "symbi_policy_fail_closed",
            "Denies because the engine could not decide (error, timeout, audit unavailable).",
            value=stats.fail_closed,
        )
        yield CounterMetricFamily(
            "symbi_policy_cache_hits", "Decisions answered from the cache.", value=stats.cache_hits
        )
        yield CounterMetricFamily(
            "symbi_policy_audit_refused",
            "Audit events the buffer refused (full).",
            value=stats.audit_failures,
        )
        yield CounterMetricFamily(
            "symbi_policy_sets_installed", "Policy sets put in force.", value=stats.installs
        )
        yield CounterMetricFamily(
            "symbi_policy_sets_rejected",
            "Policy sets that failed to build (the previous set stayed).",
            value=stats.rejections,
        )
        yield CounterMetricFamily(
            "symbi_policy_documents_built",
            "Documents compiled into installed policy sets (only changed or new ones are).",
            value=stats.documents_built,
        )
        sets = self._engine.principal_sets
        partitions = CounterMetricFamily(
            "symbi_policy_partitions_built",
            "Cedar policy sets built for partitions: shared (per action), principal (with "
            "a change), principal_on_use (a decision needed one not kept).",
            labels=["kind"],
        )
        partitions.add_metric(["shared"], stats.shared_partitions_built)
        partitions.add_metric(["principal"], stats.principal_partitions_built)
        partitions.add_metric(["principal_on_use"], sets.built_on_use)
        yield partitions
        yield GaugeMetricFamily(
            "symbi_policy_principal_sets",
            "Principal partitions kept parsed (bounded by principal_set_cache_size).",
            value=len(sets),
        )
        status = self._engine.status()
        yield GaugeMetricFamily(
            "symbi_policy_version", "Policy-set version in force.", value=status.version
        )
        yield GaugeMetricFamily(
            "symbi_policy_entities_version",
            "Entity-set version in force.",
            value=status.entities_version,
        )
        yield GaugeMetricFamily(
            "symbi_policy_policies", "Policies in force.", value=status.policy_count
        )
        yield GaugeMetricFamily(
            "symbi_policy_audit_backlog",
            "Audit events waiting for delivery.",
            value=len(self._audit),
        )
