"""Hydra: the training environment (CatBoost, GPU settings from inventory data), primary
inference every 5 minutes, the SSH tunnel to Ampere's PostgreSQL, the models directory.

Usage:
    pyinfra -y inventory/production.py deploys/hydra.py --limit hydra
    pyinfra -y inventory/production.py deploys/site.py      # both roles, in parallel

Runs only on hosts of the ``hydra`` group (see ``deploys/roles.py``).
"""

from deploys.roles import converge

converge(only="hydra")
