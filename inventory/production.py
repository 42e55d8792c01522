"""Production inventory: Ampere (database, engine, collectors) and Hydra (training, inference).

Nothing secret or site-specific lives here. Each host is addressed by an SSH alias or an
address taken from the environment, and the SSH user too; keys stay in the operator's
ssh-agent or ``~/.ssh/config``. Host keys are checked strictly against the operator's
known_hosts: a changed key stops the deploy.

Environment:
    GEPT_AMPERE_HOST / GEPT_HYDRA_HOST: address or ``~/.ssh/config`` alias
        (default: the aliases ``ampere`` and ``hydra``).
    GEPT_AMPERE_USER / GEPT_HYDRA_USER: SSH user (default: from ssh config).
    GEPT_SSH_CONFIG: an ssh_config file to read (default ``~/.ssh/config``).
    GEPT_KNOWN_HOSTS: a known_hosts file (default ``~/.ssh/known_hosts``).
    GEPT_TUNNEL_TARGET: Ampere's address as Hydra reaches it, for the database tunnel
        (default: GEPT_AMPERE_HOST).
    GEPT_AMPERE_STANDBY_HOST: the streaming standby's address (group ``db_standby``; no
        standby when unset), with ``GEPT_AMPERE_STANDBY_USER`` / ``_PORT`` as above.

Example:
    $ GEPT_AMPERE_HOST=ampere.example.net pyinfra inventory/production.py deploys/ampere.py
"""

import os


def _host(name: str) -> tuple[str, dict[str, object]]:
    prefix = f"GEPT_{name.upper()}_"
    data: dict[str, object] = {
        "gept_role": name,
        "ssh_strict_host_key_checking": "yes",
        "ssh_known_hosts_file": os.environ.get("GEPT_KNOWN_HOSTS", "~/.ssh/known_hosts"),
        "ssh_config_file": os.environ.get("GEPT_SSH_CONFIG", "~/.ssh/config"),
    }
    user = os.environ.get(prefix + "USER")
    if user:
        data["ssh_user"] = user
    port = os.environ.get(prefix + "PORT")
    if port:
        data["ssh_port"] = int(port)
    return os.environ.get(prefix + "HOST", name), data


ampere = [_host("ampere")]
_hydra_name, _hydra_data = _host("hydra")
_hydra_data["tunnel_target_host"] = os.environ.get(
    "GEPT_TUNNEL_TARGET", os.environ.get("GEPT_AMPERE_HOST", "ampere"))
hydra = [(_hydra_name, _hydra_data)]
if os.environ.get("GEPT_AMPERE_STANDBY_HOST"):
    db_standby = [_host("ampere_standby")]
