"""The engine behind a TLS reverse proxy: Caddy from Debian, on Ampere.

The engine binds 127.0.0.1; Caddy terminates TLS on ``engine_tls_port`` (443) and proxies
to it. No plain-HTTP listener exists: a plain request to the TLS port is refused by Caddy
(HTTP 400) and the engine's own port is not reachable from outside (and not in the
firewall). Certificates: see ``deploys/tls.py`` (public ACME in production, a lab CA in the
lab). Caddy is reloaded, not restarted, when its configuration changes.
"""

from __future__ import annotations

from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, systemd

from deploys.managed import Dir, directories_present, files_present, literal, rendered
from deploys.tls import lab_certificate


@deploy("Serve the engine over TLS")
def serve_tls() -> None:
    """Install Caddy, its certificate (lab) and configuration; keep it running."""
    data = host.data
    lab_ca = bool(data.get("engine_tls_lab_ca"))
    domain = str(data.get("engine_tls_domain") or "")
    if not lab_ca and not domain:
        raise RuntimeError("engine_tls_domain must name the engine's public host name "
                           "(GEPT_ENGINE_DOMAIN) unless engine_tls_lab_ca is set")
    apt.packages(name="Install Caddy", packages=["caddy"], update=False)
    files = []
    if lab_ca:
        directories_present(name="Create Caddy's certificate directory", dirs=[
            Dir("/etc/caddy/tls", "0750", "root", "caddy")])
        folder = Path(str(data.get("secrets_dir") or "~/.config/gept/secrets")).expanduser()
        chain, key = lab_certificate(folder, [str(data.get("lab_internal_address") or
                                                  host.name)])
        files += [literal(chain, "/etc/caddy/tls/engine.crt", "0644", "root", "caddy"),
                  literal(key, "/etc/caddy/tls/engine.key", "0640", "root", "caddy")]
    files.append(rendered("proxy/Caddyfile.j2", "/etc/caddy/Caddyfile", "0644", "root",
                          lab_ca=lab_ca, site=domain))
    changed = files_present(name="Configure Caddy for the engine", files=files)
    systemd.service(name="Start Caddy", service="caddy.service", running=True, enabled=True)
    systemd.service(name="Reload Caddy for its new configuration", service="caddy.service",
                    reloaded=True, _if=changed.did_change)
