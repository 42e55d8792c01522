"""Secrets the deploys hand to hosts, read on the controller: never stored in the repo.

Order: the environment (``GEPT_DB_PASSWORD``, ``GEPT_ENGINE_API_KEY``), a file named by
``GEPT_DB_PASSWORD_FILE`` / ``GEPT_ENGINE_API_KEY_FILE``, then ``<secrets_dir>/<name>``
(inventory data ``secrets_dir``, default ``~/.config/gept/secrets``). Files must be 0600.
Only an inventory with ``generate_secrets = True`` (the lab) may create missing ones.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from gept.core.config import read_secret_file

NAMES = {
    # gept_inference's password (the hosts' default role, in /etc/gept/db_password).
    "db_password": "GEPT_DB_PASSWORD",
    "engine_api_key": "GEPT_ENGINE_API_KEY",
    # HMAC secret shared with the web app (its WEBHOOK_SECRET): webhooks in, alerts out.
    "webhook_secret": "GEPT_WEBHOOK_SECRET",
    # The other per-job roles (gept.db.roles); the owner and the probe have no password.
    "db_password_gept_engine": "GEPT_DB_PASSWORD_GEPT_ENGINE",
    "db_password_gept_collectors": "GEPT_DB_PASSWORD_GEPT_COLLECTORS",
    "db_password_gept_registry": "GEPT_DB_PASSWORD_GEPT_REGISTRY",
    # The streaming standbys' role (gept_replication; deploys/tasks/standby.py).
    "db_password_gept_replication": "GEPT_DB_PASSWORD_GEPT_REPLICATION",
    # pgBackRest: the repository's encryption passphrase (kept where the repository is
    # written from: the repository host, or the database hosts for S3) and the S3 key pair.
    "backup_cipher_pass": "GEPT_BACKUP_CIPHER_PASS",
    "backup_s3_key": "GEPT_BACKUP_S3_KEY",
    "backup_s3_key_secret": "GEPT_BACKUP_S3_KEY_SECRET",
}


def role_secret(role: str, data: Any) -> str:
    """The name of the secret holding PostgreSQL role ``role``'s password.

    Example:
        >>> role_secret("gept_engine", {"db_user": "gept_inference"})
        'db_password_gept_engine'
    """
    default = data.get("db_user") if hasattr(data, "get") else None
    return "db_password" if role == default else f"db_password_{role}"


def secret(name: str, data: Any) -> str:
    """The value of secret ``name`` (one of :data:`NAMES`).

    Raises:
        RuntimeError: naming every place looked at when the secret is missing.
    """
    env = NAMES[name]
    if os.environ.get(env):
        return os.environ[env]
    if os.environ.get(env + "_FILE"):
        return read_secret_file(Path(os.environ[env + "_FILE"]))
    folder = Path(data.get("secrets_dir") or "~/.config/gept/secrets").expanduser()
    path = folder / name
    if not path.exists() and data.get("generate_secrets"):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32) + "\n")
    if not path.exists():
        raise RuntimeError(f"secret {name} is not set: export {env}, or {env}_FILE, "
                           f"or create {path} (mode 0600)")
    return read_secret_file(path)
