"""`gept check`: prove that hosts are in the state the deploys promise.

Runs the testinfra checks in ``checks/`` (pytest) against the hosts of an inventory file and
reports every check of every host, then fails: a readable list naming host and check for
people, one JSON document for agents and runbooks (``--json``). Exit 0 when every check
passed, 1 when any failed, 2 for a bad inventory or host name.

Example:
    $ gept check --inventory inventory/lab.py
    $ gept check --inventory inventory/lab.py --host ampere --json
    $ gept check -i inventory/lab.py --host hydra -k tunnel
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import typer

from gept.core.controller import INVENTORY_HELP, ControllerSettings, inventory_path
from gept.core.errors import ConfigError, Failed
from gept.core.output import emit

_MARK = {"passed": "ok  ", "failed": "FAIL", "error": "ERR ", "skipped": "skip"}


@dataclass
class CheckResult:
    """One check on one host."""

    host: str
    check: str
    outcome: str  # passed | failed | error | skipped
    message: str = ""
    id: str = ""
    duration_s: float = 0.0


@dataclass
class CheckReport:
    """Every check of a run, in the order they ran."""

    inventory: str
    hosts: list[str]
    results: list[CheckResult] = field(default_factory=list)
    duration_s: float = 0.0
    problem: str = ""  # set when pytest itself could not run the checks

    @property
    def counts(self) -> dict[str, int]:
        """Number of checks per outcome."""
        counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
        for result in self.results:
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        return counts

    @property
    def ok(self) -> bool:
        """True when checks ran and none failed."""
        counts = self.counts
        return (not self.problem and counts["failed"] == 0 and counts["error"] == 0
                and counts["passed"] > 0)

    @property
    def failures(self) -> list[CheckResult]:
        """Failed and errored checks."""
        return [r for r in self.results if r.outcome in ("failed", "error")]

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data for agents."""
        return {
            "status": "passed" if self.ok else "failed",
            "inventory": self.inventory,
            "hosts": self.hosts,
            "summary": self.counts,
            "duration_s": round(self.duration_s, 2),
            "failures": [asdict(r) for r in self.failures],
            "checks": [asdict(r) for r in self.results],
            **({"problem": self.problem} if self.problem else {}),
        }

    def render(self) -> str:
        """A report a person reads: per host, each check, failures with their reason."""
        lines: list[str] = []
        for host in self.hosts:
            mine = [r for r in self.results if r.host == host]
            if not mine:
                continue
            bad = sum(r.outcome in ("failed", "error") for r in mine)
            skipped = sum(r.outcome == "skipped" for r in mine)
            ran = len(mine) - skipped
            head = (f"{host}: {ran}/{ran} checks ok" if not bad else
                    f"{host}: {bad} of {ran} checks FAILED")
            lines.append(head + (f", {skipped} skipped" if skipped else ""))
            for r in mine:
                line = f"  {_MARK.get(r.outcome, r.outcome)} {r.check}"
                if r.message and r.outcome != "passed":
                    line += f"\n         -> {r.message}"
                lines.append(line)
        if self.problem:
            lines.append(f"could not run the checks: {self.problem}")
        c = self.counts
        lines.append(f"{c['passed']} passed, {c['failed'] + c['error']} failed, "
                     f"{c['skipped']} skipped in {self.duration_s:.1f} s")
        failures = self.failures
        if 0 < len(failures) <= 5:
            lines.append("FAILED: " + "; ".join(f"{r.host}: {r.check}" for r in failures))
        elif failures:
            per_host = {h: sum(r.host == h for r in failures) for h in self.hosts}
            lines.append("FAILED: " + ", ".join(f"{h} ({n} checks)" for h, n in per_host.items()
                                                if n))
        return "\n".join(lines)


def _short_message(report: Any) -> str:
    """The assertion's own message, without pytest's introspection lines."""
    longrepr = report.longrepr
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple):  # skips: (path, line, reason)
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(longrepr)
    for prefix in ("AssertionError: ", "Failed: "):
        text = text.removeprefix(prefix)
    # pytest appends "assert <expr>" introspection after the message; keep the message.
    text = text.split("\nassert ")[0].strip()
    if text.startswith("assert "):
        text = text.splitlines()[0]
    return " ".join(text.split())[:500]


