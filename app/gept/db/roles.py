"""Least privilege in PostgreSQL: one role per job on ``osrs_data``, grants by table name.

Roles (all ``NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS``, and ``NOREPLICATION`` but for
``gept_replication``):

============================  =========================================================
``osrs_user`` (the owner)     owns the schema and every table; runs migrations and this
                              grants step. No password: reached only by peer
                              authentication from Ampere's root (the deploy), so no
                              service and no network client can ever log in as it.
``gept_engine``               the internet-facing engine: reads market data, predictions
                              and the registry's metadata; writes only ``engine_*``.
``gept_collectors``           writes the market tables (items, prices, news, players,
                              gaps, collector runs) and creates their partitions.
``gept_inference``            writes predictions, prediction_batches, inference_runs and
                              creates/drops predictions partitions; reads market data and
                              the registry (artifacts included: Ampere's fallback loads
                              Hydra's model from PostgreSQL).
``gept_registry``             writes model_registry, model_artifacts, training_jobs: the
                              only role that can change which model is ACTIVE.
``gept_probe``                runbook probes: SELECT on every table and the statistics
                              views, nothing else. Peer authentication only (pg_ident
                              map ``gept_probe``: OS users gept-agent, root, postgres).
``gept_replication``          the streaming standbys (``deploys/tasks/standby.py``): the
                              only role with ``REPLICATION``, and nothing else (no table,
                              no database: pg_hba admits it to the ``replication``
                              pseudo-database only, over TLS with the standby's certificate
                              from the internal CA and its password).
============================  =========================================================

Writes are granted by **table name** (:data:`FAMILIES`), so a table added by a later
migration gets its grants from its name: ``engine_*`` is the engine's, ``predictions_p*``
are predictions partitions, and so on. :func:`apply_grants` runs after every migration in
the deploy (``gept db grants``) and converges the grants (revoke, then grant) on every
table. A table whose name matches no family is readable by the probe only.

Partitions: creating a partition needs ownership of its parent, and ownership is what lets
a role ``ALTER TABLE predictions``. So partitions are created by
``gept_ensure_partition(table, start)``, a ``SECURITY DEFINER`` function owned by the owner
that computes the name and bounds itself and only serves a caller allowed to INSERT into
that table; the partition gets its parent's grants. Retention (3 days of predictions) is
``gept_drop_old_predictions(keep_days)``, same pattern: dropping needs ownership too, and
the function refuses ``keep_days < 3``, so a leaked inference password can drop nothing
that retention would not drop anyway. It runs as part of inference (the writer of
predictions, on whichever host writes) rather than as an owner cron, so no owner
credential exists outside Ampere's root; the price is a plain ``DROP`` (a function cannot
``DETACH ... CONCURRENTLY``), bounded by a 5 s ``lock_timeout`` and retried next cycle.

Example:
    $ sudo gept db grants --json      # on Ampere, as root (peer: root -> osrs_user)
    {"owner": "osrs_user", "tables": 61, "roles": {"gept_engine": {...}, ...}}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

OWNER = "osrs_user"
ENGINE = "gept_engine"
COLLECTORS = "gept_collectors"
INFERENCE = "gept_inference"
REGISTRY = "gept_registry"
PROBE = "gept_probe"
SERVICE_ROLES = (ENGINE, COLLECTORS, INFERENCE, REGISTRY)
ROLES = (*SERVICE_ROLES, PROBE)
# Streaming replication only: not in ROLES (it gets no grant on any table or database).
REPLICATION = "gept_replication"

# Table families, by name. The one place that says which table belongs to which job.
FAMILIES: dict[str, re.Pattern[str]] = {
    "market": re.compile(r"^(items|prices_1h|osrs_news|player_counts|data_quality|"
                         r"collector_runs|price_data_5min(_p\d{6})?|"
                         r"prices_latest_1m(_p\d{8})?)$"),
    "predictions": re.compile(r"^(predictions(_p\d{8})?|prediction_batches|inference_runs)$"),
    "registry": re.compile(r"^(model_registry|training_jobs)$"),
    "artifacts": re.compile(r"^model_artifacts$"),
    "engine": re.compile(r"^engine_[a-z0-9_]+$"),
    "ledger": re.compile(r"^schema_migrations$"),
}

# role -> families it may read; role -> {family: privileges it may write}.
READS: dict[str, frozenset[str]] = {
    ENGINE: frozenset({"market", "predictions", "registry", "engine", "ledger"}),
    COLLECTORS: frozenset({"market", "ledger"}),
    INFERENCE: frozenset({"market", "predictions", "registry", "artifacts", "ledger"}),
    REGISTRY: frozenset({"market", "predictions", "registry", "artifacts", "ledger"}),
}
WRITES: dict[str, dict[str, tuple[str, ...]]] = {
    ENGINE: {"engine": ("INSERT", "UPDATE", "DELETE")},
    COLLECTORS: {"market": ("INSERT", "UPDATE")},
    INFERENCE: {"predictions": ("INSERT", "UPDATE", "DELETE")},
    REGISTRY: {"registry": ("INSERT", "UPDATE"), "artifacts": ("INSERT", "UPDATE")},
}
# Who may call the partition functions (the writers of partitioned tables).
PARTITION_CALLERS = (COLLECTORS, INFERENCE)
RETENTION_CALLERS = (INFERENCE,)
# Predefined roles that reach the server's shell or files: no role of ours is a member.
SERVER_ROLES = ("pg_execute_server_program", "pg_read_server_files", "pg_write_server_files")


def family(table: str) -> str | None:
    """The family of ``table`` by its name, or ``None``.

    Example:
        >>> family("engine_trades"), family("predictions_p20260101"), family("x")
        ('engine', 'predictions', None)
    """
    return next((name for name, rx in FAMILIES.items() if rx.match(table)), None)


def create_roles_sql(owner: str = OWNER) -> list[str]:
    """Statements (run as the ``postgres`` superuser) that create and pin the roles.

    Passwords are set separately (from 0600 files, through psql variables: never in argv).
    """
    stmts = []
    for role in (owner, *ROLES):
        stmts.append(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') "
            f"THEN CREATE ROLE \"{role}\" LOGIN; END IF; END $$")
        stmts.append(f'ALTER ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
                     "NOREPLICATION NOBYPASSRLS")
        for server_role in SERVER_ROLES:
            stmts.append(f'REVOKE {server_role} FROM "{role}"')
    # The standbys' role: REPLICATION and nothing else (its password is set from its file).
    stmts.append(f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
                 f"'{REPLICATION}') THEN CREATE ROLE \"{REPLICATION}\" LOGIN; END IF; END $$")
    stmts.append(f'ALTER ROLE "{REPLICATION}" LOGIN REPLICATION NOSUPERUSER NOCREATEDB '
                 "NOCREATEROLE NOBYPASSRLS")
    for server_role in SERVER_ROLES:
        stmts.append(f'REVOKE {server_role} FROM "{REPLICATION}"')
    # The owner is reached by peer authentication only (root on Ampere); the probe too.
    stmts.append(f'ALTER ROLE "{owner}" PASSWORD NULL')
    stmts.append(f'ALTER ROLE "{PROBE}" PASSWORD NULL')
    # Belt and braces for the probe: reads only, briefly, even if a grant slipped in.
    stmts.append(f'ALTER ROLE "{PROBE}" SET default_transaction_read_only = on')
    stmts.append(f"ALTER ROLE \"{PROBE}\" SET statement_timeout = '30s'")
    stmts.append(f'GRANT pg_read_all_stats TO "{PROBE}"')
    return stmts


def database_sql() -> list[str]:
    """Statements run as ``postgres`` *in* ``osrs_data`` (functions are per database).

    Large objects are writable by every role by default, even by a role with no table
    privilege at all; nothing of ours uses them, so creating them is closed to PUBLIC.
    """
    return ["REVOKE EXECUTE ON FUNCTION lo_create(oid), lo_creat(integer), lo_import(text), "
            "lo_import(text, oid), lo_from_bytea(oid, bytea) FROM PUBLIC"]


ENSURE_PARTITION = """
CREATE OR REPLACE FUNCTION public.gept_ensure_partition(p_table text, p_start timestamptz)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    unit text := CASE p_table WHEN 'price_data_5min' THEN 'month'
                              WHEN 'prices_latest_1m' THEN 'day'
                              WHEN 'predictions' THEN 'day' END;
    parent regclass;
    lo timestamp;
    part text;
    g record;
