"""Requests, entity uids, the scanner, the bounded parts, and the public surface."""

from __future__ import annotations

import asyncio
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

import symbi_policy
from symbi_common.errors import InvalidArgument, ResourceExhausted
from symbi_policy import AuthzRequest, Condition, EntityUid, PolicyAuditEvent, QueueAuditSink
from symbi_policy.annotations import parse_conditions
from symbi_policy.cache import LruCache
from symbi_policy.cedar_text import position_at, split_statements, tokenize


@pytest.mark.parametrize(
    "value",
    [
        'Agent::"a-1"',
        'Symbi::Agent::"a-1"',
        {"type": "Agent", "id": "a-1"},
        {"type": "Symbi::Agent", "id": "a-1"},
    ],
)
def test_entity_uid_forms(value):
    assert EntityUid.parse(value) == EntityUid("Symbi::Agent", "a-1")


@pytest.mark.parametrize(
    "value", ["a", "Agent::a", 'Agent::"a', {"type": "Agent"}, {"id": "a"}, 3, None]
)
def test_entity_uid_rejects_malformed(value):
    with pytest.raises(ValueError, match="must be"):
        EntityUid.parse(value, what="principal")


@given(st.text(max_size=20))
def test_entity_uid_str_round_trips(identifier):
    uid = EntityUid("Symbi::Agent", identifier)
    assert EntityUid.parse(str(uid)) == uid


def test_request_from_mapping():
    request = AuthzRequest.from_mapping(
        {
            "principal": 'Agent::"a"',
            "action": 'Symbi::Action::"publish"',
            "resource": {"type": "Topic", "id": "t"},
            "context": {"priority": "high"},
            "entities": [{"uid": {"type": "Tool", "id": "x"}, "attrs": {"name": "x"}}],
        }
    )
    assert request.principal == EntityUid("Symbi::Agent", "a")
    assert request.action == "publish"
    assert request.resource == EntityUid("Symbi::Topic", "t")
    assert request.entities[0] == {
        "uid": {"type": "Symbi::Tool", "id": "x"},
        "attrs": {"name": "x"},
        "parents": [],
    }


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"principal": 'Agent::"a"', "resource": 'Topic::"t"'}, "action must be"),
        (
            {"principal": 'Agent::"a"', "action": "publish", "resource": 'Topic::"t"', "extra": 1},
            "unknown request field",
        ),
        (
            {
                "principal": 'Agent::"a"',
                "action": "publish",
                "resource": 'Topic::"t"',
                "context": [],
            },
            "context must be",
        ),
        (
            {"principal": 'Agent::"a"', "action": 'Agent::"x"', "resource": 'Topic::"t"'},
            "action must be an action id",
        ),
        (
            {
                "principal": 'Agent::"a"',
                "action": "publish",
                "resource": 'Topic::"t"',
                "entities": {},
            },
            "entities must be",
        ),
        ({"action": "publish", "resource": 'Topic::"t"'}, "principal must be"),
    ],
)
def test_request_rejects_malformed(raw, fragment):
    with pytest.raises(InvalidArgument, match=fragment):
        AuthzRequest.from_mapping(raw)


def test_cache_key_separates_what_cedar_separates():
    def key(context):
        return AuthzRequest.from_mapping(
            {
                "principal": 'Agent::"a"',
                "action": "publish",
                "resource": 'Topic::"t"',
                "context": context,
            }
        ).cache_key()

    assert key({"a": 1, "b": "x"}) == key({"b": "x", "a": 1})
    assert key({"a": 1}) != key({"a": True})
    assert key({"tags": ["x"]}) == key({"tags": ["x"]})
    assert key({"tags": ["x"]}) != key({"tags": ["y"]})


def test_tokenizer_skips_comments_and_keeps_strings_whole():
    tokens, error = tokenize(
        '// c ; "x"\npermit(principal, action, resource) when { context.a == "a;b\\"c" };'
    )
    assert error is None
    texts = [t.text for t in tokens]
    assert texts[0] == "permit"
    assert '"a;b\\"c"' in texts
    assert len(split_statements(tokens)) == 1


def test_positions_count_lines_and_characters():
    text = "ab\ncdé\nf"
    assert str(position_at(text, 0)) == "1:1"
    assert str(position_at(text, text.index("é"))) == "2:3"
    assert str(position_at(text, len(text))) == "3:2"


def test_conditions_vocabulary():
    conditions, error = parse_conditions(" require_approval , rate_limit:3/h ")
    assert error is None
    assert conditions == (Condition("require_approval"), Condition("rate_limit", "3/h"))
    assert [str(c) for c in conditions] == ["require_approval", "rate_limit:3/h"]
    assert conditions[1].rate_limit.period_seconds == 3600
    assert conditions[0].rate_limit is None


def test_lru_cache_is_bounded():
    cache: LruCache[int, int] = LruCache(2)
    cache.put(1, 1)
    cache.put(2, 2)
    assert cache.get(1) == 1  # 1 is now most recent
    cache.put(3, 3)
    assert cache.get(2) is None
    assert len(cache) == 2
    assert (cache.hits, cache.misses) == (1, 1)
    with pytest.raises(ValueError, match=">= 0"):
        LruCache(-1)


async def test_queue_audit_sink_is_bounded_and_refuses_when_full():
    sink = QueueAuditSink(maxsize=1)
    first = PolicyAuditEvent("policy.decision", "deny", "a", "", {"k": 1})
    sink.record(first)
    with pytest.raises(ResourceExhausted, match="audit buffer full"):
        sink.record(PolicyAuditEvent("policy.decision", "deny", "a", "", {}))
    async with asyncio.timeout(1):
        assert await sink.get() is first
    assert sink.get_nowait() is None


def test_audit_event_details_and_id_are_lazy_and_stable():
    calls = []

    def details():
        calls.append(1)
        return {"x": 1}

    event = PolicyAuditEvent("policy.decision", "deny", "a", "", details)
    assert calls == []
    assert event.details == {"x": 1}
    assert event.details == {"x": 1}
    assert calls == [1]
    assert event.event_id == event.event_id
    assert len(event.event_id) == 36


def test_public_surface_is_curated():
    exported = set(symbi_policy.__all__)
    # Submodules show up as attributes once anything imported them (the service's own
    # modules are imported by other tests): they are not part of the curated surface.
    public = {
        name
        for name in dir(symbi_policy)
        if not name.startswith("_") and not isinstance(getattr(symbi_policy, name), ModuleType)
    }
    assert exported == public
    assert len(set(symbi_policy.__all__)) == len(symbi_policy.__all__)
