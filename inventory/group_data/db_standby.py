"""Database standbys: a PostgreSQL streaming replica of Ampere's, promotable in its place
(the ``promote-standby`` and ``switchover`` runbooks), and the host of restore drills."""

app_root = "/opt/gept/app"
# Standbys run no inference: the cron belongs to Ampere (fallback) and Hydra (primary).
inference_role = "none"
