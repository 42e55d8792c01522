"""The rendered monitoring config is valid, and every alert fires and stays quiet when it should.

promtool and amtool are the real validators (Debian's `prometheus` and
`prometheus-alertmanager` packages); each alert has its own promtool unit-test file in
``promtool/<AlertName>.yml`` with at least one firing and one non-firing case.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from monitoring_render import PROMTOOL_CASES, alert_rules, promtool, render

ALERTS = [rule["alert"] for rule in alert_rules(render("alerts.yml.j2"))]

# What issue 7 asks the rules to cover; renaming one of these is a visible change.
REQUIRED_ALERTS = {
    "PredictionsStale", "InferenceFailing", "CollectorStale", "EngineDown",
    "EngineHigh5xxRate", "PostgresDown", "DiskSpaceHigh", "BackupStale",
}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, check=False)


def test_promtool_check_config_accepts_prometheus_yml(rendered: Path) -> None:
    result = _run(promtool(), "check", "config", str(rendered / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout + result.stderr


def test_promtool_check_rules_accepts_alerts(rendered: Path) -> None:
    result = _run(promtool(), "check", "rules", str(rendered / "rules" / "gept-alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_amtool_check_config_accepts_alertmanager_yml(rendered: Path, tmp_path: Path) -> None:
    amtool = _amtool()
    with_webhook = tmp_path / "alertmanager-webhook.yml"
    with_webhook.write_text(render("alertmanager.yml.j2",
                                   alert_webhook_url="http://127.0.0.1:9095/alerts",
                                   alert_webhook_credentials_file="/etc/gept/relay_token"))
    result = _run(amtool, "check-config", str(rendered / "alertmanager.yml"), str(with_webhook))
    assert result.returncode == 0, result.stdout + result.stderr


def test_issue_alerts_all_exist() -> None:
    assert set(ALERTS) >= REQUIRED_ALERTS


def test_every_alert_has_severity_and_summary() -> None:
    for rule in alert_rules(render("alerts.yml.j2")):
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def _without_annotations(rules_text: str) -> str:
    # promtool compares annotations exactly when a case lists none; the per-alert cases are
    # about when an alert fires, so they run against the rules minus annotations. The
    # annotation text itself is tested once, in promtool/annotations.yml.
    doc = yaml.safe_load(rules_text)
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    return yaml.safe_dump(doc, sort_keys=False)


def _cases(case: dict[str, Any], alert: str) -> tuple[int, int]:
    firing = quiet = 0
    for test in case["tests"]:
        for check in test.get("alert_rule_test", []):
            if check["alertname"] != alert:
                continue
            if check.get("exp_alerts"):
                firing += 1
            else:
                quiet += 1
    return firing, quiet


@pytest.mark.parametrize("alert", ALERTS)
def test_alert_fires_and_stays_quiet(alert: str, tmp_path: Path) -> None:
    case_file = PROMTOOL_CASES / f"{alert}.yml"
    assert case_file.exists(), f"no promtool unit test for alert {alert}: add {case_file}"
    firing, quiet = _cases(yaml.safe_load(case_file.read_text()), alert)
    assert firing >= 1, f"{case_file.name} never expects {alert} to fire"
    assert quiet >= 1, f"{case_file.name} never expects {alert} to stay quiet"
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "gept-alerts.yml").write_text(
        _without_annotations(render("alerts.yml.j2")))
    shutil.copy(case_file, tmp_path / case_file.name)
    result = _run(promtool(), "test", "rules", str(tmp_path / case_file.name))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_annotations_render(rendered: Path) -> None:
    shutil.copy(PROMTOOL_CASES / "annotations.yml", rendered / "annotations.yml")
    result = _run(promtool(), "test", "rules", str(rendered / "annotations.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_case_file_without_an_alert() -> None:
    orphans = {p.stem for p in PROMTOOL_CASES.glob("*.yml")} - set(ALERTS) - {"annotations"}
    assert not orphans, f"promtool cases for alerts that no longer exist: {sorted(orphans)}"


def test_lab_override_shortens_for() -> None:
    rules = {r["alert"]: r for r in alert_rules(
        render("alerts.yml.j2", alert_for={"PredictionsStale": "0s"}))}
    assert rules["PredictionsStale"]["for"] == "0s"
    assert rules["EngineDown"]["for"] == "2m"


def test_only_existing_exporters_are_scraped(tmp_path: Path) -> None:
    """Without node/postgres exporters or collectors, their jobs are not rendered at all."""
    text = render("prometheus.yml.j2", ports={"engine": 8000, "prometheus": 9090,
                                              "alertmanager": 9093},
                  collector_ports={}, rules_dir=str(tmp_path / "no-rules"))
    jobs = {job["job_name"] for job in yaml.safe_load(text)["scrape_configs"]}
    assert jobs == {"prometheus", "alertmanager", "engine"}
    (tmp_path / "prometheus.yml").write_text(text)
    result = _run(promtool(), "check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_full_context_scrapes_every_contract_exporter(rendered: Path) -> None:
    doc = yaml.safe_load((rendered / "prometheus.yml").read_text())
    targets = {job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
               for job in doc["scrape_configs"]}
    assert targets["engine"] == ["127.0.0.1:8000"]
    assert targets["collectors"] == [f"127.0.0.1:{p}" for p in range(9100, 9106)]
    assert targets["collector-status"] == ["127.0.0.1:8080"]
    assert targets["node"] == ["127.0.0.1:9110"]
    assert targets["postgres"] == ["127.0.0.1:9187"]


def _amtool() -> str:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.fail("amtool not found: install Debian's `prometheus-alertmanager` package")
    return amtool


@pytest.mark.parametrize(("webhook", "receiver"), [("", "null"),
                                                   ("http://127.0.0.1:9095/alerts", "webhook")])
@pytest.mark.parametrize("severity", ["critical", "warning"])
def test_alertmanager_routes_by_severity(tmp_path: Path, webhook: str, receiver: str,
                                         severity: str) -> None:
    config = tmp_path / "alertmanager.yml"
    config.write_text(render("alertmanager.yml.j2", alert_webhook_url=webhook))
    result = _run(_amtool(), "config", "routes", "test", f"--config.file={config}",
                  f"severity={severity}", "alertname=PredictionsStale")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver
    routes = {r["matchers"][0]: r for r in yaml.safe_load(config.read_text())["route"]["routes"]}
    assert routes[f'severity="{severity}"']["repeat_interval"] == (
        "1h" if severity == "critical" else "4h")


def test_alertmanager_config_holds_no_secret_inline() -> None:
    text = render("alertmanager.yml.j2", alert_webhook_url="http://127.0.0.1:9095/alerts",
                  alert_webhook_credentials_file="/etc/gept/relay_token")
    assert "credentials_file" in text
    assert "credentials:" not in text.replace("credentials_file", "")
