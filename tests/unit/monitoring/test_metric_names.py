"""Every metric an alert or a dashboard uses is one that something really exports.

Production alerted on metrics nobody exported (``gept_1m_last_timestamp``,
``gept_5m_health``). Here the names in the rendered rules and in the dashboards are checked
against (a) the metrics gept's code registers with prometheus_client, found by reading the
source of app/gept, and (b) the standard exporters' namespaces (node_, pg_, prometheus_, up).
The backup, archive and restore-drill metrics are written as text into node_exporter's
textfile directory by ``gept.db.backups`` and ``gept.db.drill``, so they are looked for as
``gauge("<name>", ...)`` calls in those modules instead.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from monitoring_render import REPO, TEMPLATES, alert_rules, render

APP = REPO / "app" / "gept"
STANDARD_PREFIXES = ("node_", "pg_", "prometheus_", "alertmanager_", "scrape_", "process_")
STANDARD_NAMES = {"up"}
# Written as text into node_exporter's textfile directory, not through prometheus_client.
TEXTFILE_WRITERS = (APP / "db" / "backups.py", APP / "db" / "drill.py",
                    APP / "db" / "replication.py")
_GAUGE_RE = re.compile(r'gauge\(\s*"(gept_[a-z0-9_]+)"')

_CONSTRUCTORS = {"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum",
                 "CounterMetricFamily", "GaugeMetricFamily", "HistogramMetricFamily",
                 "SummaryMetricFamily", "InfoMetricFamily"}
_SUFFIXES = {
    "Counter": ("_total", "_created"), "CounterMetricFamily": ("_total", "_created"),
    "Histogram": ("_bucket", "_sum", "_count", "_created"),
    "HistogramMetricFamily": ("_bucket", "_sum", "_count"),
    "Summary": ("_sum", "_count", "_created"), "SummaryMetricFamily": ("_sum", "_count"),
    "Info": ("_info",), "InfoMetricFamily": ("_info",),
}
_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
             "group_right", "bool", "offset", "inf", "nan", "Inf", "NaN"}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names referenced by a PromQL expression (no label names, functions, keywords).

    Example:
        >>> sorted(promql_metric_names('max by (a) (x_total{b="c"}[5m]) / up > 2'))
        ['up', 'x_total']
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\boffset\s+\w+", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        token = match.group(0)
        if token in _KEYWORDS or text[match.end():].lstrip().startswith("("):
            continue
        names.add(token)
    return names


def _module_constants(tree: ast.Module) -> dict[str, str]:
    consts: dict[str, str] = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    consts[target.id] = node.value.value
    return consts


def _resolve(node: ast.expr | None, consts: dict[str, str]) -> str | None:
    """The string value of a metric-name expression: a literal, a module constant, their
    concatenation, or ``.removesuffix()``/``.removeprefix()`` of one."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return consts.get(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _resolve(node.left, consts), _resolve(node.right, consts)
        return left + right if left is not None and right is not None else None
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("removesuffix", "removeprefix") and len(node.args) == 1):
        base, affix = _resolve(node.func.value, consts), _resolve(node.args[0], consts)
        if base is None or affix is None:
            return None
        return (base.removesuffix(affix) if node.func.attr == "removesuffix"
                else base.removeprefix(affix))
    return None


def exported_metric_names(root: Path = APP) -> set[str]:
    """Sample names of every metric registered through prometheus_client in ``root``."""
    names: set[str] = set()
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        consts = _module_constants(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            kind = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if kind not in _CONSTRUCTORS:
                continue
            arg: ast.expr | None = node.args[0] if node.args else None
            for kw in node.keywords:
                if kw.arg == "name":
                    arg = kw.value
            name = _resolve(arg, consts)
            if not name:
                continue
            # prometheus_client drops a counter's "_total" and adds it back on exposition.
            base = name.removesuffix("_total") if "Counter" in kind else name
            names.add(base)
            names.update(base + suffix for suffix in _SUFFIXES.get(kind, ()))
    return names


def _dashboard_exprs() -> list[tuple[str, str]]:
    found = []
    for path in sorted((TEMPLATES / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                found.append((f"{path.name}: {panel['title']}", target["expr"]))
    return found


def _alert_exprs() -> list[tuple[str, str]]:
    return [(f"alert {r['alert']}", r["expr"]) for r in alert_rules(render("alerts.yml.j2"))]


def _is_standard(name: str) -> bool:
    return name in STANDARD_NAMES or name.startswith(STANDARD_PREFIXES)


def test_promql_name_extraction() -> None:
    expr = ('time() - max by (collector) (gept_collector_last_success_timestamp_seconds) '
            '> 2 * max by (collector) (gept_collector_interval_seconds) '
            'and on() up{job="node"} == 1 unless absent(x_y offset 5m)')
    assert promql_metric_names(expr) == {"gept_collector_last_success_timestamp_seconds",
                                          "gept_collector_interval_seconds", "up", "x_y"}


def test_exporter_scan_finds_counters_histograms_and_gauges(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        'from prometheus_client import Counter, Gauge, Histogram\n'
        'NAME = "gept_x_seconds"\n'
        'a = Counter("gept_runs_total", "d")\n'
        'b = Histogram(NAME, "d")\n'
        'c = Gauge(name="gept_up", documentation="d")\n'
        'RUNS = "gept_r_total"\n'
        'd = Counter(RUNS.removesuffix("_total"), "d")\n')
    names = exported_metric_names(tmp_path)
    assert {"gept_runs_total", "gept_x_seconds_bucket", "gept_x_seconds_count",
            "gept_up", "gept_r_total"} <= names
    assert "gept_unregistered" not in names


def _textfile_writers() -> set[str]:
    """Textfile metrics that the host-side backup modules really write."""
    return {name for path in TEXTFILE_WRITERS for name in _GAUGE_RE.findall(path.read_text())}


def test_textfile_writers_are_found() -> None:
    assert {"gept_backup_last_success_timestamp_seconds", "gept_restore_drill_ok",
            "gept_wal_archive_failed_total"} <= _textfile_writers()


_USES = _alert_exprs() + _dashboard_exprs()


@pytest.fixture(scope="module")
def known() -> set[str]:
    """Every metric name something really exports (scanned once per module)."""
    return exported_metric_names() | _textfile_writers()


@pytest.mark.parametrize(("where", "expr"), [
    pytest.param(where, expr, id=f"{where} #{i}") for i, (where, expr) in enumerate(_USES)])
def test_every_metric_used_is_exported(where: str, expr: str, known: set[str]) -> None:
    unknown = sorted(name for name in promql_metric_names(expr)
                     if not _is_standard(name) and name not in known)
    assert not unknown, (
        f"{where} uses metrics nothing exports: {unknown}. gept's code exports "
        f"{sorted(n for n in known if n.startswith('gept_'))}; textfile metrics must be "
        f"written by {[p.name for p in TEXTFILE_WRITERS]} ({sorted(_textfile_writers())}).")
