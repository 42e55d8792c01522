"""The recommendation engine: a hardened systemd unit running the current release,
restarted only when the release or its configuration changed."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import systemd

from deploys.managed import files_present, rendered


@deploy("Run the recommendation engine")
def run_engine(triggers: list[object]) -> None:
    """Install the unit and keep it running.

    Args:
        triggers: operations (release link, config files) whose change needs a restart.
    """
    data = host.data
    unit = files_present(name="Install the recommendation-engine unit", files=[
        rendered("engine/recommendation-engine.service.j2",
                 "/etc/systemd/system/recommendation-engine.service")])
    systemd.daemon_reload(name="Reload systemd for the new engine unit", _if=unit.did_change)
    systemd.service(
        name="Start the recommendation engine", service="recommendation-engine.service",
        running=True, enabled=True)
    systemd.service(
        name="Restart the engine for a new release or configuration",
        service="recommendation-engine.service", restarted=True,
        _if=lambda: unit.did_change() or any(t.did_change() for t in triggers))  # type: ignore[attr-defined]
    del data
