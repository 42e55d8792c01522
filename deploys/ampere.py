"""Ampere: PostgreSQL, the recommendation engine, collectors, monitoring, fallback inference,
backups, and Ampere's half of Hydra's database tunnel.

Usage:
    pyinfra -y inventory/production.py deploys/ampere.py --limit ampere
    pyinfra -y inventory/production.py deploys/site.py      # both roles, in parallel

Runs only on hosts of the ``ampere`` group (see ``deploys/roles.py``).
"""

from deploys.roles import converge

converge(only="ampere")
