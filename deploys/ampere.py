"""Ampere: PostgreSQL, the recommendation engine, collectors, monitoring, fallback inference,
backups — and Ampere's half of Hydra's database tunnel.

Usage:
    pyinfra -y inventory/production.py deploys/ampere.py deploys/hydra.py
    pyinfra -y inventory/lab.py deploys/ampere.py deploys/hydra.py --data coordination_token=...

Runs only on hosts of the ``ampere`` group. The danger-zone guard runs first, while pyinfra
is still planning: a refused zone ends the run (exit 3) before any host changes.
"""

from pyinfra import host

from deploys import guard
from deploys.tasks import (
    app,
    backups,
    base,
    collectors,
    config,
    docker,
    engine,
    inference,
    models,
    monitoring,
    postgres,
    schema,
    tunnel,
)

if "ampere" in host.groups:
    approved = guard.check()
    base.configure_base()
    postgres.configure_postgres(restart_allowed="restart-postgres" in approved)
    current = app.install_release()
    settings = config.write_config()
    schema.migrate_schema(schema_zone_allowed="predictions-schema" in approved)
    engine.run_engine(triggers=[current, *settings])
    models.apply_model_pins(allowed="model-registry" in approved)
    docker.install_docker()
    collectors.run_collectors()
    monitoring.run_monitoring()
    inference.schedule_inference()
    backups.schedule_backups()
    tunnel.accept_tunnel()
