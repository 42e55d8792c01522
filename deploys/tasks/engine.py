"""The recommendation engine: a hardened systemd unit running the current release,
restarted only when the release or its configuration changed, bound to 127.0.0.1 behind
the TLS proxy (``deploys/tasks/proxy.py``).

The web app's settings: ``web_alerts_url`` / ``web_resync_url`` from inventory data, the
webhook secret (``GEPT_WEBHOOK_SECRET`` or ``<secrets_dir>/webhook_secret``, generated in
the lab) and the web app's read-only DSN (``GEPT_WEB_USERS_DSN``, optional) as 0600 files.
"""

from __future__ import annotations

import os

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import systemd

from deploys.managed import files_present, literal, rendered
from deploys.secrets import secret
from deploys.tasks import proxy


@deploy("Run the recommendation engine")
def run_engine(triggers: list[object]) -> None:
    """Install the unit and keep it running.

    Args:
        triggers: operations (release link, config files) whose change needs a restart.
    """
    data = host.data
    owner = {"user": data.gept_user, "group": data.gept_group, "mode": "0600"}
    web = [literal(secret("webhook_secret", data) + "\n",
                   f"{data.config_dir}/webhook_secret", **owner)]
    # Empty when the web app's database is not configured (the engine then skips E3).
    web.append(literal(os.environ.get("GEPT_WEB_USERS_DSN", "") + "\n",
                       f"{data.config_dir}/web_users_dsn", **owner))
    triggers = [*triggers, files_present(name="Write the engine's web app secrets", files=web)]
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
    proxy.serve_tls()
