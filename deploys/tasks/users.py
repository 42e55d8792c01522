"""System accounts, checked with one ``getent`` instead of pyinfra's full user listing
(the difference is most of a second per account on every no-op run)."""

from __future__ import annotations

from pyinfra import host
from pyinfra.operations import server

from deploys.facts.gept import PasswdEntry


def system_user(name: str, user: str, home: str, shell: str, group: str | None = None,
                create_home: bool = False) -> None:
    """Create ``user`` unless an account with that home and shell exists already."""
    entry = host.get_fact(PasswdEntry, user=user)
    if entry and entry["home"] == home and entry["shell"] == shell:
        return
    server.user(name=name, user=user, group=group, system=True, home=home, shell=shell,
                create_home=create_home)
