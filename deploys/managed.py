"""One operation for a group of small managed files: one fact command for all of them.

pyinfra 3 has no fact cache and ``files.template``/``files.put`` read three or four facts
per file, so a no-op run of ~40 config files spent most of its time on SSH round trips.
``files_present`` checks a whole group (content hash, mode, owner) with one command and
uploads only what differs; its ``did_change`` covers the group, which is also the unit
the deploys restart on (a compose project, a unit and its rules...).

Example:
    >>> files_present(name="Write the collectors project", files=[
    ...     rendered("templates/collectors/env.j2", "/opt/gept/collectors/.env", mode="0600"),
    ... ])                                             # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import posixpath
import shlex
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from pyinfra import host
from pyinfra.api import FactBase, FileUploadCommand, StringCommand, operation
from pyinfra.api.util import get_template

from deploys.tasks import TEMPLATES


@dataclass(frozen=True)
class Managed:
    """A file the deploy owns: its destination, bytes, mode and owner."""

    dest: str
    content: bytes = field(repr=False)  # may be a secret: never in logs or --json output
    mode: str = "0644"
    user: str = "root"
    group: str = "root"

    @property
    def sha256(self) -> str:
        """Hash of the desired content."""
        return hashlib.sha256(self.content).hexdigest()


def rendered(template: str, dest: str, mode: str = "0644", user: str = "root",
             group: str | None = None, **context: Any) -> Managed:
    """A Jinja2 template from ``deploys/templates`` rendered with ``host`` and ``context``."""
    path = template if template.startswith("/") else f"{TEMPLATES}/{template}"
    text = get_template(path).render(host=host, **context)
    if not text.endswith("\n"):
        text += "\n"
    return Managed(dest, text.encode(), mode, user, group or user)


def literal(content: str | bytes, dest: str, mode: str = "0644", user: str = "root",
            group: str | None = None) -> Managed:
    """A file with the given content."""
    data = content.encode() if isinstance(content, str) else content
    return Managed(dest, data, mode, user, group or user)


def copied(src: str | Path, dest: str, mode: str = "0644", user: str = "root",
           group: str | None = None) -> Managed:
    """A local file copied as is."""
    return Managed(dest, Path(src).read_bytes(), mode, user, group or user)


class _PathStates(FactBase[dict[str, str]]):
    """``{path: "<fields>"}`` from lines ``path field...``; paths that do not exist are absent."""

    fields = 0  # words after the path on each line

    @staticmethod
    def default() -> dict[str, str]:
        return {}

    def process(self, output: list[str]) -> dict[str, str]:
        states: dict[str, str] = {}
        for line in output:
            parts = line.split(" ")
            if len(parts) == self.fields + 1:
                states[parts[0]] = " ".join(parts[1:])
        return states


class FileStates(_PathStates):
    """``{path: "sha256 mode user group"}`` for existing files among ``paths``."""

    fields = 4

    def command(self, paths: list[str]) -> str:
        quoted = " ".join(shlex.quote(p) for p in paths)
        return (f"for f in {quoted}; do [ -f \"$f\" ] && printf '%s %s %s\\n' \"$f\" "
                "\"$(sha256sum < \"$f\" | cut -d' ' -f1)\" \"$(stat -c '%a %U %G' \"$f\")\"; "
                "done; true")


def _mode(mode: str) -> str:
    return format(int(mode, 8), "o")


@operation()
def files_present(files: list[Managed]):  # type: ignore[no-untyped-def]
    """Make each file exist with exactly this content, mode and owner.

    + files: the ``Managed`` files of the group
    """
    current = host.get_fact(FileStates, paths=[f.dest for f in files])
    for wanted in files:
        state = f"{wanted.sha256} {_mode(wanted.mode)} {wanted.user} {wanted.group}"
        if current.get(wanted.dest) == state:
            continue
        parent = posixpath.dirname(wanted.dest)
        yield StringCommand("mkdir", "-p", shlex.quote(parent))
        yield FileUploadCommand(BytesIO(wanted.content), wanted.dest,
                                remote_temp_filename=host.get_temp_filename(wanted.dest))
        yield StringCommand("chown", shlex.quote(f"{wanted.user}:{wanted.group}"),
                            shlex.quote(wanted.dest))
        yield StringCommand("chmod", _mode(wanted.mode), shlex.quote(wanted.dest))
    if all(current.get(f.dest) == f"{f.sha256} {_mode(f.mode)} {f.user} {f.group}"
           for f in files):
        host.noop(f"{len(files)} managed files are up to date")


@dataclass(frozen=True)
class Dir:
    """A directory the deploy owns."""

    path: str
    mode: str = "0755"
    user: str = "root"
    group: str = "root"


class DirStates(_PathStates):
    """``{path: "mode user group"}`` for existing directories among ``paths``."""

    fields = 3

    def command(self, paths: list[str]) -> str:
        quoted = " ".join(shlex.quote(p) for p in paths)
        return (f"for d in {quoted}; do [ -d \"$d\" ] && printf '%s %s\\n' \"$d\" "
                "\"$(stat -c '%a %U %G' \"$d\")\"; done; true")


@operation()
def directories_present(dirs: list[Dir]):  # type: ignore[no-untyped-def]
    """Make each directory exist with this mode and owner (parents created as needed).

    + dirs: the ``Dir`` entries, parents before children
    """
    current = host.get_fact(DirStates, paths=[d.path for d in dirs])
    stale = [d for d in dirs if current.get(d.path) != f"{_mode(d.mode)} {d.user} {d.group}"]
    for d in stale:
        yield StringCommand("mkdir", "-p", shlex.quote(d.path))
        yield StringCommand("chown", shlex.quote(f"{d.user}:{d.group}"), shlex.quote(d.path))
        yield StringCommand("chmod", _mode(d.mode), shlex.quote(d.path))
    if not stale:
        host.noop(f"{len(dirs)} directories are up to date")
