"""The engine's settings for GePT's web app: webhook secret, alerts and resync URLs.

Read from the environment (prefix ``GEPT_``) like every other setting; secrets may come from
files readable only by their owner (mode 0600), which is how the deploy installs them.

* ``GEPT_WEBHOOK_SECRET`` / ``GEPT_WEBHOOK_SECRET_FILE``: the HMAC secret shared with the web
  app (its ``WEBHOOK_SECRET``). Unset: ``POST /webhooks/trades`` answers 503 and no alert is
  pushed.
* ``GEPT_WEB_ALERTS_URL``: the web app's ``/api/webhooks/alerts`` (E1). Unset: no push.
* ``GEPT_WEB_RESYNC_URL``: the web app's ``/api/trades/resync`` (E2).
* ``GEPT_WEB_USERS_DSN`` / ``GEPT_WEB_USERS_DSN_FILE``: a read-only DSN of the web app's
  database (Neon), read once at start to rebuild an empty registry from ``active_trades``.
* ``GEPT_WEBHOOK_TOLERANCE_SECONDS`` (300), ``GEPT_ENGINE_MAX_BODY_BYTES`` (65536),
  ``GEPT_PRICE_DROP_MONITOR_INTERVAL`` (300, 0 disables), ``GEPT_CROWDING_LIMIT`` (20 users
  per item; 0 disables).

Example:
    >>> WebSettings(webhook_secret="s" * 32).secret()
    'ssssssssssssssssssssssssssssssss'
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from gept.core.config import PLACEHOLDER_SECRETS, read_secret_file
from gept.core.errors import ConfigError


class WebSettings(BaseSettings):
    """What the engine needs to serve and call back GePT's web app."""

    model_config = SettingsConfigDict(env_prefix="GEPT_", extra="ignore")

    webhook_secret: SecretStr | None = Field(
        None, description="HMAC secret shared with the web app (its WEBHOOK_SECRET); unset: "
                          "webhooks answer 503 and no alert is pushed.")
    webhook_secret_file: Path | None = Field(None, description="File (mode 0600) holding it.")
    webhook_tolerance_seconds: int = Field(300, description="Oldest signed webhook accepted.")
    web_alerts_url: str | None = Field(None, description="The web app's /api/webhooks/alerts "
                                                         "(E1); unset: no push.")
    web_resync_url: str | None = Field(None, description="The web app's /api/trades/resync "
                                                         "(E2).")
    web_users_dsn: SecretStr | None = Field(
        None, description="Read-only DSN of the web app's database (Neon), read once at start "
                          "to rebuild an empty trade registry.")
    web_users_dsn_file: Path | None = Field(None, description="File (mode 0600) holding it.")
    engine_max_body_bytes: int = Field(65536, description="Largest request body accepted.")
    price_drop_monitor_interval: float = Field(300.0, description="Seconds between price-drop "
                                                                  "checks (0: off).")
    crowding_limit: int = Field(20, description="Users recommended one item at most (0: off).")
    crowding_window_seconds: int = Field(3600, description="Window the crowding limit counts.")
    alert_retries: int = Field(4, description="Attempts per alert delivery.")
    alert_backoff_seconds: float = Field(1.0, description="First wait between alert attempts.")

    def secret(self) -> str | None:
        """The webhook secret, or None when webhooks are not configured.

        Raises:
            ConfigError: for a placeholder or a secret under 16 characters.
        """
        value = None
        if self.webhook_secret is not None:
            value = self.webhook_secret.get_secret_value()
        elif self.webhook_secret_file is not None:
            value = read_secret_file(self.webhook_secret_file)
        if value is None or value == "":
            return None
        if value.strip().lower() in PLACEHOLDER_SECRETS or len(value) < 16:
            raise ConfigError("GEPT_WEBHOOK_SECRET must be a real secret of at least 16 "
                              "characters; placeholders are refused", field="webhook_secret")
        return value

    def users_dsn(self) -> str | None:
        """The web app's read-only DSN (``active_trades``), or None."""
        if self.web_users_dsn is not None:
            return self.web_users_dsn.get_secret_value() or None
        if self.web_users_dsn_file is not None:
            return read_secret_file(self.web_users_dsn_file) or None
        return None
