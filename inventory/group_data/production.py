"""Production's differences from the lab, as data only: what comes from the operator's
environment on the controller (never from the repository).

* ``GEPT_ENGINE_DOMAIN``: the public name of Ampere's engine, the web app's
  ``PREDICTION_API`` host; Caddy obtains its certificate (ACME, TLS-ALPN on 443).
* ``GEPT_ENGINE_ACME_EMAIL``: the ACME account's contact.
* ``GEPT_WEB_ALERTS_URL`` / ``GEPT_WEB_RESYNC_URL``: the web app's ``/api/webhooks/alerts``
  (E1) and ``/api/trades/resync`` (E2) on Vercel; empty: not called.
"""

import os

engine_tls_domain = os.environ.get("GEPT_ENGINE_DOMAIN", "")
engine_tls_acme_email = os.environ.get("GEPT_ENGINE_ACME_EMAIL", "ops@gept.example")
web_alerts_url = os.environ.get("GEPT_WEB_ALERTS_URL", "")
web_resync_url = os.environ.get("GEPT_WEB_RESYNC_URL", "")
price_drop_monitor_interval = 300
