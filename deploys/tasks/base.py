"""The base system every GePT host gets: the service user, time sync, security updates,
a firewall that opens only SSH and the engine, and the shared directories."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, server, systemd

from deploys.managed import Dir, directories_present, files_present, rendered
from deploys.tasks.standby import firewall_peers
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

    owner = {"user": data.gept_user, "group": data.gept_group}
    directories_present(name="Create the gept directories", dirs=[
        Dir(data.config_dir, "0700", **owner), Dir("/var/lib/gept", "0755", **owner),
        Dir(data.state_dir, "0750", **owner), Dir(data.models_dir, "0755", **owner),
        Dir(data.log_dir, "0750", **owner), Dir("/opt/gept", "0755")])

    timesync = files_present(name="Configure time sync", files=[
        rendered("base/timesyncd.conf.j2", "/etc/systemd/timesyncd.conf.d/gept.conf",
                 ntp_servers=data.ntp_servers)])
    # Enabled everywhere; systemd itself skips it inside containers (the lab), where the
    # host's clock is shared.
    systemd.service(name="Enable time sync", service="systemd-timesyncd.service",
                    enabled=True, running=None)
    systemd.service(name="Restart time sync for new servers", service="systemd-timesyncd.service",
                    running=None, restarted=True, _if=timesync.did_change)

    files_present(name="Allow unattended security upgrades only, daily", files=[
        rendered("base/50unattended-upgrades.j2", "/etc/apt/apt.conf.d/50unattended-upgrades",
                 origins=data.unattended_upgrades_origins),
        rendered("base/20auto-upgrades.j2", "/etc/apt/apt.conf.d/20auto-upgrades")])

    firewall = files_present(name="Write the firewall rules and unit", files=[
        rendered("base/gept-firewall.nft.j2", "/etc/gept-firewall.nft",
                 open_ports=data.firewall_open_ports, peer_ports=firewall_peers()),
        rendered("base/gept-firewall.service.j2", "/etc/systemd/system/gept-firewall.service")])
    systemd.daemon_reload(name="Reload systemd for the firewall unit", _if=firewall.did_change)
    systemd.service(name="Enable the firewall", service="gept-firewall.service",
                    running=True, enabled=True)
    systemd.service(name="Reload the firewall rules", service="gept-firewall.service",
                    restarted=True, _if=firewall.did_change)
