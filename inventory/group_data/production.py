"""Production's differences from the lab, as data only: what comes from the operator's
environment on the controller (never from the repository).

* ``GEPT_ENGINE_DOMAIN``: the public name of Ampere's engine, the web app's
  ``PREDICTION_API`` host; Caddy obtains its certificate (ACME, TLS-ALPN on 443).
* ``GEPT_ENGINE_ACME_EMAIL``: the ACME account's contact.
* ``GEPT_WEB_ALERTS_URL`` / ``GEPT_WEB_RESYNC_URL``: the web app's ``/api/webhooks/alerts``
  (E1) and ``/api/trades/resync`` (E2) on Vercel; empty: not called.
* ``GEPT_BACKUP_S3_BUCKET`` / ``GEPT_BACKUP_S3_ENDPOINT`` / ``GEPT_BACKUP_S3_REGION``: the
  pgBackRest repository (Oracle Object Storage's S3-compatible endpoint,
  ``<namespace>.compat.objectstorage.<region>.oraclecloud.com``). Its access key, secret
  and the repository's encryption passphrase are secrets (``backup_s3_key``,
  ``backup_s3_key_secret``, ``backup_cipher_pass``; deploys/secrets.py).
"""

import os

engine_tls_domain = os.environ.get("GEPT_ENGINE_DOMAIN", "")
engine_tls_acme_email = os.environ.get("GEPT_ENGINE_ACME_EMAIL", "ops@gept.example")
web_alerts_url = os.environ.get("GEPT_WEB_ALERTS_URL", "")
web_resync_url = os.environ.get("GEPT_WEB_RESYNC_URL", "")
price_drop_monitor_interval = 300
backup_s3 = {
    "bucket": os.environ.get("GEPT_BACKUP_S3_BUCKET", "gept-backups"),
    "endpoint": os.environ.get("GEPT_BACKUP_S3_ENDPOINT", "objectstorage.example.invalid"),
    "region": os.environ.get("GEPT_BACKUP_S3_REGION", "eu-frankfurt-1"),
}