BEGIN
    IF unit IS NULL THEN
        RAISE EXCEPTION 'gept_ensure_partition: % is not a partitioned table', p_table
            USING ERRCODE = '42501';
    END IF;
    parent := format('public.%I', p_table)::regclass;
    -- Only a writer of the table may add partitions to it (session_user: the caller).
    IF NOT has_table_privilege(session_user, parent, 'INSERT') THEN
        RAISE EXCEPTION 'permission denied: % may not create partitions of %',
            session_user, p_table USING ERRCODE = '42501';
    END IF;
    lo := date_trunc(unit, p_start AT TIME ZONE 'UTC');
    part := p_table || '_p' || to_char(lo, CASE unit WHEN 'month' THEN 'YYYYMM'
                                                     ELSE 'YYYYMMDD' END);
    IF to_regclass(format('public.%I', part)) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE format('CREATE TABLE IF NOT EXISTS public.%I PARTITION OF %s '
                   'FOR VALUES FROM (%L) TO (%L)', part, parent,
                   (lo AT TIME ZONE 'UTC'), ((lo + ('1 ' || unit)::interval) AT TIME ZONE 'UTC'));
    -- Writers COPY straight into partitions, which checks the partition's own grants.
    FOR g IN SELECT pg_get_userbyid(a.grantee) AS grantee, a.privilege_type
             FROM pg_class c, aclexplode(c.relacl) a
             WHERE c.oid = parent AND a.grantee <> c.relowner AND a.grantee <> 0 LOOP
        EXECUTE format('GRANT %s ON public.%I TO %I', g.privilege_type, part, g.grantee);
    END LOOP;
    RETURN part;
