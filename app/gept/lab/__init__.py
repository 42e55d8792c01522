"""The lab: a two-host copy of production (ampere, hydra) on this machine.

Debian bookworm containers with systemd as PID 1 and sshd, built from debootstrap and cached
by recipe hash (`gept.lab.image`), started with container flags measured on this kind of
machine (`gept.lab.hosts` says why each) on a user-defined network where they resolve
each other by name, reached only through SSH on 127.0.0.1 ports (`gept.lab.topology` holds
the one port map). The key pair, ssh_config and known_hosts live in the lab state directory
(`gept.lab.keys`, `gept.lab.state`), never in the repository; ``inventory/lab.py`` reads them.

Example:
    $ gept lab up && gept lab ssh hydra -- getent hosts ampere
    >>> from gept.lab.lab import Lab            # doctest: +SKIP
    >>> Lab.from_env().up()["hosts"]["ampere"]["ssh_port"]    # doctest: +SKIP
    2221
"""
