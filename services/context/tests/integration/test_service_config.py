"""Configuration the service cannot honour stops it at start with exit status 2 and a
message naming the key, the value and what is allowed (the original runtime's seed file,
with ``embedding_dimension = 1536``, among them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SEED = """
[context]
vector_db_url = "http://localhost:6333"
embedding_dimension = 1536
context_cache_size = "1GB"
knowledge_retention_days = 365
"""


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            SEED,
            [
                "context.embedding_dimension = 1536",
                "makes 384-dimensional vectors",
                'embedding_kind = "openai"',
            ],
        ),
        ("[context]\nknowledge_retention_days = -1\n", ["context.knowledge_retention_days"]),
    ],
)
def test_refused_at_start(tmp_path: Path, toml: str, expected: list[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text(toml)
    result = subprocess.run(
        [sys.executable, "-m", "symbi_context"],
        env={"SYMBI_CONFIG_PATH": str(config), "SYMBI_DATA_DIR": str(tmp_path), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    for text in expected:
        assert text in result.stderr
    assert "Traceback" not in result.stderr
