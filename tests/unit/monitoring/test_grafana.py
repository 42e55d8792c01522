"""Grafana provisioning renders, and the dashboards load from the provisioned datasource."""

from __future__ import annotations

import json

import yaml
from monitoring_render import TEMPLATES, render

DASHBOARDS = sorted((TEMPLATES / "grafana" / "dashboards").glob("*.json"))


def test_datasource_points_at_local_prometheus() -> None:
    doc = yaml.safe_load(render("grafana/provisioning/datasources/prometheus.yml.j2"))
    (source,) = doc["datasources"]
    assert source["uid"] == "prometheus"
    assert source["url"] == "http://127.0.0.1:9090"


def test_dashboard_provider_reads_the_dashboards_dir() -> None:
    doc = yaml.safe_load(render("grafana/provisioning/dashboards/gept.yml.j2",
                                grafana_dashboards_dir="/opt/gept/monitoring/dashboards"))
    assert doc["providers"][0]["options"]["path"] == "/opt/gept/monitoring/dashboards"


def test_the_three_dashboards_exist_with_unique_uids() -> None:
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert sorted(uids) == ["gept-collectors", "gept-database", "gept-predictions"]


def test_every_panel_queries_the_provisioned_datasource() -> None:
    for path in DASHBOARDS:
        doc = json.loads(path.read_text())
        ids = [p["id"] for p in doc["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for panel in doc["panels"]:
            assert panel["datasource"]["uid"] == "prometheus", (path.name, panel["title"])
            assert panel["targets"], (path.name, panel["title"])
            assert all(t["expr"].strip() for t in panel["targets"]), (path.name, panel["title"])
