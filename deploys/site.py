"""Both roles in one run: shared operations run on Ampere and Hydra in parallel, and
Ampere authorizes Hydra's tunnel key before Hydra starts the tunnel.

Usage:
    pyinfra -y inventory/production.py deploys/site.py
    pyinfra -y inventory/lab.py deploys/site.py --data approvals=gept2....  # a signed approval
"""

from deploys.roles import converge

converge()
