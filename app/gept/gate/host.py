"""What the gate and the host operations know about their host: ``/etc/gept/host.json``.

Written by the deploys (root-owned, 0600 under the 0700 ``/etc/gept``): the host's identity
(``<inventory>/<host>``, what approvals name) and the paths of its role. Read, never
configured: no flag or environment variable changes it.

Example:
    >>> HostFacts.from_dict({"identity": "lab/ampere", "app_root": "/opt/x",
    ...                      "collectors_dir": "/opt/c"}).identity
    'lab/ampere'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gept.core.errors import ConfigError

HOST_FILE = Path("/etc/gept/host.json")


@dataclass(frozen=True)
class HostFacts:
    """The converged host as the deploys described it."""

    identity: str
    app_root: str
    collectors_dir: str
    inference_cron: str = "/etc/cron.d/gept-inference"
    inference_log: str = "/var/log/gept/inference.log"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HostFacts:
        """From the file's JSON."""
        return cls(**{k: str(v) for k, v in data.items() if k in cls.__dataclass_fields__})

    @classmethod
    def load(cls, path: Path = HOST_FILE) -> HostFacts:
        """Read the host's facts.

        Raises:
            ConfigError: this machine was not converged by the deploys.
        """
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"{path} is missing or unreadable: this is not a converged GePT "
                              "host, so nothing here can be approved", path=str(path)) from exc
