"""`gept lab` commands: a two-host copy of production (ampere, hydra) on this machine.

Example:
    $ gept lab up            # build/reuse the image, start ampere and hydra
    $ gept lab status --json
    $ gept lab ssh hydra -- getent hosts ampere
    $ gept lab down          # --purge also removes the images and the key pair
"""

from __future__ import annotations

import os
import sys

import typer

from gept.core.output import emit

app = typer.Typer(help="The lab: a two-host copy of production on this machine.",
                  no_args_is_help=True)


def _ports(ports: dict[str, int]) -> str:
    return ", ".join(f"{svc} 127.0.0.1:{port}" for svc, port in ports.items())


@app.command()
def up(as_json: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Start the lab (idempotent: running hosts are reused).

    Example:
        $ gept lab up --json
    """
    from gept.lab.lab import Lab

    report = Lab.from_env().up()
    lines = [f"lab {report['prefix']!r} is up in {report['seconds']} s "
             f"(image {report['image']}{', built' if report['image_built'] else ', cached'})"]
    for name, host in report["hosts"].items():
        lines.append(f"  {name:7} {host['action']:8} systemd {host['system']:9} "
                     f"{_ports(host['published_ports'])}")
    lines.append(f"  ssh: gept lab ssh ampere   (or ssh -F {report['ssh_config']} ampere)")
    emit(report, as_json, "\n".join(lines))


@app.command()
def down(
    purge: bool = typer.Option(False, "--purge", help="Also remove the images and key pair."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Remove the lab's hosts, volumes and network.

    Example:
        $ gept lab down --purge
    """
    from gept.lab.lab import Lab

    report = Lab.from_env().down(purge=purge)
    removed = report.get("removed", {})
    human = (f"lab removed in {report['seconds']} s: "
             + "; ".join(f"{kind} {' '.join(v)}" for kind, v in removed.items() if v)
             if any(removed.values()) else "nothing to remove")
    emit(report, as_json, human)


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Print the result as JSON.")
           ) -> None:
    """Show the engine, the image and each host's container, systemd state and ports.

    Exits 1 when the lab is not fully up.

    Example:
        $ gept lab status --json
    """
    from gept.lab.lab import Lab

    report = Lab.from_env().status()
    lines = [f"engine {report['engine']}; image {report['image']} "
             f"({'cached' if report['image_cached'] else 'not built'})"]
    for name, host in report["hosts"].items():
        lines.append(f"  {name:7} {host['container']:8} systemd {host['system'] or '-':9} "
                     f"{_ports(host['published_ports'])}")
    emit(report, as_json, "\n".join(lines))
    if not report.get("up"):
        raise typer.Exit(1)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def ssh(
    ctx: typer.Context,
    host: str = typer.Argument(..., help="ampere or hydra"),
) -> None:
    """Open a shell on a lab host, or run a command: ``gept lab ssh HOST -- CMD``.

    Example:
        $ gept lab ssh hydra -- systemctl is-system-running
    """
    from gept.lab.lab import Lab

    argv = Lab.from_env().ssh_argv(host, list(ctx.args) or None)
    sys.stdout.flush()
    os.execvp(argv[0], argv)  # noqa: S606 - replace this process with ssh (a terminal)
