"""PostgreSQL streaming replication, as the deploys and the host gate both write it.

One place builds what a standby streams with (``primary_conninfo``, its slot), so the
deploy (``deploys/tasks/standby.py``) and the gate's switchover actions
(``gept.gate.standby``) write byte-identical files and a converge after a switchover
changes nothing. Paths follow Debian's cluster layout.

Example:
    >>> print(standby_conf("ampere", "ampere", "ampere-standby").splitlines()[2][:40])
    primary_conninfo = 'host=ampere port=5432
"""

from __future__ import annotations

import re

REPLICATION_ROLE = "gept_replication"


def slot_name(host_name: str) -> str:
    """The physical replication slot (and application_name) of standby ``host_name``.

    Example:
        >>> slot_name("ampere-standby")
        'gept_ampere_standby'
    """
    return "gept_" + re.sub(r"[^a-z0-9]", "_", host_name.lower())


def data_dir(version: int | str = 15) -> str:
    """The cluster's data directory."""
    return f"/var/lib/postgresql/{version}/main"


def conf_dir(version: int | str = 15) -> str:
    """The cluster's configuration directory."""
    return f"/etc/postgresql/{version}/main"


def tls_dir(version: int | str = 15) -> str:
    """The host certificate, key, CA and the replication passfile of the cluster."""
    return f"{conf_dir(version)}/tls"


def standby_conf_path(version: int | str = 15) -> str:
    """The conf.d fragment that makes a cluster stream from a primary."""
    return f"{conf_dir(version)}/conf.d/gept-standby.conf"


def unit(version: int | str = 15) -> str:
    """The cluster's systemd unit."""
    return f"postgresql@{version}-main.service"


def primary_conninfo(primary_address: str, standby_host: str, version: int | str = 15,
                     port: int = 5432) -> str:
    """libpq options a standby streams with: TLS verified against the internal CA, its own
    certificate as client certificate, the password in a 0600 passfile (never here)."""
    folder = tls_dir(version)
    return (f"host={primary_address} port={int(port)} user={REPLICATION_ROLE} "
            f"passfile={folder}/replication.pgpass sslmode=verify-full "
            f"sslrootcert={folder}/ca.crt sslcert={folder}/server.crt "
            f"sslkey={folder}/server.key application_name={slot_name(standby_host)} "
            "connect_timeout=5")


def standby_conf(primary: str, primary_address: str, standby_host: str,
                 version: int | str = 15, port: int = 5432) -> str:
    """The fragment of standby ``standby_host`` streaming from ``primary``."""
    conninfo = primary_conninfo(primary_address, standby_host, version, port)
    return (f"# Managed by GePT (gept.db.replication): this host is a streaming standby of "
            f"{primary}.\n# The password is in the passfile, never here.\n"
            f"primary_conninfo = '{conninfo}'\n"
            f"primary_slot_name = '{slot_name(standby_host)}'\n")


def parse_lsn(text: str) -> int:
    """A WAL location (``16/B374D848``) as an integer.

    Example:
        >>> parse_lsn("1/0") > parse_lsn("0/FFFFFFFF")
        True
    """
    hi, lo = text.strip().split("/")
    return (int(hi, 16) << 32) | int(lo, 16)
