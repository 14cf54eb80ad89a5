"""Settings: defaults < TOML < environment, the seed's sections, and the error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from symbi_common.config import ServiceSettings, load_settings, parse_byte_size
from symbi_common.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("SYMBI_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file() -> None:
    settings = load_settings(ServiceSettings)
    assert settings.security.default_sandbox_tier == "gvisor"
    assert settings.runtime.max_concurrent_agents == 10_000
    assert settings.nats.url == "nats://127.0.0.1:4222"


def test_seed_sections_are_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        tmp_path,
        """
[runtime]
max_concurrent_agents = 10000
scheduler_threads = 8
message_buffer_size = 1048576
gc_interval_ms = 100

[security]
default_sandbox_tier = "gvisor"
enforce_policies = true
audit_enabled = true
crypto_provider = "ring"

[context]
vector_db_url = "http://localhost:6333"
embedding_dimension = 1536
context_cache_size = "1GB"
knowledge_retention_days = 365

[mcp]
discovery_enabled = true
tool_verification = "strict"
connection_timeout_s = 30
max_concurrent_connections = 100
""",
    )
    monkeypatch.setenv("SYMBI_CONFIG_PATH", str(path))
    settings = load_settings(ServiceSettings)
    assert settings.context.context_cache_size == 1_000_000_000
    assert settings.context.vector_db_url == "http://localhost:6333"
    assert settings.mcp.tool_verification == "strict"
    assert settings.mcp.connection_timeout_s == 30


def test_precedence_default_file_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, '[nats]\nurl = "nats://file:4222"\nreplicas = 3\n[grpc]\nport = 6000\n')
    monkeypatch.setenv("SYMBI_CONFIG_PATH", str(path))
    monkeypatch.setenv("SYMBI_NATS__URL", "nats://env:4222")
    settings = load_settings(ServiceSettings)
    assert settings.nats.url == "nats://env:4222"  # environment beats the file
    assert settings.nats.replicas == 3  # the file beats the default
    assert settings.grpc.port == 6000
    assert settings.grpc.host == "127.0.0.1"  # default


def test_top_level_environment_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMBI_LOG_LEVEL", "debug")
    assert load_settings(ServiceSettings).log_level == "debug"


def test_invalid_value_names_key_value_source_and_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, '[security]\ndefault_sandbox_tier = "firecracker"\n')
    monkeypatch.setenv("SYMBI_CONFIG_PATH", str(path))
    with pytest.raises(ConfigError) as info:
        load_settings(ServiceSettings)
    message = info.value.message
    assert "security.default_sandbox_tier" in message
    assert "'firecracker'" in message
    assert str(path) in message
    assert "'docker' or 'gvisor'" in message


def test_invalid_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMBI_NATS__REPLICAS", "9")
    with pytest.raises(ConfigError) as info:
        load_settings(ServiceSettings)
    assert "nats.replicas = '9' (from environment SYMBI_NATS__REPLICAS)" in info.value.message
    assert "less than or equal to 5" in info.value.message


def test_unknown_key_in_a_section_lists_the_allowed_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYMBI_CONFIG_PATH", str(write(tmp_path, "[grpc]\nprot = 1\n")))
    with pytest.raises(ConfigError) as info:
        load_settings(ServiceSettings)
    assert "grpc.prot" in info.value.message
    assert "allowed keys:" in info.value.message
    assert "port" in info.value.message


def test_unknown_section_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMBI_CONFIG_PATH", str(write(tmp_path, "[secruity]\nx = 1\n")))
    with pytest.raises(ConfigError, match="unknown key 'secruity'"):
        load_settings(ServiceSettings)


def test_sections_of_other_services_are_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "SYMBI_CONFIG_PATH", str(write(tmp_path, "[scheduler]\nstrategy = 'best_fit'\n"))
    )
    load_settings(ServiceSettings)


def test_broken_toml_and_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMBI_CONFIG_PATH", str(write(tmp_path, "[grpc\n")))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(ServiceSettings)
    monkeypatch.setenv("SYMBI_CONFIG_PATH", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(ServiceSettings)


def test_instance_id_must_be_a_subject_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMBI_INSTANCE_ID", "a.b")
    with pytest.raises(ConfigError, match="instance_id"):
        load_settings(ServiceSettings)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1GB", 10**9), ("512MiB", 512 * 2**20), ("4096", 4096), (4096, 4096), ("1.5 KB", 1500)],
)
def test_byte_sizes(text: str | int, expected: int) -> None:
    assert parse_byte_size(text) == expected


@pytest.mark.parametrize("bad", ["lots", "-1", "1XB", True, -5])
def test_bad_byte_sizes(bad: object) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_byte_size(bad)