END
$fn$
"""

DROP_OLD_PREDICTIONS = """
CREATE OR REPLACE FUNCTION public.gept_drop_old_predictions(p_keep_days integer)
RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET lock_timeout = '5s' AS $fn$
DECLARE
    cutoff timestamptz;
    r record;
BEGIN
    -- 48 h windows must complete before a batch may go (gept.inference.retention).
    IF p_keep_days IS NULL OR p_keep_days < 3 THEN
        RAISE EXCEPTION 'predictions retention must be at least 3 days, not %', p_keep_days
            USING ERRCODE = '22023';
    END IF;
    IF NOT has_table_privilege(session_user, 'public.prediction_batches', 'DELETE') THEN
        RAISE EXCEPTION 'permission denied: % may not drop predictions', session_user
            USING ERRCODE = '42501';
    END IF;
    cutoff := (date_trunc('day', now() AT TIME ZONE 'UTC') - (p_keep_days - 1) * interval '1 day')
              AT TIME ZONE 'UTC';
    FOR r IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'public.predictions'::regclass
               AND c.relname ~ '^predictions_p[0-9]{8}$'
             ORDER BY 1 LOOP
        IF (to_date(substr(r.relname, 14), 'YYYYMMDD')::timestamp AT TIME ZONE 'UTC')
                + interval '1 day' <= cutoff THEN
            EXECUTE format('DROP TABLE public.%I', r.relname);
            RETURN NEXT r.relname;
        END IF;
    END LOOP;
    DELETE FROM public.prediction_batches WHERE "time" < cutoff;
