"""``gept web env``: what GePT's Vercel project needs to call this engine, from inventory.

The web app reads four variables (web-contract.md): ``PREDICTION_API`` (the engine's TLS
address), ``PREDICTION_API_KEY`` (the engine's key), ``ENGINE_WEBHOOK_URL`` (the trade
webhook) and ``WEBHOOK_SECRET`` (the HMAC secret both sides sign with). They are printed as
dotenv lines and as ``vercel env add`` commands; nothing is sent anywhere (Vercel and Neon
are not reachable from here: run the printed commands where the Vercel CLI is logged in).

Secrets are read on the controller as the deploys read them: ``GEPT_ENGINE_API_KEY`` /
``GEPT_WEBHOOK_SECRET``, their ``*_FILE`` variants, then ``<secrets_dir>/<name>`` (0600).

Example:
    $ gept web env --inventory inventory/lab.py
    $ gept web env --inventory inventory/production.py --target production --json
"""

from __future__ import annotations

import json
import os
import shlex
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from gept.core.config import read_secret_file
from gept.core.errors import ConfigError
from gept.inventory import Host, load_inventory

app = typer.Typer(help="GePT's web app (Vercel) and the engine: the wiring.",
                  no_args_is_help=True)

SECRET_ENV = {"engine_api_key": "GEPT_ENGINE_API_KEY", "webhook_secret": "GEPT_WEBHOOK_SECRET"}
CA_FILE = "engine-tls-ca.crt"


def controller_secret(name: str, data: Any) -> str:
    """A secret as the deploys find it on the controller.

    Raises:
        ConfigError: naming every place looked at when it is missing.
    """
    env = SECRET_ENV[name]
    if os.environ.get(env):
        return os.environ[env]
    if os.environ.get(env + "_FILE"):
        return read_secret_file(Path(os.environ[env + "_FILE"]))
    path = Path(str(data.get("secrets_dir") or "~/.config/gept/secrets")).expanduser() / name
    if not path.exists():
        raise ConfigError(f"secret {name} is not set: export {env}, or {env}_FILE, or "
                          f"create {path} (mode 0600)", field=name)
    return read_secret_file(path)


@dataclass(frozen=True)
class Endpoint:
    """Where the engine answers from outside its host, and what to trust for TLS."""

    url: str
    verify: str | bool
    plain_url: str
    """The engine's own port seen from outside (must refuse)."""


def tls_verify(verify: str | bool) -> ssl.SSLContext | bool:
    """What an HTTP client trusts: the public CAs (True) or a context with one CA file."""
    return ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify


def endpoint(host: Host) -> Endpoint:
    """The engine's public TLS address (lab: a published port and the lab CA)."""
    data = host.data
    if data.get("engine_tls_lab_ca"):
        published = data.get("published_ports") or {}
        if "engine_tls" not in published:
            raise ConfigError(f"{host.name} publishes no engine_tls port (lab up again?)",
                              field="published_ports")
        folder = Path(str(data.get("secrets_dir"))).expanduser()
        return Endpoint(f"https://127.0.0.1:{published['engine_tls']}", str(folder / CA_FILE),
                        f"http://127.0.0.1:{published.get('engine', data.get('engine_port'))}")
    domain = str(data.get("engine_tls_domain") or "")
    if not domain:
        raise ConfigError("engine_tls_domain is empty: export GEPT_ENGINE_DOMAIN (the name "
                          "the web app calls)", field="engine_tls_domain")
    port = int(data.get("engine_tls_port") or 443)
    suffix = "" if port == 443 else f":{port}"
    return Endpoint(f"https://{domain}{suffix}", True,
                    f"http://{domain}:{data.get('engine_port') or 8000}")


def vercel_env(host: Host) -> dict[str, str]:
    """The Vercel project's variables for the engine on ``host``."""
    ep = endpoint(host)
    return {"PREDICTION_API": ep.url,
            "PREDICTION_API_KEY": controller_secret("engine_api_key", host.data),
            "ENGINE_WEBHOOK_URL": f"{ep.url}/webhooks/trades",
            "WEBHOOK_SECRET": controller_secret("webhook_secret", host.data)}


def render(values: dict[str, str], target: str) -> str:
    """Dotenv lines, then the equivalent ``vercel env add`` commands."""
    lines = ["# .env for GePT's web app (packages/web): the engine it calls"]
    lines += [f"{k}={shlex.quote(v)}" for k, v in values.items()]
    lines += ["", f"# or, where the Vercel CLI is logged in to the project ({target}):"]
    lines += [f"printf %s {shlex.quote(v)} | vercel env add {k} {target}"
              for k, v in values.items()]
    return "\n".join(lines)


@app.command("env")
def env(
    inventory: Path = typer.Option(..., "--inventory", "-i", help="pyinfra inventory file"),
    host: str = typer.Option("ampere", "--host", help="the inventory host running the engine"),
    target: str = typer.Option("production", "--target",
                               help="Vercel environment: production, preview or development"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Print what the Vercel project needs to call the engine (dotenv and vercel commands).

    Example:
        $ gept web env --inventory inventory/lab.py
        PREDICTION_API=https://127.0.0.1:18443
        ...
    """
    if target not in ("production", "preview", "development"):
        raise ConfigError("--target must be production, preview or development",
                          field="target")
    chosen = load_inventory(inventory).host(host)
    values = vercel_env(chosen)
    if as_json:
        typer.echo(json.dumps({"host": chosen.name, "target": target, "env": values,
                               "tls_ca": endpoint(chosen).verify}, indent=2))
    else:
        typer.echo(render(values, target))
