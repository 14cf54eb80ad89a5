"""The published reference material and the project's examples, read in place."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symbi_common.dsl import (
    DslSyntaxError,
    SandboxTier,
    Severity,
    ast,
    check_source,
    format_program,
    format_source,
    load_agents,
    parse,
)

_spec = importlib.util.spec_from_file_location(
    "dsl_corpus", Path(__file__).parents[1] / "corpus.py"
)
assert _spec is not None
assert _spec.loader is not None
corpus = importlib.util.module_from_spec(_spec)
sys.modules["dsl_corpus"] = corpus
_spec.loader.exec_module(corpus)

AGENT_FILES = corpus.reference_agent_files()
EXAMPLE_FILES = corpus.example_files()
BLOCKS = corpus.reference_blocks("dsl-guide.md", "dsl-specification.md", "dsl-schedule-block.md")


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


# ------------------------------------------------------------------------------ agents


def test_all_eight_reference_agents_are_present() -> None:
    assert len(AGENT_FILES) == 8


@pytest.mark.parametrize("path", AGENT_FILES, ids=_ids(AGENT_FILES))
def test_reference_agent_parses_validates_and_compiles(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert check_source(text, file=str(path)) == []
    (definition,) = load_agents(text, file=str(path))
    assert definition.name == path.stem
    assert definition.cedar.policies
    assert definition.sandbox in (SandboxTier.DOCKER, SandboxTier.GVISOR)


@pytest.mark.parametrize("path", AGENT_FILES, ids=_ids(AGENT_FILES))
def test_reference_agent_round_trips_through_the_formatter(path: Path) -> None:
    program = parse(path.read_text(encoding="utf-8"))
    text = format_program(program)
    again = parse(text)
    assert again == program
    assert format_program(again) == text
    assert [c.text for c in again.comments] == [c.text for c in program.comments]


def test_reference_agent_details() -> None:
    by_name = {
        d.name: d
        for path in AGENT_FILES
        for d in load_agents(path.read_text(encoding="utf-8"), file=str(path))
    }
    scanner = by_name["security_scanner"]
    assert scanner.sandbox is SandboxTier.GVISOR
    assert (scanner.resources.memory_mb, scanner.resources.timeout_ms) == (2048, 300_000)
    tracker = by_name["incident_tracker"]
    assert {(i.kind, i.name) for i in tracker.integrations} == {
        ("memory", "incident_history"),
        ("webhook", "github_incidents"),
        ("webhook", "stripe_failures"),
    }
    hook = by_name["webhook_handler"]
    assert all(
        "rate_limit:100/m" in p.conditions for p in hook.cedar.policies if p.effect == "permit"
    )


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(AGENT_FILES), st.randoms(use_true_random=False))
def test_round_trip_survives_reindentation(path: Path, rnd: random.Random) -> None:
    # Generated inputs from the references: any indentation, trailing blanks, extra blank
    # lines. parse(format(parse(x))) == parse(x) must hold for every one.
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        pad = " " * rnd.randint(0, 6) + "\t" * rnd.randint(0, 1)
        lines.append(pad + line.strip() + " " * rnd.randint(0, 2))
        if rnd.random() < 0.1:
            lines.append("")
    x = "\n".join(lines)
    parsed = parse(x)
    assert parse(format_program(parsed)) == parsed
    assert parsed == parse(path.read_text(encoding="utf-8"))


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(AGENT_FILES + [p for p in EXAMPLE_FILES if p.suffix == ".symbi"]),
    st.randoms(use_true_random=False),
)
def test_formatter_keeps_every_comment_in_order(path: Path, rnd: random.Random) -> None:
    lines: list[str] = []
    n = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if rnd.random() < 0.3 and "//" not in line and "#" not in line:
            line = f"{line}  // c{n}"
            n += 1
        lines.append(line)
        if rnd.random() < 0.15:
            lines.append(f"/* b{n} */" if rnd.random() < 0.5 else f"# h{n}")
            n += 1
    program = parse("\n".join(lines))
    text = format_program(program)
    again = parse(text)
    assert again == program
    assert [c.text for c in again.comments] == [c.text for c in program.comments]
    assert format_program(again) == text


# ------------------------------------------------------------------------------ documents

PROGRAMS = [b for b in BLOCKS if b.is_program and not b.planned and not b.is_synopsis]
FRAGMENTS = [b for b in BLOCKS if not b.is_program and not b.planned]
PLANNED = [b for b in BLOCKS if b.planned]
SYNOPSES = [b for b in BLOCKS if b.is_synopsis]


def test_the_documents_yield_the_expected_blocks() -> None:
    assert len(PROGRAMS) >= 25
    assert len(FRAGMENTS) >= 7
    assert len(PLANNED) == 4  # the guide's import, struct/enum, `#if` and macro examples
    assert len(SYNOPSES) == 2  # the specification's `(param: Type, ...)` and `<expr>` forms


@pytest.mark.parametrize("block", PROGRAMS, ids=[b.id for b in PROGRAMS])
def test_every_documented_program_parses(block: corpus.CodeBlock) -> None:
    if "while (" in block.body:
        # The guide's retry example uses `while`, which the specification says does not
        # exist ("There is no while loop"): the parser must say so, not crash.
        with pytest.raises(DslSyntaxError) as info:
            parse(block.body, file=block.id)
        assert "no `while` loop" in info.value.diagnostics[0].hint
        return
    program = parse(block.body, file=block.id)
    assert parse(format_program(program)) == program


@pytest.mark.parametrize("block", FRAGMENTS, ids=[b.id for b in FRAGMENTS])
def test_every_documented_fragment_parses_inside_an_agent(block: corpus.CodeBlock) -> None:
    program = parse("agent fragment {\n" + block.body + "\n}\n", file=block.id)
    (agent,) = program.agents()
    assert agent.items


@pytest.mark.parametrize("block", PLANNED, ids=[b.id for b in PLANNED])
def test_planned_features_are_refused_clearly(block: corpus.CodeBlock) -> None:
    with pytest.raises(DslSyntaxError) as info:
        parse(block.body, file=block.id)
    assert all(d.line >= 1 for d in info.value.diagnostics)


def test_documented_examples_validate_or_explain() -> None:
    # The guide's firecracker example parses but is refused at validation, with the reason.
    (block,) = [b for b in PROGRAMS if "firecracker" in b.body]
    diags = check_source(block.body, file=block.id)
    errors = [d for d in diags if d.severity is Severity.ERROR]
    assert len(errors) == 1
    assert errors[0].code == "sandbox-tier"
    assert "Firecracker (Tier3) is not available" in errors[0].message


# ------------------------------------------------------------------------------ examples


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=_ids(EXAMPLE_FILES))
def test_example_validates_and_compiles_cleanly(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert check_source(text, file=str(path)) == []
    definitions = load_agents(text, file=str(path))
    assert definitions
    for definition in definitions:
        assert definition.cedar.policies
        assert definition.capabilities


@pytest.mark.parametrize(
    "path", [p for p in EXAMPLE_FILES if p.suffix == ".symbi"], ids=lambda p: p.name
)
def test_example_is_canonically_formatted(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert format_source(text, file=str(path)) == text
    program = parse(text)
    assert parse(format_program(program)) == program


def _examples() -> dict[str, object]:
    out: dict[str, object] = {}
    for path in EXAMPLE_FILES:
        for d in load_agents(path.read_text(encoding="utf-8"), file=str(path)):
            out[d.name] = d
    return out


def test_examples_cover_the_required_kinds() -> None:
    examples = _examples()
    assert len(examples) >= 6

    researcher = examples["researcher"]
    net = [p for p in researcher.cedar.policies if 'Symbi::Action::"network"' in p.text]  # type: ignore[attr-defined]
    assert any(p.effect == "permit" for p in net)
    assert any(p.effect == "forbid" for p in net)

    processor = examples["data_processor"]
    assert processor.sandbox is SandboxTier.GVISOR  # type: ignore[attr-defined]

    reporter = examples["compliance_reporter"]
    conditions = {c for p in reporter.cedar.policies for c in p.conditions}  # type: ignore[attr-defined]
    assert {"audit_full", "require_approval"} <= conditions

    runner = examples["code_runner"]
    assert any(
        p.effect == "permit" and 'Symbi::Action::"execute"' in p.text
        for p in runner.cedar.policies  # type: ignore[attr-defined]
    )
    assert runner.sandbox is SandboxTier.GVISOR  # type: ignore[attr-defined]

    assistant = examples["assistant"]
    assert assistant.integrations_of("memory")  # type: ignore[attr-defined]
    assert assistant.execution["memory"] == "persistent"  # type: ignore[attr-defined]

    digest = examples["nightly_digest"]
    (schedule,) = digest.integrations_of("schedule")  # type: ignore[attr-defined]
    assert schedule.settings["cron"] == "0 30 2 * * *"

    assert {"triage_bot", "translator"} <= set(examples)


def test_parsed_example_tree_is_typed() -> None:
    program = parse((corpus.EXAMPLES / "data_processor.symbi").read_text(encoding="utf-8"))
    kinds = {type(n).__name__ for n in ast.walk(program)}
    assert {"Match", "CtorPattern", "For", "Assign", "StructLit", "TypeDef", "FunctionDef"} <= kinds
