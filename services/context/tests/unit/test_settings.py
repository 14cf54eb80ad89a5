"""The [context] section: combinations refused with the key, the value and what to do."""

from __future__ import annotations

import pytest

from symbi_common.config import load_settings
from symbi_common.errors import ConfigError
from symbi_context.app import build
from symbi_context.settings import ContextServiceSection, ContextSettings


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"embedding_dimension": 1536}, "context.embedding_dimension = 1536"),
        ({"backend": "server"}, 'context.backend = "server": set vector_db_url'),
        ({"embedding_kind": "openai"}, "embedding_url and embedding_model are required"),
        ({"llm_url": "http://127.0.0.1:9/v1"}, "set both or neither"),
        ({"chunk_chars": 400, "chunk_overlap_chars": 200}, "must be below chunk_chars / 2"),
        ({"vector_weight": 0, "keyword_weight": 0}, "must be positive"),
        ({"short_term_ttl_s": 100, "max_ttl_s": 10}, "must be >= short_term_ttl_s"),
    ],
)
def test_problems(
    fields: dict[str, object], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QDRANT_URL", raising=False)
    section = ContextServiceSection(**fields)  # type: ignore[arg-type]
    assert any(expected in p for p in section.problems()), section.problems()
    with pytest.raises(ConfigError, match="invalid configuration"):
        build(ContextSettings(context=section))


def test_defaults_are_consistent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QDRANT_URL", raising=False)
    assert ContextServiceSection().problems() == []


def test_qdrant_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QDRANT_URL", "http://127.0.0.1:6333")
    section = ContextServiceSection(backend="server")
    assert section.server_url() == "http://127.0.0.1:6333"
    assert section.problems() == []


def test_environment_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMBI_CONFIG_PATH", "")
    monkeypatch.setenv("SYMBI_CONTEXT__EMBEDDING_KIND", "hashing")
    monkeypatch.setenv("SYMBI_CONTEXT__MAX_DOCUMENT_BYTES", "4MiB")
    monkeypatch.setenv("SYMBI_CONTEXT__KNOWLEDGE_RETENTION_DAYS", "0")
    settings = load_settings(ContextSettings)
    assert settings.context.embedding_kind == "hashing"
    assert settings.context.max_document_bytes == 4 * 1024 * 1024
    assert settings.context.knowledge_retention_days == 0
