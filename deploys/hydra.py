"""Hydra: the training environment, primary inference every 5 minutes, and the SSH tunnel
that carries its database traffic to Ampere's PostgreSQL.

Usage:
    pyinfra -y inventory/production.py deploys/ampere.py deploys/hydra.py

Runs only on hosts of the ``hydra`` group; the danger-zone guard runs first.
"""

from pyinfra import host

from deploys import guard
from deploys.tasks import app, base, config, inference, training, tunnel

if "hydra" in host.groups:
    guard.check()
    base.configure_base()
    app.install_release()
    config.write_config()
    training.prepare_training()
    tunnel.run_tunnel()
    inference.schedule_inference()
