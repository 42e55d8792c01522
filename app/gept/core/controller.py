"""Settings of the controller: the machine that deploys, runs runbooks, checks and the lab.

The services' settings are :class:`gept.core.config.Settings`; these are the ``GEPT_*``
variables read by the commands a person (or the agent) runs on the controller: which
inventory, the production hosts' addresses, the release to ship, the lab's names and ports.
``scripts/configuration_reference.py`` writes both into docs/configuration.md.

Example:
    >>> ControllerSettings(inventory="inventory/lab.py").inventory
    PosixPath('inventory/lab.py')
    >>> ControllerSettings().lab_prefix
    'gept-lab-'
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO = Path(__file__).resolve().parents[3]
"""The repository root (this file is ``app/gept/core/controller.py``)."""


class ControllerSettings(BaseSettings):
    """What the controller's commands read. Field ``x`` is read from ``GEPT_X``."""

    model_config = SettingsConfigDict(env_prefix="GEPT_", extra="ignore")

    # -- which hosts ---------------------------------------------------------------------
    inventory: Path | None = Field(
        None, description="Inventory file of every command that takes --inventory "
                          "(gept runbook, drift, check, audit, mcp) when none is given; "
                          "unset: the repository's inventory/production.py.")
    ampere_host: str = Field("ampere", description="Production: Ampere's address or "
                                                   "~/.ssh/config alias.")
    ampere_user: str | None = Field(None, description="Production: SSH user on Ampere.")
    ampere_port: int | None = Field(None, description="Production: SSH port on Ampere.")
    hydra_host: str = Field("hydra", description="Production: Hydra's address or alias.")
    hydra_user: str | None = Field(None, description="Production: SSH user on Hydra.")
    hydra_port: int | None = Field(None, description="Production: SSH port on Hydra.")
    ampere_standby_host: str | None = Field(
        None, description="Production: the streaming standby's address or alias (group "
                          "db_standby; none when unset).")
    ampere_standby_user: str | None = Field(None, description="Production: SSH user on the "
                                                              "standby.")
    ampere_standby_port: int | None = Field(None, description="Production: SSH port on the "
                                                              "standby.")
    tunnel_target: str | None = Field(
        None, description="Ampere's address as Hydra reaches it for the database tunnel "
                          "(default: GEPT_AMPERE_HOST).")
    ssh_config: str = Field("~/.ssh/config", description="ssh_config file the production "
                                                         "inventory names.")
    known_hosts: str = Field("~/.ssh/known_hosts", description="known_hosts that verifies the "
                                                               "production hosts' keys.")
    engine_domain: str = Field("", description="Production: the engine's public name (Caddy "
                                               "gets its certificate).")
    engine_acme_email: str = Field("ops@gept.example", description="Production: the ACME "
                                                                   "account's e-mail.")

    backup_s3_bucket: str = Field("gept-backups", description="Production: the pgBackRest "
                                                              "repository's S3 bucket.")
    backup_s3_endpoint: str = Field("objectstorage.example.invalid",
                                    description="Production: its S3-compatible endpoint "
                                                "(Oracle Object Storage).")
    backup_s3_region: str = Field("eu-frankfurt-1", description="Production: its region.")

    # -- what is shipped -----------------------------------------------------------------
    release_source: Literal["git", "worktree"] = Field(
        "git", description="Build the release wheel from git HEAD, or from the work tree "
                           "(uncommitted changes included).")
    release_pin: str | None = Field(None, description="Ship this release name instead of "
                                                      "the one computed from the source.")

    # -- checks ---------------------------------------------------------------------------
    checks_dir: Path | None = Field(None, description="The testinfra checks (default: "
                                                      "checks/ of the repository).")
    check_inventory: str | None = Field(
        None, description="Set by gept check for its pytest run: the inventory file.")
    check_hosts: str | None = Field(None, description="Set by gept check: the hosts to check.")

    # -- the lab (defaults: gept.lab.topology) -------------------------------------------
    lab_prefix: str = Field("gept-lab-", description="Prefix of the lab's containers, "
                                                     "network and volumes.")
    lab_port_offset: int = Field(0, description="Added to every published lab port, so a "
                                                "second lab can coexist.")
    lab_state_dir: Path | None = Field(
        None, description="The lab's keys, ssh_config, known_hosts and state (default "
                          "~/.local/state/gept/lab; another prefix gets its own).")
    lab_extra_ca_dir: str = Field(
        "/usr/local/share/ca-certificates",
        description="Extra trusted CA certificates (*.crt) baked into the lab image "
                    "(empty: none).")
    lab_mirror: str = Field("http://deb.debian.org/debian",
                            description="Debian mirror for the lab image.")
    setup_lab_image: bool = Field(True, description="scripts/setup-machine.sh builds the lab "
                                                    "image (0: skip).")

    # -- benchmarks -----------------------------------------------------------------------
    bench_keep_lab: bool = Field(False, description="bench/deploy.py leaves its lab running.")
    bench_reuse_lab: bool = Field(False, description="bench/recovery.py uses a running, "
                                                     "converged lab as it is.")
    bench_bare_body: str | None = Field(None, description="bench/engine.py: internal, the "
                                                          "bare route's body file.")


INVENTORY_HELP = ("pyinfra inventory file (default $GEPT_INVENTORY, else the repository's "
                  "inventory/production.py).")
"""The ``--inventory`` help of every command (one rule: `inventory_path`)."""


def inventory_path(given: str | Path | None = None) -> Path:
    """The one rule for every command's inventory: ``--inventory``, else ``$GEPT_INVENTORY``,
    else this repository's ``inventory/production.py`` (never the current directory's).

    Example:
        >>> inventory_path("inventory/lab.py")
        PosixPath('inventory/lab.py')
        >>> inventory_path().name
        'production.py'
    """
    if given:
        return Path(given)
    return ControllerSettings().inventory or REPO / "inventory" / "production.py"
