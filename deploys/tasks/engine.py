"""The recommendation engine: a hardened systemd unit running the current release,
restarted only when the release or its configuration changed."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, systemd

from deploys.tasks import TEMPLATES


@deploy("Run the recommendation engine")
def run_engine(triggers: list[object]) -> None:
    """Install the unit and keep it running.

    Args:
        triggers: operations (release link, config files) whose change needs a restart.
    """
    data = host.data
    unit = files.template(
        name="Install the recommendation-engine unit",
        src=f"{TEMPLATES}/engine/recommendation-engine.service.j2",
        dest="/etc/systemd/system/recommendation-engine.service", mode="0644")
    systemd.daemon_reload(name="Reload systemd for the new engine unit", _if=unit.did_change)
    systemd.service(
        name="Start the recommendation engine", service="recommendation-engine.service",
        running=True, enabled=True)
    systemd.service(
        name="Restart the engine for a new release or configuration",
        service="recommendation-engine.service", restarted=True,
        _if=lambda: unit.did_change() or any(t.did_change() for t in triggers))  # type: ignore[attr-defined]
    del data
