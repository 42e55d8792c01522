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

Web app settings (``gept.engine.websettings``): ``GEPT_WEBHOOK_SECRET[_FILE]``,
``GEPT_WEB_ALERTS_URL``, ``GEPT_WEB_RESYNC_URL``, ``GEPT_WEB_USERS_DSN[_FILE]``,
``GEPT_ENGINE_MAX_BODY_BYTES`` (65536), ``GEPT_PRICE_DROP_MONITOR_INTERVAL`` (300),
``GEPT_CROWDING_LIMIT`` (20).

Routes: ``/healthz`` ``/ready`` ``/api/v1/health`` ``/metrics`` (no key); the clients'
contract (web-contract.md), with ``X-API-Key``: ``GET /api/v1/recommendations`` (a bare
camelCase array), ``/api/v1/recommendations/item/{id}``, ``/api/v1/recommendations/{rec_id}``,
``POST /api/v1/recommendations/update``, ``POST /api/v1/recommendations/{rec_id}/outcome``,
``POST /api/v1/opportunities``, ``POST /api/v1/feedback``, ``/api/v1/feedback/analytics``,
``/api/v1/users/{hash}/stats``, ``/api/v1/items/search``, ``/api/v1/items/{id}/price-history``;
``POST /webhooks/trades`` (HMAC-signed, no key). Our own: ``/api/v1/flips[/{id}]``,
``/api/v1/predictions/{item_id}``, ``/api/v1/models``. OpenAPI at ``/docs``.

Modules: ``main`` (``create_app``), ``deps``, ``routes/``, ``cache`` (the newest batch in
memory), ``recommend`` (ranking, sizing, tax), ``contract`` (the clients' shapes, rec ids,
categories, trend, why chips), ``advice`` (order updates), ``opportunities`` (route),
``trades`` (the persistent registry, resync), ``webhook`` (HMAC), ``alerts`` (the price-drop
monitor, E1), ``crowding``, ``outcomes``, ``prices``, ``webenv`` (``gept web env``),
``policy``, ``repository``, ``security``, ``middleware``, ``metrics``, ``schemas`` /
``webschemas``.
"""
