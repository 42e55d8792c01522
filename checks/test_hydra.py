"""Hydra: primary inference, the tunnel to Ampere's PostgreSQL, models, CatBoost."""

from __future__ import annotations

import pytest
from checklib import Target

SECRETS = ["db_password", "gept.env"]


def test_primary_inference_cron_present(hydra: Target) -> None:
    """Hydra's primary inference cron is installed (every 5 minutes, role primary)."""
    cron = hydra.file("/etc/cron.d/gept-inference")
    assert cron.is_file, "/etc/cron.d/gept-inference is missing"
    text = hydra.run("cat /etc/cron.d/gept-inference").stdout
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")
             and "gept infer" in ln]
    assert lines, "/etc/cron.d/gept-inference has no `gept infer` line"
    assert lines[0].split()[0] == "*/5", f"primary cron schedule is {lines[0].split()[0]!r}"
    assert "--role primary" in lines[0], "Hydra's cron does not run --role primary"


def test_tunnel_service_active(hydra: Target) -> None:
    """The SSH tunnel service to Ampere's PostgreSQL is active and enabled."""
    unit = hydra.get("tunnel_service")
    svc = hydra.host.service(unit)
    assert svc.is_running, f"{unit} is not running"
    assert svc.is_enabled, f"{unit} is not enabled"


def test_tunnel_reaches_postgresql(hydra: Target) -> None:
    """PostgreSQL answers through the tunnel on 127.0.0.1:15432."""
    port = int(hydra.get("tunnel_local_port"))
    if hydra.host.exists("pg_isready"):
        result = hydra.run(f"pg_isready -h 127.0.0.1 -p {port} -t 5")
        assert result.rc == 0, (f"pg_isready through the tunnel on :{port} exited {result.rc}: "
                                f"{(result.stdout + result.stderr).strip()}")
    else:  # no PostgreSQL client on Hydra: speak the protocol's first message ourselves
        answer = hydra.pg_answers(port)
        assert answer in ("S", "N"), f"no PostgreSQL behind the tunnel on :{port} ({answer})"


def test_database_reachable_through_tunnel(hydra: Target) -> None:
    """osrs_data is reachable as osrs_user through the tunnel."""
    result = hydra.sql("SELECT current_user", port=int(hydra.get("tunnel_local_port")))
    assert result.rc == 0, f"psql through the tunnel failed: {result.stderr.strip()}"
    assert result.stdout.strip() == hydra.get("db_user")


def test_models_dir(hydra: Target) -> None:
    """The models directory exists and belongs to the service user."""
    path = hydra.get("models_dir")
    d = hydra.file(path)
    assert d.is_directory, f"{path} is not a directory"
    assert d.user == hydra.get("gept_user"), f"{path} belongs to {d.user}"


def test_catboost_importable(hydra: Target) -> None:
    """CatBoost imports in the current release's venv."""
    python = f"{hydra.get('app_root')}/current/venv/bin/python"
    result = hydra.run(f"{python} -c 'import catboost; print(catboost.__version__)'")
    assert result.rc == 0, f"import catboost failed in {python}: {result.stderr.strip()[-300:]}"


@pytest.mark.parametrize("secret", SECRETS)
def test_secret_file_mode_0600(hydra: Target, secret: str) -> None:
    """The secret file exists with mode 0600."""
    path = f"{hydra.get('config_dir')}/{secret}"
    f = hydra.file(path)
    assert f.is_file, f"{path} is missing"
    assert f.mode == 0o600, f"{path} has mode {f.mode:04o}, not 0600"
