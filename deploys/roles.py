"""What each role runs, in one place, so that operations both hosts share (base system,
release, configuration) are the *same* pyinfra operations and run on both in parallel.

Entry points: ``site.py`` (every role), ``ampere.py``, ``hydra.py`` (one role each).
"""

from __future__ import annotations

from pyinfra import host

from deploys import guard
from deploys.tasks import (
    agent,
    app,
    backups,
    base,
    collectors,
    config,
    docker,
    engine,
    exporter,
    inference,
    models,
    monitoring,
    postgres,
    schema,
    standby,
    training,
    tunnel,
)

# ``db_standby``: PostgreSQL streaming replicas of Ampere's (inventory group ``db_standby``).
ROLES = ("ampere", "hydra", "db_standby")


def converge(only: str | None = None) -> None:
    """Converge this host into its role(s); ``only`` limits to one role.

    The guard runs first, while pyinfra is still planning: a refused danger zone ends the
    whole run (exit 3) before any host has changed.
    """
    roles = [r for r in ROLES if r in host.groups and (only is None or r == only)]
    if not roles:
        return
    approved = guard.check()
    is_ampere = "ampere" in roles
    is_hydra = "hydra" in roles
    is_standby = "db_standby" in roles
    # A database host's replication role, decided before anything runs (a disagreement
    # between the inventory's db_primary and the host refuses the whole run, exit 3).
    db_role = standby.replication_role()

    base.configure_base()
    settings = config.write_config()
    if db_role is not None:
        postgres.configure_postgres(password_file=settings[0],
                                    restart_allowed="restart-postgres" in approved,
                                    role=db_role)
    current = app.install_release()
    agent.configure_agent(roles)
    backups.configure_backups(roles)
    if db_role is not None:
        standby.configure_replication(db_role)
        tunnel.accept_tunnel()
    if db_role == "primary":
        schema.migrate_schema(schema_zone_approval=approved.get("predictions-schema"))
    if is_ampere:
        engine.run_engine(triggers=[current, *settings])
        docker.install_docker()
        collectors.run_collectors()
        monitoring.run_monitoring()
    if is_hydra:
        training.prepare_training()
        tunnel.run_tunnel()
        models.apply_model_pins(approval=approved.get("model-registry"))
    if is_standby:
        exporter.export_metrics()
    if not is_standby:
        inference.schedule_inference()
