"""`gept web env`: the Vercel project's four variables, from inventory and secrets."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gept.cli import app
from gept.core.errors import ConfigError
from gept.engine.webenv import endpoint, render, vercel_env
from gept.inventory import Host


def lab_host(secrets: Path) -> Host:
    return Host("ampere", ("ampere", "lab"), {
        "engine_tls_lab_ca": True, "secrets_dir": str(secrets), "engine_port": 8000,
        "published_ports": {"engine": 19000, "engine_tls": 19443}})


def write_secret(folder: Path, name: str, value: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")


def test_the_lab_engine_is_its_published_tls_port_with_the_lab_ca(tmp_path: Path) -> None:
    write_secret(tmp_path, "engine_api_key", "k" * 32)
    write_secret(tmp_path, "webhook_secret", "w" * 32)
    values = vercel_env(lab_host(tmp_path))
    assert values == {"PREDICTION_API": "https://127.0.0.1:19443",
                      "PREDICTION_API_KEY": "k" * 32,
                      "ENGINE_WEBHOOK_URL": "https://127.0.0.1:19443/webhooks/trades",
                      "WEBHOOK_SECRET": "w" * 32}
    assert endpoint(lab_host(tmp_path)).verify == str(tmp_path / "engine-tls-ca.crt")
    text = render(values, "production")
    assert "PREDICTION_API=https://127.0.0.1:19443" in text
    assert f"printf %s {'k' * 32} | vercel env add PREDICTION_API_KEY production" in text


def test_production_needs_its_public_name_and_takes_secrets_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEPT_ENGINE_API_KEY", "e" * 32)
    monkeypatch.setenv("GEPT_WEBHOOK_SECRET", "s" * 32)
    host = Host("10.0.0.1", ("ampere", "production"), {"secrets_dir": str(tmp_path)})
    with pytest.raises(ConfigError, match="GEPT_ENGINE_DOMAIN"):
        vercel_env(host)
    named = Host("10.0.0.1", ("ampere",), {"engine_tls_domain": "engine.example.net",
                                            "secrets_dir": str(tmp_path)})
    values = vercel_env(named)
    assert values["PREDICTION_API"] == "https://engine.example.net"
    assert values["ENGINE_WEBHOOK_URL"] == "https://engine.example.net/webhooks/trades"
    assert endpoint(named).verify is True                          # the public CAs


def test_cli_json_and_a_missing_secret_is_a_config_error(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEPT_LAB_STATE_DIR", str(tmp_path / "lab"))
    monkeypatch.delenv("GEPT_ENGINE_API_KEY", raising=False)
    monkeypatch.delenv("GEPT_WEBHOOK_SECRET", raising=False)
    repo = Path(__file__).resolve().parents[3]
    runner = CliRunner()
    missing = runner.invoke(app, ["web", "env", "--inventory", str(repo / "inventory/lab.py")])
    assert isinstance(missing.exception, ConfigError)          # `gept` exits 2 with it
    assert "engine_api_key" in missing.exception.message
    secrets = tmp_path / "lab" / "secrets"
    write_secret(secrets, "engine_api_key", "k" * 32)
    write_secret(secrets, "webhook_secret", "w" * 32)
    ok = runner.invoke(app, ["web", "env", "--inventory", str(repo / "inventory/lab.py"),
                             "--json"])
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.output)
    assert doc["env"]["PREDICTION_API"].startswith("https://127.0.0.1:")
    assert doc["env"]["WEBHOOK_SECRET"] == "w" * 32
