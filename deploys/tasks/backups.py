"""Database backups on Ampere: a nightly ``pg_dump -Fc`` of the whole database (price data
included) with retention, and the ``gept_backup_last_success_timestamp_seconds`` metric
written to the node exporter's textfile directory."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy

from deploys.managed import Dir, directories_present, files_present, rendered

TEXTFILE_DIR = "/var/lib/gept/textfile"


@deploy("Schedule database backups")
def schedule_backups() -> None:
    """Backup script, its cron, and the directories it writes."""
    data = host.data
    directories_present(name="Create the backup and textfile metrics directories", dirs=[
        Dir(data.backup_dir, "0700", "postgres", "postgres"), Dir(TEXTFILE_DIR, "0755")])
    files_present(name="Install the backup script and its nightly cron", files=[
        rendered("backup/gept-backup.sh.j2", "/usr/local/sbin/gept-backup", mode="0755",
                 textfile_dir=TEXTFILE_DIR),
        rendered("backup/gept-backup.cron.j2", "/etc/cron.d/gept-backup")])
