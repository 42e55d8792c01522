"""Database backups on Ampere: a nightly ``pg_dump -Fc`` of the whole database (price data
included) with retention, and the ``gept_backup_last_success_timestamp_seconds`` metric
written to the node exporter's textfile directory."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files

from deploys.tasks import TEMPLATES

TEXTFILE_DIR = "/var/lib/gept/textfile"


@deploy("Schedule database backups")
def schedule_backups() -> None:
    """Backup script, its cron, and the directories it writes."""
    data = host.data
    files.directory(name="Create the backup directory", path=data.backup_dir, user="postgres",
                    group="postgres", mode="0700")
    files.directory(name="Create the textfile metrics directory", path=TEXTFILE_DIR,
                    user="root", group="root", mode="0755")
    files.template(name="Install the backup script", src=f"{TEMPLATES}/backup/gept-backup.sh.j2",
                   dest="/usr/local/sbin/gept-backup", mode="0755", textfile_dir=TEXTFILE_DIR)
    files.template(name="Schedule the nightly backup",
                   src=f"{TEMPLATES}/backup/gept-backup.cron.j2",
                   dest="/etc/cron.d/gept-backup", mode="0644")
