"""Settings from the environment (prefix ``GEPT_``), one object for the whole program.

Secrets come from the environment or from files readable only by their owner (mode 0600);
never from the repository.

Example:
    >>> import os
    >>> os.environ["GEPT_STALE_AFTER_SECONDS"] = "900"
    >>> Settings().stale_after_seconds
    900
"""

from __future__ import annotations

import re
import stat
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gept.core.errors import ConfigError

# Collector intervals live here and only here: changing one is the
# `collector-intervals` danger zone, so there must be exactly one place to guard.
COLLECTOR_INTERVALS: dict[str, int] = {
    "5m": 300,
    "latest": 60,
    "1h": 3600,
    "items": 86400,
    "news": 1800,
    "players": 300,
}

# Each collector's Prometheus port: the collectors serve on it, the group data, the monitoring
# scrape config and the checks read it from here.
COLLECTOR_METRICS_PORTS: dict[str, int] = {
    "5m": 9100,
    "1h": 9101,
    "news": 9102,
    "latest": 9103,
    "players": 9104,
    "items": 9105,
}

# A contact is a URL, an e-mail address, or a handle such as "@name" / "Discord: name".
_CONTACT = re.compile(r"(https?://\S+|[\w.+-]+@[\w-]+\.[\w.]+|(^|\s|\()@\w+|contact|discord)",
                      re.IGNORECASE)

PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "changethis", "secret", "password", "placeholder",
     "your-api-key", "api-key", "xxx", "todo"}
)


