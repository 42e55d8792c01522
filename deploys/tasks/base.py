"""The base system every GePT host gets: the service user, time sync, security updates,
a firewall that opens only SSH and the engine, and the shared directories."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd

from deploys.tasks import TEMPLATES
from deploys.tasks.users import system_user

BASE_PACKAGES = ["ca-certificates", "cron", "logrotate", "unattended-upgrades",
                 "nftables", "systemd-timesyncd", "python3", "python3-venv", "libpq5",
                 "openssh-client", "rsync", "curl", "jq"]


@deploy("Configure the base system")
def configure_base() -> None:
    """Users, packages, time sync, unattended security upgrades, firewall, directories."""
    data = host.data
    apt.packages(name="Install the base packages", packages=BASE_PACKAGES,
                 no_recommends=True, update=True, cache_time=24 * 3600)

    server.group(name="Create the gept group", group=data.gept_group, system=True)
    system_user("Create the gept service user", data.gept_user, home="/var/lib/gept",
                shell="/usr/sbin/nologin", group=data.gept_group)

    for path, mode in ((data.config_dir, "0700"), ("/var/lib/gept", "0755"),
                       (data.state_dir, "0750"), (data.models_dir, "0755"),
                       (data.log_dir, "0750")):
        files.directory(name=f"Create {path}", path=path, user=data.gept_user,
                        group=data.gept_group, mode=mode)
    files.directory(name="Create /opt/gept", path="/opt/gept", user="root", group="root",
                    mode="0755")

    timesync = files.template(
        name="Configure time sync", src=f"{TEMPLATES}/base/timesyncd.conf.j2",
        dest="/etc/systemd/timesyncd.conf.d/gept.conf", mode="0644",
        ntp_servers=data.ntp_servers)
    # Enabled everywhere; systemd itself skips it inside containers (the lab), where the
    # host's clock is shared.
    systemd.service(name="Enable time sync", service="systemd-timesyncd.service",
                    enabled=True, running=None)
    systemd.service(name="Restart time sync for new servers", service="systemd-timesyncd.service",
                    running=None, restarted=True, _if=timesync.did_change)

    files.template(name="Allow unattended security upgrades only",
                   src=f"{TEMPLATES}/base/50unattended-upgrades.j2",
                   dest="/etc/apt/apt.conf.d/50unattended-upgrades", mode="0644",
                   origins=data.unattended_upgrades_origins)
    files.template(name="Schedule unattended upgrades daily",
                   src=f"{TEMPLATES}/base/20auto-upgrades.j2",
                   dest="/etc/apt/apt.conf.d/20auto-upgrades", mode="0644")

    rules = files.template(name="Write the firewall rules",
                           src=f"{TEMPLATES}/base/gept-firewall.nft.j2",
                           dest="/etc/gept-firewall.nft", mode="0644",
                           open_ports=data.firewall_open_ports)
    unit = files.template(name="Install the firewall unit",
                          src=f"{TEMPLATES}/base/gept-firewall.service.j2",
                          dest="/etc/systemd/system/gept-firewall.service", mode="0644")
    systemd.daemon_reload(name="Reload systemd for the new firewall unit", _if=unit.did_change)
    systemd.service(name="Enable the firewall", service="gept-firewall.service",
                    running=True, enabled=True)
    systemd.service(name="Reload the firewall rules", service="gept-firewall.service",
                    restarted=True, _if=lambda: rules.did_change() or unit.did_change())
