"""One error tree for every command; each class carries its process exit code.

The exit codes are a contract (README.md, Contracts): 0 ok, 1 failed, 2 invalid input,
3 refused by a danger-zone guard, 4 locked.

Example:
    >>> try:
    ...     raise InvalidInput("capital must be >= 1000", field="capital")
    ... except GeptError as exc:
    ...     exc.exit_code
    2
"""

from __future__ import annotations

from typing import Any


class ExitCode:
    """Process exit codes shared by every `gept` command."""

    OK = 0
    FAILED = 1
    INVALID = 2
    REFUSED = 3
    LOCKED = 4


class GeptError(Exception):
    """Base of every error gept raises on purpose.

    Attributes:
        exit_code: the process exit code the CLI returns for this error.
        details: structured data for `--json` output (never secrets).
    """

    exit_code: int = ExitCode.FAILED
    status: str = "failed"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def to_dict(self) -> dict[str, Any]:
        """The error as a JSON-ready object for agents."""
        return {"status": self.status, "error": type(self).__name__, "message": self.message,
                **self.details}


class Failed(GeptError):
    """A step, check or job failed (exit 1)."""


class InvalidInput(GeptError):
    """Bad YAML, a bad parameter, an unknown host (exit 2)."""

    exit_code = ExitCode.INVALID
    status = "invalid"


class ConfigError(InvalidInput):
    """Configuration missing or unusable (exit 2)."""


class NeedsCoordination(GeptError):
    """Refused by a danger-zone guard: a coordination token is needed (exit 3)."""

    exit_code = ExitCode.REFUSED
    status = "needs_coordination"


class Locked(GeptError):
    """Another run holds the lock (exit 4)."""

    exit_code = ExitCode.LOCKED
    status = "locked"


class UpstreamError(Failed):
    """The OSRS Wiki (or the simulator) answered badly after all retries."""


class DatabaseError(Failed):
    """PostgreSQL was unreachable or refused a statement after all retries."""


class IntegrityError(Failed):
    """An artifact or migration does not match its recorded checksum."""
