"""Hydra's database tunnels: ``gept-db-tunnel.service`` forwards Hydra 127.0.0.1:15432 to
Ampere 127.0.0.1:5432 over SSH, with a key made on Hydra and authorized on Ampere for port
forwarding to PostgreSQL only; each other database host (group ``db_standby``) gets its own
tunnel, ``gept-db-tunnel-<host>.service`` on the next local port (15433, ...). Inference and
training list every tunnel in one libpq string with ``target_session_attrs=read-write``
(``deploys/tasks/standby.py``), so after a promotion they write to the new primary with
nothing re-pointed.

Ampere's half authorizes Hydra's public key. On a first converge the key does not exist yet
when pyinfra plans, so the authorization runs as a callback at execution time, creating the
key on Hydra if needed (the same command Hydra's own deploy uses); later runs read the key
at plan time and change nothing.
"""

from __future__ import annotations

import base64
import re
import shlex
from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File, FileContents
from pyinfra.operations import files, python, server, systemd

from deploys.guard import peer
from deploys.managed import Dir, directories_present, files_present, literal, rendered
from deploys.tasks.standby import client_ca_files, db_address, tunnel_targets
from deploys.tasks.users import system_user

KEY_DIR = "/etc/gept/tunnel"
KEY = f"{KEY_DIR}/id_ed25519"
HOST_KEY = "/etc/ssh/ssh_host_ed25519_key.pub"


def keygen_command(owner: str) -> str:
    """Create the tunnel key unless it exists (shared by both halves: never overwrites)."""
    return (f"mkdir -p {KEY_DIR} && chmod 0700 {KEY_DIR} && chown {owner}: {KEY_DIR} && "
            f"(test -f {KEY} || ssh-keygen -q -t ed25519 -N '' -C gept-db-tunnel -f {KEY}) && "
            f"chown {owner}: {KEY} {KEY}.pub && chmod 0600 {KEY}")


# One OpenSSH ed25519 public key: type, base64 blob, optional plain comment. Nothing else may
# reach Ampere's authorized_keys: a second line would be a second, unrestricted key, and
# quotes or options would widen what the tunnel account may do.
_ED25519 = re.compile(r"ssh-ed25519 ([A-Za-z0-9+/]{68}) ?([A-Za-z0-9@._:+-]{0,64})")
_BLOB_PREFIX = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20"


def validated_public_key(text: str) -> str:
    """``text`` as exactly one ``ssh-ed25519 <base64> [comment]`` line, or ValueError.

    Example:
        >>> validated_public_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + "A" * 43
        ...                      + " gept-db-tunnel\\n")[:20]
        'ssh-ed25519 AAAAC3Nz'
    """
    line = text[:-1] if text.endswith("\n") else text
    match = _ED25519.fullmatch(line)
    if match is None:
        raise ValueError(f"not one ssh-ed25519 public key line: {text[:80]!r}")
    blob = base64.b64decode(match.group(1) + "=" * (-len(match.group(1)) % 4), validate=True)
    if len(blob) != len(_BLOB_PREFIX) + 32 or not blob.startswith(_BLOB_PREFIX):
        raise ValueError("the key's blob is not an ed25519 public key")
    return line if match.group(2) else line.rstrip(" ")


def authorized_line(public_key: str, port: int) -> str:
    """The key may only forward to PostgreSQL on Ampere's loopback; no shell, no pty.

    Raises:
        ValueError: ``public_key`` is not exactly one ed25519 public key line.
    """
    return (f'restrict,port-forwarding,permitopen="127.0.0.1:{int(port)}",'
            f'command="/usr/sbin/nologin" {validated_public_key(public_key.strip())}\n')


@deploy("Accept the database tunnel from Hydra")
def accept_tunnel() -> None:
    """On Ampere: the tunnel account and Hydra's key, restricted to port forwarding."""
    data = host.data
    hydra = peer("hydra")
    user = data.get("tunnel_user") or "gept-tunnel"
    home = f"/var/lib/{user}"
    system_user("Create the tunnel account", user, home=home, shell="/usr/sbin/nologin",
                create_home=True)
    directories_present(name="Create the tunnel account's .ssh",
                        dirs=[Dir(f"{home}/.ssh", "0700", user, user)])
    dest = f"{home}/.ssh/authorized_keys"
    pub = None
    if hydra is not None:
        lines = hydra.get_fact(FileContents, path=f"{KEY}.pub")
        pub = lines[0] if lines else None
    pub = pub or data.get("tunnel_public_key")
    if pub:
        files_present(name="Authorize Hydra's tunnel key", files=[
            literal(authorized_line(pub, data.postgres_port), dest, "0600", user, user)])
    elif hydra is not None:
        python.call(name="Authorize Hydra's tunnel key (made on Hydra now)",
                    function=_authorize_at_run_time, hydra=hydra, dest=dest, user=user,
                    port=data.postgres_port, owner=hydra.data.gept_user)


