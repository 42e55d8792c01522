"""The lab hosts: ampere, hydra and ampere-standby, Debian systemd containers on this machine.

Reached only through SSH on 127.0.0.1 ports, with the key pair and known_hosts that
``gept lab up`` keeps in the lab state directory (``~/.local/state/gept/lab``, or
``GEPT_LAB_STATE_DIR``). Nothing machine-specific is in this file: ports and paths come
from ``gept.lab`` (``GEPT_LAB_PREFIX``, ``GEPT_LAB_PORT_OFFSET``) and the lab state.

Groups: ``ampere``, ``hydra``, ``db_standby`` (database standbys) and, from this file's
name, ``lab``.

Usage:
    gept lab up
    pyinfra -y inventory/lab.py deploys/ampere.py --limit ampere
"""

from gept.lab.state import host_data as _host_data

_data = _host_data()

ampere = [("ampere", _data["ampere"])]
hydra = [("hydra", _data["hydra"])]
db_standby = [("ampere-standby", _data["ampere-standby"])]
