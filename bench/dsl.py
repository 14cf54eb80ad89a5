"""DSL throughput: parse, format, validate+compile, JSON round trip of agent definitions.

Baseline in the same run: ``json.loads`` of each definition's stored JSON (what reading an
agent back costs) and ``cedarpy.validate_policies`` of its compiled Cedar alone. Input: the
eight published reference agents (../shared/reference/agents) and examples/agents.

    uv run python bench/dsl.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cedarpy

from symbi_common.cedar import schema_text
from symbi_common.dsl import AgentDefinition, format_program, load_agent, parse
from symbi_common.dsl.policy_compiler import default_compiler

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted((REPO.parent / "shared" / "reference" / "agents").glob("*.symbi")) + sorted(
    (REPO / "examples" / "agents").glob("*.symbi")
)


def per_item_ms(fn: Callable[[str], object], items: list[str], rounds: int) -> tuple[float, float]:
    """Median and p99 milliseconds per item over ``rounds`` passes."""
    samples: list[float] = []
    for _ in range(rounds):
        for item in items:
            start = time.perf_counter()
            fn(item)
            samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    if not SOURCES:
        print("no sources found (shared/ must sit beside the clone)", file=sys.stderr)
        return 2
    texts = [p.read_text(encoding="utf-8") for p in SOURCES]
    parse(texts[0])  # build the parser once, as a service does at start
    compiler = default_compiler()
    definitions = [load_agent(t, compiler=compiler) for t in texts]
    stored = [d.to_json() for d in definitions]
    cedar_texts = [d.cedar.text for d in definitions]
    schema = cedarpy.Schema.from_str(schema_text())
    by_text = dict(zip(texts, definitions, strict=True))

    base_json = per_item_ms(json.loads, stored, args.rounds)
    base_cedar = per_item_ms(
        lambda t: cedarpy.validate_policies(t, schema), cedar_texts, args.rounds
    )
    counter = iter(range(10**9))

    def fresh(text: str) -> str:
        # A text never seen before, so the parser's small cache of recent trees cannot help.
        return f"{text}\n// {next(counter)}\n"

    ids = iter(range(10**9))
    rows = [
        ("parse (new text)", per_item_ms(lambda t: parse(fresh(t)), texts, args.rounds)),
        (
            "parse+format (new text)",
            per_item_ms(lambda t: format_program(parse(fresh(t))), texts, args.rounds),
        ),
        (
            "load_agent (new text)",
            per_item_ms(lambda t: load_agent(fresh(t), compiler=compiler), texts, args.rounds),
        ),
        (
            "load_agent (same text, new agent id)",
            per_item_ms(
                lambda t: load_agent(t, compiler=compiler, agent_id=f"a{next(ids)}"),
                texts,
                args.rounds,
            ),
        ),
        ("definition to_json", per_item_ms(lambda t: by_text[t].to_json(), texts, args.rounds)),
        ("definition from_json", per_item_ms(AgentDefinition.from_json, stored, args.rounds)),
    ]
    print(
        f"{len(texts)} agent sources, {args.rounds} rounds; lines per source: "
        f"{statistics.mean(t.count(chr(10)) for t in texts):.0f} avg"
    )
    print(
        f"{'baseline json.loads of stored definition':42s} p50 {base_json[0]:7.3f} ms  p99 {base_json[1]:7.3f} ms"
    )
    print(
        f"{'baseline cedarpy.validate_policies':42s} p50 {base_cedar[0]:7.3f} ms  p99 {base_cedar[1]:7.3f} ms"
    )
    for name, (p50, p99) in rows:
        print(
            f"{name:42s} p50 {p50:7.3f} ms  p99 {p99:7.3f} ms  "
            f"x{p50 / base_json[0]:8.1f} json.loads  x{p50 / base_cedar[0]:6.1f} cedar validate"
        )
    load_p50 = rows[2][1][0]
    print(
        f"agents validated per second per core: {1000 / load_p50:.0f} (new text), "
        f"{1000 / rows[3][1][0]:.0f} (one template, many ids)"
    )
    print(
        f"stored definition bytes: avg {statistics.mean(len(s) for s in stored):.0f}, max {max(len(s) for s in stored)}"
    )
    print(f"dsl load/json ratio: {load_p50 / base_json[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
