"""The recommendation engine: FastAPI on uvicorn (uvloop + httptools), port 8000.

Run it as the systemd unit does::

    <venv>/bin/gept serve --host 127.0.0.1 --port 8000      # EnvironmentFile=/etc/gept/engine.env

Environment (prefix ``GEPT_``; see ``gept.core.config.Settings``):

* ``GEPT_DATABASE_URL`` (and optionally ``GEPT_DATABASE_PASSWORD_FILE``, mode 0600)
* ``GEPT_ENGINE_API_KEY`` or ``GEPT_ENGINE_API_KEY_FILE`` (mode 0600): required; missing or
  placeholder keys (and keys under 16 characters) make ``gept serve`` exit 2
* ``GEPT_STALE_AFTER_SECONDS`` (600): beyond this age responses say ``stale: true`` and
  ``/api/v1/health`` says ``degraded``
* ``GEPT_ENGINE_RATE_LIMIT_PER_MINUTE`` (600, per client and key, per worker; 0 disables)
* ``GEPT_ENGINE_HOST`` / ``GEPT_ENGINE_PORT`` / ``GEPT_ENGINE_WORKERS`` (127.0.0.1 / 8000 / 1)
* ``GEPT_DB_POOL_MIN`` / ``GEPT_DB_POOL_MAX`` / ``GEPT_DB_CONNECT_TIMEOUT`` (1 / 8 / 5 s)
* ``GEPT_LOG_LEVEL`` (INFO writes one access line per request, with its request id) and
  ``GEPT_LOG_JSON`` (true for journald/agents)

Routes: ``/healthz`` ``/ready`` ``/api/v1/health`` ``/metrics`` (no key) and, with
``X-API-Key``: ``/api/v1/recommendations[/{id}]``, ``/api/v1/predictions/{item_id}``,
``/api/v1/items/search``, ``/api/v1/items/{item_id}/price-history``, ``/api/v1/models``.
OpenAPI at ``/docs`` and ``/openapi.json``.

Modules: ``main`` (``create_app``), ``deps`` (dependencies), ``routes/``, ``cache`` (the
newest batch in memory, database reachability), ``recommend`` (ranking, sizing, tax),
``policy`` (styles and risks), ``repository`` (every SQL statement), ``security`` (key,
rate limits), ``middleware`` (request ids, metrics, access log), ``metrics``, ``schemas``.
"""
