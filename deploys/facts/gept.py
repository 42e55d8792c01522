"""Facts the GePT deploys and their danger-zone guards read from a host.

Each fact is a ``command()`` (what runs on the host, read-only) and a pure ``process()``
(lines in, typed value out), so parsers are tested from recorded output without a host.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from pyinfra.api import FactBase

MISSING = "__gept_missing__"


def _text(lines: list[str]) -> str:
    return "\n".join(lines)


class JsonFile(FactBase[Any]):
    """A JSON document on the host, or ``None`` when the file is missing or not JSON."""

    def command(self, path: str) -> str:
        q = shlex.quote(path)
        return f"cat {q} 2>/dev/null || echo {MISSING}"

    def process(self, output: list[str]) -> Any:
        text = _text(output).strip()
        if not text or text == MISSING:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return None


class PostgresConfFragment(FactBase[dict[str, str] | None]):
    """``key = value`` settings of a postgresql.conf fragment; ``None`` when absent.

    Values keep their quoting as written (``'localhost'``), comments are dropped.
    """

    def command(self, path: str) -> str:
        q = shlex.quote(path)
        return f"cat {q} 2>/dev/null || echo {MISSING}"

    def process(self, output: list[str]) -> dict[str, str] | None:
        if output and output[0].strip() == MISSING:
            return None
        settings: dict[str, str] = {}
        for raw in output:
            line = raw.split("#", 1)[0].strip()
            if not line or "=" not in line:
                continue
            key, value = line.split("=", 1)
            settings[key.strip()] = value.strip()
        return settings


class PostgresClusters(FactBase[list[dict[str, Any]]]):
    """PostgreSQL clusters on the host: ``[{"version": 15, "name": "main", "status": ...}]``."""

    @staticmethod
    def default() -> list[dict[str, Any]]:
        return []

    def command(self) -> str:
        return "pg_lsclusters --no-header 2>/dev/null || true"

    def process(self, output: list[str]) -> list[dict[str, Any]]:
        clusters = []
        for line in output:
            parts = line.split()
            if len(parts) >= 4 and parts[0].isdigit():
                clusters.append({"version": int(parts[0]), "name": parts[1],
                                 "port": int(parts[2]), "status": parts[3]})
        return clusters


def _psql(database: str, sql: str) -> str:
    """A read-only query as the postgres superuser; prints nothing when it cannot run."""
    return (f"command -v psql >/dev/null && cd / && runuser -u postgres -- psql -X -q -A -t "
            f"-F ' ' -d {shlex.quote(database)} -c {shlex.quote(sql)} 2>/dev/null || true")


class MigrationLedger(FactBase[dict[int, str]]):
    """Applied schema migrations: ``{version: checksum}`` (empty for a fresh database)."""

    @staticmethod
    def default() -> dict[int, str]:
        return {}

    def command(self, database: str) -> str:
        return _psql(database, "SELECT version, checksum FROM schema_migrations ORDER BY 1")

    def process(self, output: list[str]) -> dict[int, str]:
        ledger: dict[int, str] = {}
        for line in output:
            parts = line.split()
            if len(parts) == 2 and parts[0].isdigit():
                ledger[int(parts[0])] = parts[1]
        return ledger


class ActiveModels(FactBase[dict[str, int]]):
    """The ACTIVE model of each scope: ``{scope: model_id}``."""

    @staticmethod
    def default() -> dict[str, int]:
        return {}

    def command(self, database: str, port: int | None = None, user: str | None = None,
                password_file: str | None = None) -> str:
        sql = "SELECT scope, id FROM model_registry WHERE status = 'ACTIVE'"
        if port is None:
            return _psql(database, sql)
        # Through Hydra's tunnel, as the application role.
        return (f"PGPASSWORD=\"$(cat {shlex.quote(password_file or '')})\" psql -X -q -A -t "
                f"-F ' ' -h 127.0.0.1 -p {int(port)} -U {shlex.quote(user or '')} "
                f"-d {shlex.quote(database)} -c {shlex.quote(sql)} 2>/dev/null || true")

    def process(self, output: list[str]) -> dict[str, int]:
        active: dict[str, int] = {}
        for line in output:
            parts = line.rsplit(" ", 1)
            if len(parts) == 2 and parts[1].isdigit():
                active[parts[0]] = int(parts[1])
        return active


class DockerImageId(FactBase[str | None]):
    """The id of a local Docker image, or ``None`` when the engine does not have it."""

    def command(self, tag: str) -> str:
        return (f"docker image inspect --format '{{{{.Id}}}}' {shlex.quote(tag)} 2>/dev/null "
                "|| true")

    def process(self, output: list[str]) -> str | None:
        text = _text(output).strip()
        return text or None


class ComposeServicesRunning(FactBase[dict[str, bool]]):
    """Services of a Compose project whose containers are running: ``{service: True}``."""

    @staticmethod
    def default() -> dict[str, bool]:
        return {}

    def command(self, project: str) -> str:
        label = shlex.quote(f"label=com.docker.compose.project={project}")
        fmt = shlex.quote('{{.Label "com.docker.compose.service"}} {{.State}}')
        return f"docker ps -a --filter {label} --format {fmt} 2>/dev/null || true"

    def process(self, output: list[str]) -> dict[str, bool]:
        services: dict[str, bool] = {}
        for line in output:
            parts = line.split()
            if len(parts) == 2:
                services[parts[0]] = services.get(parts[0], False) or parts[1] == "running"
        return services


class CronFile(FactBase[list[str] | None]):
    """The job lines of an /etc/cron.d file (comments and env lines dropped); ``None`` if absent."""

    def command(self, path: str) -> str:
        q = shlex.quote(path)
        return f"cat {q} 2>/dev/null || echo {MISSING}"

    def process(self, output: list[str]) -> list[str] | None:
        if output and output[0].strip() == MISSING:
            return None
        jobs = []
        for raw in output:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if "=" in line.split()[0]:
                continue
            jobs.append(line)
        return jobs


class PasswdEntry(FactBase[dict[str, Any] | None]):
    """A user's passwd entry (``getent passwd``): ``{"uid", "gid", "home", "shell"}`` or None.

    One cheap command, where pyinfra's ``Users`` fact lists every user with their groups.
    """

    def command(self, user: str) -> str:
        return f"getent passwd {shlex.quote(user)} || true"

    def process(self, output: list[str]) -> dict[str, Any] | None:
        for line in output:
            parts = line.split(":")
            if len(parts) == 7:
                return {"uid": int(parts[2]), "gid": int(parts[3]), "home": parts[5],
                        "shell": parts[6]}
        return None


class CollectorIntervals(FactBase[dict[str, Any]]):
    """The intervals the collectors run with, from what actually runs, not from a record.

    ``{"running": {name: s}, "compose": {name: s}, "record": {...} | None,
    "deployed": bool}``: ``running`` is read from the environment of the running
    containers of the compose project, ``compose`` from the rendered compose file (what
    ``docker-compose up`` would start), ``record`` is ``intervals.json`` (a convenience:
    deleting it must not hide a change), ``deployed`` says whether the project exists.
    """

    def command(self, directory: str, project: str = "collectors") -> str:
        d = shlex.quote(directory)
        label = shlex.quote(f"label=com.docker.compose.project={project}")
        fmt = shlex.quote('{{index .Config.Labels "com.docker.compose.service"}} '
                          '{{range .Config.Env}}{{.}} {{end}}')
        return (
            "if command -v docker >/dev/null 2>&1; then "
            f"for id in $(docker ps -q --filter {label} 2>/dev/null); do "
            f"printf 'running '; docker inspect --format {fmt} \"$id\" 2>/dev/null; done; fi; "
            f"if [ -f {d}/docker-compose.yml ]; then echo deployed; "
            "awk '/^  collector-[a-z0-9]+:/{s=$1} /GEPT_COLLECTOR_INTERVAL_SECONDS/"
            "{print \"compose\", s, $2}' " f"{d}/docker-compose.yml; fi; "
            f"if [ -f {d}/intervals.json ]; then printf 'record '; "
            f"tr -d '\\n' < {d}/intervals.json; echo; fi; true")

    @staticmethod
    def default() -> dict[str, Any]:
        return {"running": {}, "compose": {}, "record": None, "deployed": False}

    def process(self, output: list[str]) -> dict[str, Any]:
        result = self.default()
        for line in output:
            kind, _, rest = line.strip().partition(" ")
            if kind == "deployed":
                result["deployed"] = True
            elif kind == "running":
                words = rest.split()
                service = words[0] if words else ""
                for word in words[1:]:
                    key, _, value = word.partition("=")
                    if (key == "GEPT_COLLECTOR_INTERVAL_SECONDS" and value.isdigit()
                            and service.startswith("collector-")):
                        result["running"][service[len("collector-"):]] = int(value)
            elif kind == "compose":
                words = rest.split()
                if len(words) == 2 and words[0].startswith("collector-"):
                    value = words[1].strip("\"'")
                    if value.isdigit():
                        result["compose"][words[0][len("collector-"):].rstrip(":")] = int(value)
            elif kind == "record":
                try:
                    record = json.loads(rest)
                except ValueError:
                    record = None
                result["record"] = record if isinstance(record, dict) else None
        return result


class PgRoles(FactBase[list[str]]):
    """Our PostgreSQL roles and the attributes the deploy pins (``gept.db.roles``)."""

    @staticmethod
    def default() -> list[str]:
        return []

    def command(self, owner: str) -> str:
        from gept.db.roles import role_query

        return _psql("postgres", role_query(owner))

    def process(self, output: list[str]) -> list[str]:
        return [" ".join(line.split()) for line in output if line.strip()]


class TableGrants(FactBase[list[str]]):
    """Grants of our roles on every table, and our functions' bodies (md5), as lines for
    ``gept.db.roles.grants_drift``."""

    @staticmethod
    def default() -> list[str]:
        return []

    def command(self, database: str) -> str:
        from gept.db.roles import GRANTS_QUERY

        return _psql(database, GRANTS_QUERY)

    def process(self, output: list[str]) -> list[str]:
        return [" ".join(line.split()) for line in output if line.strip()]


class BackupCount(FactBase[int]):
    """How many backups pgBackRest lists for ``stanza`` (0: none, or no stanza yet)."""

    @staticmethod
    def default() -> int:
        return 0

    def command(self, user: str, stanza: str) -> str:
        return (f"cd / && runuser -u {shlex.quote(user)} -- pgbackrest "
                f"--stanza={shlex.quote(stanza)} --output=json info 2>/dev/null || true")

    def process(self, output: list[str]) -> int:
        try:
            stanzas = json.loads(_text(output))
        except ValueError:
            return 0
        return sum(len(s.get("backup") or []) for s in stanzas if isinstance(s, dict))