class _Collector:
    """pytest plugin: records each check's outcome with the host and check it names."""

    def __init__(self) -> None:
        self.results: list[CheckResult] = []
        self._seen: set[str] = set()

    def pytest_runtest_logreport(self, report: Any) -> None:
        props = dict(report.user_properties)
        if "gept_host" not in props:
            return
        failed_phase = report.failed or (report.skipped and report.when in ("setup", "call"))
        if report.when != "call" and not failed_phase:
            return
        if report.nodeid in self._seen:  # a teardown error after a recorded call
            return
        self._seen.add(report.nodeid)
        if report.passed:
            outcome = "passed"
        elif report.skipped:
            outcome = "skipped"
        else:
            outcome = "failed" if report.when == "call" else "error"
        self.results.append(CheckResult(
            host=str(props["gept_host"]), check=str(props["gept_check"]), outcome=outcome,
            message=_short_message(report), id=report.nodeid,
            duration_s=round(float(report.duration), 3)))


def checks_dir() -> Path:
    """Where the checks live: ``GEPT_CHECKS_DIR`` or ``checks/`` beside the package's tree.

    Raises:
        ConfigError: when the directory cannot be found.
    """
    env = ControllerSettings().checks_dir
    candidates = [env] if env else []
    candidates += [Path(__file__).resolve().parents[2] / "checks", Path.cwd() / "checks"]
    for path in candidates:
        if (path / "conftest.py").is_file():
            return path
    raise ConfigError("cannot find the checks directory; set GEPT_CHECKS_DIR",
                      field="GEPT_CHECKS_DIR")


def run_checks(inventory: Path, hosts: str | None = None, keyword: str | None = None,
               verbose: bool = False) -> CheckReport:
    """Run the checks for the selected hosts of ``inventory`` and return the report.

    Args:
        inventory: a pyinfra inventory file, e.g. ``inventory/lab.py``.
        hosts: host or group names, comma-separated; None for every host.
        keyword: a pytest ``-k`` expression to run a subset, e.g. ``"engine or tunnel"``.
        verbose: show pytest's own output as well.

    Raises:
        ConfigError: (exit 2) when the inventory cannot be loaded.
        InvalidInput: (exit 2) naming an unknown host or group.

    Example:
        >>> report = run_checks(Path("inventory/lab.py"), hosts="hydra")  # doctest: +SKIP
        >>> report.ok                                                     # doctest: +SKIP
        True
    """
    import pytest

    from gept.inventory import load_inventory

    selected = [h.name for h in load_inventory(inventory).select(hosts)]
    directory = checks_dir()
    args = [str(directory), "--gept-inventory", str(inventory.resolve()),
            # The checks' own configuration, not the repository's test settings.
            "-c", os.devnull, "--rootdir", str(directory), "-p", "no:cacheprovider",
            # Only the plugins the checks use: autoloading every installed plugin
            # (hypothesis, schemathesis, ...) costs seconds on each run.
            "-p", "pytest_timeout", "--timeout", "60"]
    if hosts:
        args += ["--gept-hosts", hosts]
    if keyword:
        args += ["-k", keyword]
    args += ["-v"] if verbose else ["-p", "no:terminal"]
    collector = _Collector()
    started = time.monotonic()
    saved = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    try:
        code = pytest.main(args, plugins=[collector])
    finally:
        if saved is None:
            os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
        else:
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = saved
    report = CheckReport(inventory=str(inventory), hosts=selected, results=collector.results,
                         duration_s=time.monotonic() - started)
    if int(code) in (2, 3, 4):  # interrupted, internal error, usage error
        report.problem = f"pytest exited {int(code)} (run with --verbose to see why)"
    elif not report.results:
        report.problem = "no checks ran for the selected hosts"
    return report


def check(
    inventory: Path | None = typer.Option(None, "--inventory", "-i", help=INVENTORY_HELP),
    host: str | None = typer.Option(None, "--host",
                                    help="Host or group names, comma-separated (default all)."),
    keyword: str | None = typer.Option(None, "-k", help="Only checks matching this pytest -k "
                                                        "expression."),
    verbose: bool = typer.Option(False, "--verbose", help="Show pytest's output too."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Prove hosts are in the state the deploys promise (testinfra checks).

    Reports every check of every host and exits 1 if any failed, naming host and check.

    Example:
        $ gept check --inventory inventory/lab.py --host ampere
    """
    inventory = inventory_path(inventory)
    report = run_checks(inventory, host, keyword, verbose)
    if report.problem and not report.results:
        raise Failed(f"gept check: {report.problem}", inventory=str(inventory),
                     hosts=report.hosts)
    emit(report.to_dict(), as_json, human=report.render())
    if not report.ok:
        raise typer.Exit(1)
