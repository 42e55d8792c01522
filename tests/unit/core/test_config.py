"""Settings: secrets refused when placeholders, secret files must be 0600."""

from __future__ import annotations

from pathlib import Path

import pytest

from gept.core.config import Settings, read_secret_file
from gept.core.errors import ConfigError


@pytest.mark.parametrize("key", ["", "changeme", "secret", "short-key"])
def test_placeholder_or_short_api_key_is_refused(key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEPT_ENGINE_API_KEY", key)
    with pytest.raises(ConfigError, match="GEPT_ENGINE_API_KEY"):
        Settings().api_key()


def test_real_api_key_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEPT_ENGINE_API_KEY", "k" * 32)
    assert Settings().api_key() == "k" * 32


def test_secret_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "key"
    secret.write_text("s3cr3t-value-long-enough")
    secret.chmod(0o644)
    with pytest.raises(ConfigError, match="0600"):
        read_secret_file(secret)
    secret.chmod(0o600)
    assert read_secret_file(secret) == "s3cr3t-value-long-enough"


@pytest.mark.parametrize("agent", ["", "python-httpx/0.28", "Mozilla/5.0"])
def test_user_agent_must_name_a_contact(agent: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEPT_WIKI_USER_AGENT", agent)
    with pytest.raises(ConfigError, match="contact"):
        Settings().user_agent()


def test_password_file_is_applied_to_the_dsn(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pw = tmp_path / "db_password"
    pw.write_text("p@ss word\n")
    pw.chmod(0o600)
    monkeypatch.setenv("GEPT_DATABASE_URL", "postgresql://osrs_user@localhost:5432/osrs_data")
    monkeypatch.setenv("GEPT_DATABASE_PASSWORD_FILE", str(pw))
    assert "password='p@ss word'" in Settings().db_dsn()
