"""Failover on real hosts: Ampere's fallback inference takes over when Hydra's predictions
go stale, with only the model Hydra trained (its artifact comes through PostgreSQL).

Needs the deploys' ``converged_lab`` fixture (a model trained on Hydra, inference running).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from breakage import psql

if TYPE_CHECKING:
    from tests.lab.conftest import LabHandle

CRON = "/etc/cron.d/gept-inference"
AMPERE_MODELS = "/var/lib/gept/models"
FALLBACK = ("runuser -u gept -- bash -c 'cd / && set -a && . /etc/gept/gept.env && set +a && "
            "exec gept infer --role fallback --json'")


@contextmanager
def hydra_primary_paused(lab: LabHandle) -> Iterator[None]:
    """Hold Hydra's primary cron (as an outage would) and restore it afterwards."""
    lab.sh("hydra", f"cp -p {CRON} /root/gept-inference.cron.saved && "
                    f"sed -i 's/^\\([^#].*gept infer\\)/#paused# \\1/' {CRON}")
    try:
        yield
    finally:
        lab.sh("hydra", f"cp -p /root/gept-inference.cron.saved {CRON}")


@contextmanager
def ampere_models_missing(lab: LabHandle) -> Iterator[None]:
    """Ampere has no local copy of any model file (a fresh fallback host)."""
    lab.sh("ampere", f"rm -rf /root/models-aside && mkdir -p {AMPERE_MODELS} && "
                     f"mv {AMPERE_MODELS} /root/models-aside && "
                     f"install -d -o gept -g gept {AMPERE_MODELS}")
    try:
        yield
    finally:
        lab.sh("ampere", f"rm -rf {AMPERE_MODELS} && mv /root/models-aside {AMPERE_MODELS}")


def fallback(lab: LabHandle) -> dict[str, Any]:
    proc = lab.run("ampere", FALLBACK, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_fallback_stays_idle_while_hydra_is_fresh_then_takes_over(converged: LabHandle) -> None:
    with hydra_primary_paused(converged), ampere_models_missing(converged):
        for _ in range(3):  # a primary run already in flight may still commit once
            idle = fallback(converged)
            if idle["status"] == "skipped":
                break
        assert idle["status"] == "skipped", idle
        # Hydra goes quiet: its last batches are 20 minutes old.
        psql(converged, "DELETE FROM predictions WHERE \"time\" > now() - interval '30 min'; "
                        "DELETE FROM prediction_batches WHERE \"time\" > now() - interval "
                        "'30 min'; UPDATE prediction_batches SET created_at = "
                        "LEAST(created_at, now() - interval '20 min')")
        took_over = fallback(converged)
        assert took_over["status"] == "completed", took_over
        assert took_over["rows_written"] > 0
        newest = psql(converged, "SELECT role || ' ' || rows_written FROM prediction_batches "
                                 "ORDER BY \"time\" DESC LIMIT 1").strip()
        assert newest == f"fallback {took_over['rows_written']}"
        # The model came from PostgreSQL, was verified and cached for the next run.
        cached = converged.sh("ampere", f"find {AMPERE_MODELS} -name model.cbm | wc -l")
        assert int(cached.strip()) >= 1
        health = json.loads(converged.sh(
            "ampere", "curl -fsS -m 5 http://127.0.0.1:8000/api/v1/health"))
        assert health["freshness"]["stale"] is False