def _authorize_at_run_time(hydra: object, dest: str, user: str, port: int,
                           owner: str) -> None:
    ok, out = hydra.run_shell_command(  # type: ignore[attr-defined]
        f"{keygen_command(owner)} && cat {KEY}.pub", _sudo=True)
    if not ok:
        raise RuntimeError(f"could not create the tunnel key on hydra: {out.stderr}")
    # Hydra's output is data, never shell: validated as one key line, then uploaded as a
    # file (no printf, no interpolation); only fixed names reach the shell, quoted.
    line = authorized_line(out.stdout.strip(), port)  # several lines: refused
    if not host.put_file(StringIO(line), dest, remote_temp_filename=host.get_temp_filename(dest),
                         _sudo=True):
        raise RuntimeError("could not upload Hydra's tunnel key to ampere")
    ok, out = host.run_shell_command(
        f"chown {shlex.quote(user)}: {shlex.quote(dest)} && chmod 0600 {shlex.quote(dest)}",
        _sudo=True)
    if not ok:
        raise RuntimeError(f"could not authorize the tunnel key on ampere: {out.stderr}")


def tunnel_unit(host_name: str, first: bool) -> str:
    """The unit of the tunnel to database host ``host_name`` (Ampere's keeps its name).

    Example:
        >>> tunnel_unit("ampere", True), tunnel_unit("ampere-standby", False)
        ('gept-db-tunnel.service', 'gept-db-tunnel-ampere-standby.service')
    """
    return "gept-db-tunnel.service" if first else f"gept-db-tunnel-{host_name}.service"


@deploy("Run the database tunnel to Ampere")
def run_tunnel() -> None:
    """On Hydra: the key, the database hosts' host keys, one always-restarting tunnel unit
    per database host, and the internal CA the database URL verifies against."""
    data = host.data
    owner = data.gept_user
    enabled = bool(data.get("tunnel_enabled", True))
    targets = tunnel_targets() or [(None, int(data.tunnel_local_port))]
    units = [tunnel_unit(d.name if d is not None else "ampere", i == 0)
             for i, (d, _port) in enumerate(targets)]
    if not enabled:
        for name in units:
            systemd.service(name=f"Stop the database tunnel ({name})", service=name,
                            running=False, enabled=False)
            files.file(name=f"Remove the tunnel unit ({name})",
                       path=f"/etc/systemd/system/{name}", present=False)
        return
    if not host.get_fact(File, path=KEY):
        server.shell(name="Create the tunnel key", commands=[keygen_command(owner)])
    wanted = list(client_ca_files(data))
    known: list[str] = []
    for i, (d, local_port) in enumerate(targets):
        first = i == 0
        name_of = d.name if d is not None else "ampere"
        other = peer(name_of)
        if first:
            target, port = str(data.tunnel_target_host), int(data.tunnel_target_port)
            host_key = data.get("tunnel_target_host_key")
        else:
            target = str(d.data.get("tunnel_address") or db_address(d))
            port = int(d.data.get("ssh_port_internal") or 22)
            host_key = " ".join(str(d.data.get("ssh_host_public_key") or "").split()[:2])
        if other is not None:
            lines = other.get_fact(FileContents, path=HOST_KEY)
            if lines:
                host_key = " ".join(lines[0].split()[:2])
        known_name = target if port == 22 else f"[{target}]:{port}"
        if host_key:
            known.append(f"{known_name} {host_key}\n")
        wanted.append(rendered("tunnel/gept-db-tunnel.service.j2",
                               f"/etc/systemd/system/{units[i]}", key=KEY,
                               known_hosts=f"{KEY_DIR}/known_hosts", target=target,
                               target_port=port, local_port=local_port, target_name=name_of))
    if known:
        wanted.append(literal("".join(known), f"{KEY_DIR}/known_hosts", "0644", owner, owner))
    unit = files_present(name="Install the tunnel units and the database hosts' host keys",
                         files=wanted)
    systemd.daemon_reload(name="Reload systemd for the new tunnel unit", _if=unit.did_change)
    for name in units:
        systemd.service(name=f"Start the database tunnel ({name})", service=name,
                        running=True, enabled=True)
        systemd.service(name=f"Restart the tunnel for a new unit or host key ({name})",
                        service=name, restarted=True, _if=unit.did_change)
