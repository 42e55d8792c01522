"""What the checks share: a host under test, remote HTTP/SQL helpers, contract defaults.

Defaults are production's (docs/operations-reference.md); group data overrides them, so
a check never restates a value the inventory already holds.
"""

from __future__ import annotations

import contextlib
import json
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from gept.core.config import COLLECTOR_INTERVALS, COLLECTOR_METRICS_PORTS

DEFAULTS: dict[str, Any] = {
    "postgres_version": 15,
    "postgres_port": 5432,
    "engine_port": 8000,
    "status_port": 8080,
    "prometheus_port": 9090,
    "alertmanager_port": 9093,
    "grafana_port": 3001,
    "grafana_enabled": True,
    "tunnel_local_port": 15432,
    "config_dir": "/etc/gept",
    "models_dir": "/var/lib/gept/models",
    "collectors_dir": "/opt/gept/collectors",
    "db_name": "osrs_data",
    "db_user": "gept_inference",
    "gept_user": "gept",
    "stale_after_seconds": 600,
    "collector_intervals": dict(COLLECTOR_INTERVALS),
    "collector_metrics_ports": dict(COLLECTOR_METRICS_PORTS),
    "firewall_open_ports": [22],
    "tunnel_service": "gept-db-tunnel.service",
}
APP_ROOTS = {"ampere": "/opt/recommendation-engine", "hydra": "/opt/gept/app"}

# Runs on the host with its own python3: GET a URL, print {"status", "body"} as JSON.
# status 0 means no HTTP answer at all (refused, timeout); the error says which.
_HTTP_GET = r"""
import json, sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
        out = {"status": r.status, "body": r.read().decode("utf-8", "replace")}
except urllib.error.HTTPError as e:
    out = {"status": e.code, "body": e.read().decode("utf-8", "replace")}
except Exception as e:
    out = {"status": 0, "body": "", "error": f"{type(e).__name__}: {e}"}
print(json.dumps(out))
"""


# Runs on the host: send PostgreSQL's SSLRequest and print the one-byte answer ("S" or "N").
# A bare TCP connect is not enough through an SSH forward: ssh accepts locally even when the
# far side is down, then closes the connection, which prints nothing here.
_PG_PROBE = r"""
import socket, struct, sys
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as s:
        s.sendall(struct.pack("!ii", 8, 80877103))
        print(s.recv(1).decode("ascii", "replace") or "closed")
except Exception as e:
    print(f"{type(e).__name__}: {e}")
"""

# Runs on the host with the release's venv: one query as the app's user, via psycopg.
_PSYCOPG_QUERY = r"""
import sys, psycopg
password = open(sys.argv[5]).read().strip()
with psycopg.connect(host="127.0.0.1", port=int(sys.argv[1]), user=sys.argv[2],
                     dbname=sys.argv[3], password=password, connect_timeout=5) as conn:
    for row in conn.execute(sys.argv[4]).fetchall():
        print("|".join("" if v is None else str(v) for v in row))
"""


@dataclass
class HttpAnswer:
    """An HTTP answer seen from the host itself."""

    status: int
    body: str
    error: str = ""

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)

    def describe(self) -> str:
        """One line for a failure message."""
        if self.status == 0:
            return f"no answer ({self.error})"
        return f"HTTP {self.status}: {self.body[:200]!r}"


@dataclass
class Target:
    """One inventory host, connected through testinfra (host keys verified)."""

    name: str
    groups: tuple[str, ...]
    data: Mapping[str, Any]
    host: Any  # testinfra.host.Host
    _sudo: bool = field(default=False)

    def get(self, key: str) -> Any:
        """Inventory data, else the contract default."""
        if key in self.data:
            return self.data[key]
        if key == "app_root":
            role = "ampere" if "ampere" in self.groups else "hydra"
            return APP_ROOTS[role]
        return DEFAULTS[key]

    @contextlib.contextmanager
    def privileged(self) -> Iterator[None]:
        """Run as root: through sudo when the SSH user is not root (production)."""
        if self._sudo:
            with self.host.sudo():
                yield
        else:
            yield

    def run(self, command: str) -> Any:
        """Run a shell command as root; returns testinfra's CommandResult."""
        with self.privileged():
            return self.host.run(command)

    def file(self, path: str) -> Any:
        """testinfra's File, read as root."""
        with self.privileged():
            f = self.host.file(path)
            # Read the properties now, inside the sudo context.
            return _FileFacts(path=path, exists=f.exists,
                              is_file=f.exists and f.is_file,
                              is_directory=f.exists and f.is_directory,
                              is_symlink=f.exists and f.is_symlink,
                              mode=f.mode if f.exists else None,
                              user=f.user if f.exists else None,
                              linked_to=f.linked_to if f.exists and f.is_symlink else None)

    def http_get(self, url: str) -> HttpAnswer:
        """GET ``url`` from the host itself (services bound to localhost are reachable)."""
        result = self.host.run("python3 -c %s %s", _HTTP_GET, url)
        try:
            data = json.loads(result.stdout)
        except ValueError:
            return HttpAnswer(0, "", f"python3 on the host failed: {result.stderr[:200]}")
        return HttpAnswer(int(data["status"]), data.get("body", ""), data.get("error", ""))

    def pg_answers(self, port: int) -> str:
        """What a PostgreSQL server on 127.0.0.1:``port`` of the host answers to SSLRequest:
        "S" or "N" when PostgreSQL is there, anything else when it is not."""
        return str(self.host.run("python3 -c %s %s", _PG_PROBE, str(port)).stdout.strip())

    def sql(self, query: str, port: int | None = None) -> Any:
        """Run ``query`` as the app's database user, the password read on the host.

        Uses psql where it is installed (Ampere), else psycopg in the release's venv (Hydra
        has no PostgreSQL client package). The password never leaves the host.
        """
        port = port or int(self.get("postgres_port"))
        password_file = f"{self.get('config_dir')}/db_password"
        if not self.host.exists("psql"):
            python = f"{self.get('app_root')}/current/venv/bin/python"
            args = [str(port), str(self.get("db_user")), str(self.get("db_name")), query,
                    password_file]
            return self.run(" ".join(shlex.quote(a) for a in
                                     [python, "-c", _PSYCOPG_QUERY, *args]))
        cmd = (f"PGPASSWORD=\"$(cat {shlex.quote(password_file)})\" PGCONNECT_TIMEOUT=5 "
               f"psql -X -w -A -t -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p {port} "
               f"-U {shlex.quote(str(self.get('db_user')))} "
               f"-d {shlex.quote(str(self.get('db_name')))} -c {shlex.quote(query)}")
        return self.run(cmd)


@dataclass(frozen=True)
class _FileFacts:
    path: str
    exists: bool
    is_file: bool
    is_directory: bool
    is_symlink: bool
    mode: int | None
    user: str | None
    linked_to: str | None


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text exposition -> {(name, labels): value}; enough for our own metrics.

    Example:
        >>> parse_metrics('a_seconds{collector="5m"} 300.0\\n')
        {('a_seconds', frozenset({('collector', '5m')})): 300.0}
    """
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, rest = line.split("{", 1)
            labels_text, value_text = rest.rsplit("}", 1)
            labels = frozenset(
                (k.strip(), v.strip().strip('"'))
                for k, v in (pair.split("=", 1) for pair in _split_labels(labels_text)))
        else:
            name, value_text = line.split(None, 1)
            labels = frozenset()
        out[(name.strip(), labels)] = float(value_text.split()[0])
    return out


def _split_labels(text: str) -> list[str]:
    parts, current, quoted = [], "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return parts