def read_secret_file(path: Path) -> str:
    """Read a secret from a file that only its owner may read.

    Raises:
        ConfigError: when the file is missing or readable by group or others.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise ConfigError(f"secret file {path} does not exist", path=str(path)) from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"secret file {path} has mode {stat.S_IMODE(mode):04o}; it must be 0600",
            path=str(path),
        )
    return path.read_text().strip()


class Settings(BaseSettings):
    """Every tunable of the services gept runs on the hosts. Field ``x`` is read from ``GEPT_X``.

    The controller's variables (deploys, inventories, the lab) are in
    :class:`gept.core.controller.ControllerSettings`; docs/configuration.md lists them all.
    """

    model_config = SettingsConfigDict(env_prefix="GEPT_", extra="ignore")

    database_url: str = Field("postgresql://osrs_user@localhost:5432/osrs_data",
                              description="PostgreSQL connection string, without the password.")
    database_password_file: Path | None = Field(
        None, description="File (mode 0600) holding the database password.")
    database_read_url: str | None = Field(
        None, description="The engine's predictions reads from here instead (a standby: "
                          "target_session_attrs=prefer-standby); same role and password.")
    registry_database_url: str | None = Field(
        None, description="The model registry's role (the host gate uses it for "
                          "promote/rollback instead of GEPT_DATABASE_URL).")
    registry_database_password_file: Path | None = Field(
        None, description="File (mode 0600) with the registry role's password.")
    db_pool_min: int = Field(1, description="Smallest connection pool (engine).")
    db_pool_max: int = Field(8, description="Largest connection pool (engine).")
    db_connect_timeout: float = Field(5.0, description="Seconds to wait for a connection.")

    wiki_base_url: str = Field("https://prices.runescape.wiki/api/v1/osrs",
                               description="OSRS Wiki prices API (the simulator's URL in the "
                                           "lab and tests).")
    wiki_user_agent: str = Field("", description="User-Agent naming the tool and a contact "
                                                 "(required by the wiki; generic ones refused).")
    wiki_timeout: float = Field(10.0, description="Seconds for one whole API attempt.")
    wiki_retries: int = Field(4, description="Attempts per API call (backoff with jitter).")
    news_feed_url: str = Field(
        "https://secure.runescape.com/m=news/latest_news.rss?oldschool=true",
        description="RSS feed of the news collector.")
    players_url: str = Field("https://oldschool.runescape.com/",
                             description="Page whose sentence gives the players online.")

    models_dir: Path = Field(Path("/var/lib/gept/models"),
                             description="Where trained model files are kept and cached.")
    state_dir: Path = Field(Path("~/.local/state/gept").expanduser(),
                            description="Local state: approvals ledger, audit trail, caches.")
    stale_after_seconds: int = Field(
        600, description="Predictions older than this are stale (engine, fallback, checks).")
    db_outage_grace_seconds: float = Field(
        10.0, description="The engine serves the predictions it holds for this long after "
                          "its last good read of PostgreSQL (a switchover's second without a "
                          "primary); then 503. 0: 503 at the first failed read.")
    # Inference refuses to publish predictions from prices older than this (collectors down).
    max_data_age_seconds: int = Field(
        1800, description="Inference refuses to publish from prices older than this.")
    predictions_retention_days: int = Field(
        3, description="Days of prediction partitions kept (0: off; else at least 3).")
    task_type: Literal["CPU", "GPU"] = Field("CPU", description="CatBoost device: CPU or GPU.")

    engine_api_key: SecretStr | None = Field(
        None, description="The engine's API key (16+ characters, placeholders refused).")
    engine_api_key_file: Path | None = Field(
        None, description="File (mode 0600) holding the engine's API key.")
    engine_host: str = Field("127.0.0.1", description="Address the engine binds.")
    engine_port: int = Field(8000, description="Port the engine binds.")
    engine_workers: int = Field(1, description="uvicorn worker processes.")
    engine_rate_limit_per_minute: int = Field(600, description="Requests per minute per key.")

    status_host: str = Field("127.0.0.1", description="Address the status page binds.")
    status_port: int = Field(8080, description="Port of the collectors' status page.")
    metrics_host: str = Field("127.0.0.1", description="Address a collector's metrics bind.")
    metrics_port: int = Field(9100, description="A collector's Prometheus port (default: its "
                                                "own in COLLECTOR_METRICS_PORTS; 0: off).")
    collector_interval_seconds: int | None = Field(
        None, description="Set by the deploy in each collector container: the interval it "
                          "was given (the deploy guard reads it back; the collector runs at "
                          "COLLECTOR_INTERVALS).")

    log_level: str = Field("INFO", description="Logging level.")
    log_json: bool = Field(False, description="Log one JSON object a line (services).")

    @field_validator("state_dir", "models_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    def db_dsn(self, url: str | None = None) -> str:
        """The connection string (default ``database_url``), with the password from its
        0600 file when one is set.
        """
        url = url or self.database_url
        if self.database_password_file is None:
            return url
        password = read_secret_file(self.database_password_file)
        from psycopg.conninfo import make_conninfo

        return make_conninfo(url, password=password)

    def api_key(self) -> str:
        """The engine's API key; refuses a missing or placeholder key.

        Raises:
            ConfigError: when no usable key is configured.
        """
        key = None
        if self.engine_api_key is not None:
            key = self.engine_api_key.get_secret_value()
        elif self.engine_api_key_file is not None:
            key = read_secret_file(self.engine_api_key_file)
        if key is None or key.strip().lower() in PLACEHOLDER_SECRETS or len(key) < 16:
            raise ConfigError(
                "GEPT_ENGINE_API_KEY (or GEPT_ENGINE_API_KEY_FILE) must be set to a real key "
                "of at least 16 characters; placeholders are refused",
                field="engine_api_key",
            )
        return key

    def user_agent(self) -> str:
        """The User-Agent the OSRS Wiki requires: a tool name and a contact.

        Raises:
            ConfigError: when it is missing or does not name a contact.
        """
        ua = self.wiki_user_agent.strip()
        if not ua or _CONTACT.search(ua) is None:
            raise ConfigError(
                "GEPT_WIKI_USER_AGENT must name the tool and a contact, e.g. "
                "'gept-collector/0.1 (ops@example.org)'",
                field="wiki_user_agent",
            )
        return ua


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; tests call ``get_settings.cache_clear()``)."""
    return Settings()

