"""The pinned catalogue: the runbooks an agent may run, fixed by their sha256.

``runbooks/catalogue.lock`` lists every runbook file and its sha256; a person writes it
(``gept runbook pin``) and reviews it like code. Agents (``gept mcp``, and the CLI run by the
agent's account) only ever get this catalogue, read once: a file added or changed later is
not in it, and ``--dir`` is refused for them. A person may plan or run a draft from
``--dir``; its plan hash then names it ``unpinned:<sha256>``, so an approval for a pinned plan
never covers a draft. The directory is the repository's own, never the current directory.

Example:
    >>> load(agent=True).digest == load(agent=True).digest  # doctest: +SKIP
    True
"""

from __future__ import annotations

import getpass
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from gept.core.errors import InvalidInput, NeedsCoordination
from gept.guards.zones import AGENT_ACCOUNT
from gept.runbook import loader
from gept.runbook.loader import Catalog, Problem

REPO_ROOT = Path(__file__).resolve().parents[3]
RUNBOOKS_DIR = REPO_ROOT / "runbooks"
PIN_FILE = RUNBOOKS_DIR / "catalogue.lock"


@dataclass(frozen=True)
class Pinned:
    """A loaded catalogue and the hash that names it in plans."""

    catalog: Catalog
    digest: str
    unpinned: tuple[str, ...] = ()  # files in the directory the pin does not list


def is_agent() -> bool:
    """True when this process runs as the agent's account."""
    try:
        return getpass.getuser() == AGENT_ACCOUNT
    except (KeyError, OSError):
        return True  # an account without a name is not a person we know


def pin_text(directory: Path = RUNBOOKS_DIR) -> str:
    """The lock file for the runbooks in ``directory`` as they are now."""
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(directory.glob("*.yaml"))}
    return json.dumps({"format": 1, "files": files}, indent=2, sort_keys=True) + "\n"


def load_pinned(directory: Path = RUNBOOKS_DIR) -> Pinned:
    """Every pinned runbook, each file read once and checked against its pin.

    Raises:
        InvalidInput: the lock is missing, or a pinned file is missing or changed (every
            problem at once, each naming its file).
    """
    lock_path = directory / "catalogue.lock"
    try:
        raw = lock_path.read_bytes()
        pins: dict[str, str] = json.loads(raw)["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"{lock_path}: no readable catalogue pin ({exc}); a person runs "
                           "`gept runbook pin` and commits it", file=str(lock_path)) from exc
    runbooks, files, problems = {}, {}, []
    for name, digest in sorted(pins.items()):
        path = directory / name
        try:
            data = path.read_bytes()
        except OSError as exc:
            problems.append(Problem(str(path), 0, "", f"pinned but unreadable: {exc.strerror}"))
            continue
        if hashlib.sha256(data).hexdigest() != digest:
            problems.append(Problem(str(path), 0, "", "changed since the catalogue was pinned "
                                    "(a person reviews it and runs `gept runbook pin`)"))
            continue
        try:
            rb = loader.load_text(data.decode("utf-8", errors="replace"), str(path))
        except InvalidInput as exc:
            problems.extend(Problem(**p) for p in exc.details.get("problems", []))
            continue
        runbooks[rb.name] = rb
        files[rb.name] = path
    catalog = Catalog(runbooks, files)
    if not problems:
        problems.extend(loader.check_references(catalog))
    if problems:
        raise loader.fail(problems)
    extra = tuple(sorted(p.name for p in directory.glob("*.yaml") if p.name not in pins))
    return Pinned(catalog, "pinned:" + hashlib.sha256(raw).hexdigest(), extra)


def load(directory: Path | None = None, *, agent: bool | None = None) -> Pinned:
    """The catalogue for this caller: pinned, or (people only) a draft directory.

    Raises:
        NeedsCoordination: an agent asked for another directory (exit 3).
        InvalidInput: the catalogue does not load.
    """
    as_agent = is_agent() if agent is None else agent
    if directory is None:
        return load_pinned()
    if as_agent:
        from gept.guards import audit

        audit.record("refused", reason="unpinned runbooks are refused for agents",
                     directory=str(directory))
        raise NeedsCoordination(
            "agents run the pinned catalogue only (runbooks/catalogue.lock); a runbook from "
            f"{directory} must be reviewed and pinned by a person first",
            zone=None, reason="unpinned runbooks are refused for agents")
    catalog = loader.load_dir(directory)
    digest = hashlib.sha256(b"".join(
        p.name.encode() + b"\0" + p.read_bytes() for p in sorted(directory.glob("*.yaml"))))
    return Pinned(catalog, f"unpinned:{digest.hexdigest()}")
