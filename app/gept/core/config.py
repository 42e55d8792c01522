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

import os
import re
import stat
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import SecretStr, field_validator
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
    """Every tunable of gept. Field ``x`` is read from ``GEPT_X``."""

    model_config = SettingsConfigDict(env_prefix="GEPT_", extra="ignore")

    database_url: str = "postgresql://osrs_user@localhost:5432/osrs_data"
    database_password_file: Path | None = None
    db_pool_min: int = 1
    db_pool_max: int = 8
    db_connect_timeout: float = 5.0

    wiki_base_url: str = "https://prices.runescape.wiki/api/v1/osrs"
    wiki_user_agent: str = ""
    wiki_timeout: float = 10.0
    wiki_retries: int = 4
    news_feed_url: str = "https://secure.runescape.com/m=news/latest_news.rss?oldschool=true"
    players_url: str = "https://oldschool.runescape.com/"

    models_dir: Path = Path("/var/lib/gept/models")
    state_dir: Path = Path("~/.local/state/gept").expanduser()
    stale_after_seconds: int = 600
    # Inference refuses to publish predictions from prices older than this (collectors down).
    max_data_age_seconds: int = 1800
    task_type: Literal["CPU", "GPU"] = "CPU"

    engine_api_key: SecretStr | None = None
    engine_api_key_file: Path | None = None
    engine_host: str = "127.0.0.1"
    engine_port: int = 8000
    engine_workers: int = 1
    engine_rate_limit_per_minute: int = 600

    status_port: int = 8080
    metrics_port: int = 9100

    log_level: str = "INFO"
    log_json: bool = False

    @field_validator("state_dir", "models_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    def db_dsn(self) -> str:
        """The connection string, with the password from its 0600 file when one is set."""
        if self.database_password_file is None:
            return self.database_url
        password = read_secret_file(self.database_password_file)
        from psycopg.conninfo import make_conninfo

        return make_conninfo(self.database_url, password=password)

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


def env_flag(name: str) -> bool:
    """True when an environment variable is set to a truthy value."""
    return os.environ.get(name, "").lower() in {"1", "true", "yes", "on"}