END
$fn$
"""


@dataclass
class GrantReport:
    """What :func:`apply_grants` converged."""

    owner: str
    tables: int
    roles: dict[str, dict[str, list[str]]]
    unclassified: list[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"owner": self.owner, "tables": self.tables, "roles": self.roles,
                "unclassified": self.unclassified}


def missing_roles(conn: psycopg.Connection[Any]) -> list[str]:
    """The roles of :data:`ROLES` that do not exist on this server."""
    rows = conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)",
                        (list(ROLES),)).fetchall()
    have = {str(r[0]) for r in rows}
    return [r for r in ROLES if r not in have]


def apply_grants(conn: psycopg.Connection[Any]) -> GrantReport:
    """Converge every table's grants to :data:`READS` / :data:`WRITES`, in one transaction.

    Run as the schema owner after migrations (``gept db grants``). Idempotent: privileges
    of our roles are revoked and granted again on every table, so a grant added by hand is
    removed by the next deploy.

    Raises:
        psycopg.Error: the roles are missing (create them first) or the caller is not the
            owner of the tables.
    """
    owner_row = conn.execute("SELECT current_user").fetchone()
    assert owner_row is not None
    owner = str(owner_row[0])
    report: dict[str, dict[str, list[str]]] = {r: {} for r in ROLES}
    unclassified: list[str] = []
    ident = sql.Identifier
    with conn.transaction():
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(
            sql.SQL(", ").join(ident(r) for r in ROLES)))
        # Temporary tables only for the services (the collectors' staging); the probe has
        # no TEMPORARY, so it has nothing at all it could write.
        db_row = conn.execute("SELECT current_database()").fetchone()
        assert db_row is not None
        database = ident(str(db_row[0]))
        conn.execute(sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC").format(database))
        conn.execute(sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM {}").format(
            database, ident(PROBE)))
        conn.execute(sql.SQL("GRANT TEMPORARY, CONNECT ON DATABASE {} TO {}").format(
            database, sql.SQL(", ").join(ident(r) for r in SERVICE_ROLES)))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            database, ident(PROBE)))
        conn.execute(ENSURE_PARTITION)
        conn.execute(DROP_OLD_PREDICTIONS)
        for fn, callers in (("gept_ensure_partition(text, timestamptz)", PARTITION_CALLERS),
                            ("gept_drop_old_predictions(integer)", RETENTION_CALLERS)):
            conn.execute(sql.SQL("REVOKE ALL ON FUNCTION public.{} FROM PUBLIC").format(
                sql.SQL(fn)))
            conn.execute(sql.SQL("GRANT EXECUTE ON FUNCTION public.{} TO {}").format(
                sql.SQL(fn), sql.SQL(", ").join(ident(r) for r in callers)))
        # Tables created later by the owner are readable by the probe at once, before the
        # next grants step classifies them.
        conn.execute(sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public "
                             "GRANT SELECT ON TABLES TO {}").format(ident(owner), ident(PROBE)))
        tables = [str(r[0]) for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1").fetchall()]
        everyone = sql.SQL(", ").join(ident(r) for r in ROLES)
        for table in tables:
            fam = family(table)
            target = sql.SQL("public.{}").format(ident(table))
            conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(target, everyone))
            conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(target, ident(PROBE)))
            if fam is None:
                unclassified.append(table)
                continue
            for role in SERVICE_ROLES:
                privileges: list[str] = []
                if fam in READS[role]:
                    privileges.append("SELECT")
                privileges += WRITES[role].get(fam, ())
                if not privileges:
                    continue
                conn.execute(sql.SQL("GRANT {} ON {} TO {}").format(
                    sql.SQL(", ").join(sql.SQL(p) for p in privileges), target, ident(role)))
                if not _is_partition(table):
                    report[role].setdefault(fam, [])
                    if table not in report[role][fam]:
                        report[role][fam].append(table)
        # Sequences (BIGSERIAL ids): usable by the roles that may INSERT into their table.
        for seq, table in conn.execute(
                "SELECT s.relname, t.relname FROM pg_class s "
                "JOIN pg_depend d ON d.objid = s.oid AND d.deptype IN ('a', 'i') "
                "JOIN pg_class t ON t.oid = d.refobjid "
                "JOIN pg_namespace n ON n.oid = s.relnamespace "
                "WHERE s.relkind = 'S' AND n.nspname = 'public'").fetchall():
            target = sql.SQL("public.{}").format(ident(str(seq)))
            conn.execute(sql.SQL("REVOKE ALL ON SEQUENCE {} FROM {}").format(target, everyone))
            fam = family(str(table))
            writers = [r for r in SERVICE_ROLES if fam and "INSERT" in WRITES[r].get(fam, ())]
            if writers:
                conn.execute(sql.SQL("GRANT USAGE, SELECT ON SEQUENCE {} TO {}").format(
                    target, sql.SQL(", ").join(ident(r) for r in writers)))
    report[PROBE] = {"all": ["SELECT on every table"]}
    return GrantReport(owner, len(tables), report, unclassified)


def _is_partition(table: str) -> bool:
    return bool(re.search(r"_p\d{6,8}$", table))


# ------------------------------------------------------------------ drift (for the deploys)

def expected_privileges(table: str) -> dict[str, set[str]]:
    """Role -> privileges :func:`apply_grants` gives on ``table`` (roles with none omitted).

    Example:
        >>> sorted(expected_privileges("engine_trades")["gept_engine"])
        ['DELETE', 'INSERT', 'SELECT', 'UPDATE']
    """
    out: dict[str, set[str]] = {PROBE: {"SELECT"}}
    fam = family(table)
    if fam is None:
        return out
    for role in SERVICE_ROLES:
        privileges = ({"SELECT"} if fam in READS[role] else set()) | set(WRITES[role].get(fam, ()))
        if privileges:
            out[role] = privileges
    return out


def _body(definition: str) -> str:
    return definition.split("$fn$")[1]


FUNCTIONS = {"gept_ensure_partition": _body(ENSURE_PARTITION),
             "gept_drop_old_predictions": _body(DROP_OLD_PREDICTIONS)}

GRANTS_QUERY = (
    "SELECT 'table', c.relname, coalesce(pg_get_userbyid(a.grantee), '-'), "
    "coalesce(a.privilege_type, '-') FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN LATERAL (SELECT x.grantee, x.privilege_type FROM aclexplode(c.relacl) x "
    "WHERE pg_get_userbyid(x.grantee) = ANY("
    f"ARRAY[{', '.join(repr(r) for r in ROLES)}])) a ON true "
    "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') "
    "UNION ALL SELECT 'function', proname, md5(prosrc), '-' FROM pg_proc "
    "WHERE pronamespace = 'public'::regnamespace AND proname IN ("
    "'gept_ensure_partition', 'gept_drop_old_predictions')"
)


def grants_drift(lines: list[str]) -> list[str]:
    """What differs between :data:`GRANTS_QUERY`'s output and what the grants step gives.

    Example:
        >>> grants_drift(["table engine_x gept_engine SELECT"])[:1]
        ['engine_x: gept_engine has SELECT, wants DELETE,INSERT,SELECT,UPDATE']
    """
    import hashlib

    have: dict[str, dict[str, set[str]]] = {}
    functions: dict[str, str] = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 4 and parts[0] == "table":
            grants = have.setdefault(parts[1], {})
            if parts[2] != "-":
                grants.setdefault(parts[2], set()).add(parts[3])
        elif len(parts) >= 3 and parts[0] == "function":
            functions[parts[1]] = parts[2]
    drift = []
    for table in sorted(have):
        want = expected_privileges(table)
        for role in ROLES:
            got, wanted = have[table].get(role, set()), want.get(role, set())
            if got != wanted:
                drift.append(f"{table}: {role} has {','.join(sorted(got)) or 'nothing'}, "
                             f"wants {','.join(sorted(wanted)) or 'nothing'}")
    for name, body in FUNCTIONS.items():
        if functions.get(name) != hashlib.md5(body.encode()).hexdigest():  # noqa: S324
            drift.append(f"function {name} missing or outdated")
    return drift


def role_query(owner: str = OWNER) -> str:
    """One line per role: name and the attributes :func:`create_roles_sql` pins."""
    names = ", ".join(repr(r) for r in (owner, *ROLES, REPLICATION))
    servers = ", ".join(repr(r) for r in SERVER_ROLES)
    return (
        "SELECT a.rolname, a.rolsuper, a.rolcreatedb, a.rolcreaterole, a.rolreplication, "
        "a.rolbypassrls, a.rolcanlogin, a.rolpassword IS NOT NULL, "
        "EXISTS (SELECT FROM pg_auth_members m JOIN pg_roles s ON s.oid = m.roleid "
        f"WHERE m.member = a.oid AND s.rolname IN ({servers})), "
        "coalesce((SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting "
        "WHERE setrole = a.oid AND setdatabase = 0), '-') "
        f"FROM pg_authid a WHERE a.rolname IN ({names}) ORDER BY 1")


def expected_roles(owner: str = OWNER) -> list[str]:
    """:func:`role_query`'s lines (psql ``-A -t -F ' '``) when the roles are as designed."""
    lines = []
    for role in sorted((owner, *ROLES, REPLICATION)):
        password = "f" if role in (owner, PROBE) else "t"
        settings = ("default_transaction_read_only=on,statement_timeout=30s"
                    if role == PROBE else "-")
        replication = "t" if role == REPLICATION else "f"
        lines.append(f"{role} f f f {replication} f t {password} f {settings}")
    return lines
