"""Load runbook YAML safely and report errors as ``file:line: field: message``.

YAML is composed into nodes (not loaded straight to Python) so every value keeps its line.
The loader refuses what a runbook never needs and an attacker might send: files over
:data:`MAX_BYTES`, aliases/anchors (the "billion laughs" bomb), duplicate keys, deep nesting,
non-string keys. After the model validates, :func:`check_references` refuses ``use:`` cycles
and :mod:`gept.runbook.classify` checks the declared class against what the steps do.

Example:
    >>> rb = load_file(Path("runbooks/check-health.yaml"))  # doctest: +SKIP
    >>> catalog = load_dir(Path("runbooks"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gept.core.errors import InvalidInput
from gept.runbook.model import Runbook

# libyaml when present: the same events and marks, ~10x faster than pure Python.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_BYTES = 256 * 1024
MAX_DEPTH = 32
MAX_NODES = 20_000
DEFAULT_DIR = Path(__file__).resolve().parents[3] / "runbooks"

Path_ = tuple[str | int, ...]


@dataclass
class Problem:
    """One validation problem, located."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field or '(top)'}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"file": self.file, "line": self.line, "field": self.field,
                "message": self.message}


def fail(problems: list[Problem]) -> InvalidInput:
    """One ``InvalidInput`` (exit 2) carrying every problem, each on its own line.

    Example:
        >>> print(fail([Problem("a.yaml", 3, "class", "unknown class"),
        ...             Problem("a.yaml", 10, "steps[0].timout", "unknown key")]).message)
        2 problems:
          a.yaml:3: class: unknown class
          a.yaml:10: steps[0].timout: unknown key
    """
    first = problems[0]
    message = (str(first) if len(problems) == 1 else f"{len(problems)} problems:\n"
               + "\n".join(f"  {p}" for p in problems))
    return InvalidInput(message, file=first.file, line=first.line, field=first.field,
                        problems=[p.to_dict() for p in problems])


def problems_of(exc: InvalidInput, path: Path) -> list[Problem]:
    """The located problems an ``InvalidInput`` from :func:`load_file` carries."""
    found = exc.details.get("problems") or [Problem(str(path), 0, "", exc.message).to_dict()]
    return [Problem(**p) for p in found]


def field_path(loc: Path_) -> str:
    """``("steps", 2, "run")`` → ``steps[2].run``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass
class Located:
    """A YAML document as plain data plus the line of every path in it."""

    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, loc: Path_) -> int:
        """The line of the longest known prefix of ``loc`` (1-based; 0 if unknown)."""
        for n in range(len(loc), -1, -1):
            if loc[:n] in self.lines:
                return self.lines[loc[:n]]
        return 0


class _Builder:
    """Turns composed nodes into data, recording lines and enforcing the limits."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[Path_, int] = {}
        self.count = 0
        self._scalar = yaml.constructor.SafeConstructor()

    def _err(self, node: yaml.Node, path: Path_, message: str) -> InvalidInput:
        return fail([Problem(self.file, node.start_mark.line + 1, field_path(path), message)])

    def build(self, node: yaml.Node, path: Path_ = ()) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self._err(node, path, f"more than {MAX_NODES} YAML nodes")
        if len(path) > MAX_DEPTH:
            raise self._err(node, path, f"nesting deeper than {MAX_DEPTH}")
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    raise self._err(key_node, path, "keys must be plain strings (no merges)")
                key = key_node.value
                if key in out:
                    raise self._err(key_node, (*path, key), "duplicate key")
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, (*path, key))
                self.lines[(*path, key)] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalar.construct_object(node)


def parse(text: str, file: str) -> Located:
    """Parse one YAML document with its lines, refusing aliases and oversize input.

    Raises:
        InvalidInput: oversize, not YAML, several documents, aliases, duplicate keys.
    """
    if len(text.encode()) > MAX_BYTES:
        raise fail([Problem(file, 0, "", f"file is larger than {MAX_BYTES} bytes")])
    try:
        # Refuse anchors/aliases at the event level, before anything is expanded.
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                line = event.start_mark.line + 1 if event.start_mark else 0
                raise fail([Problem(file, line, "",
                                    "YAML anchors and aliases are not allowed in runbooks")])
        nodes = list(yaml.compose_all(text, Loader=_LOADER))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        raise fail([Problem(file, line, "", f"not valid YAML: {getattr(exc, 'problem', exc)}")]
                   ) from exc
    if len(nodes) != 1 or nodes[0] is None:
        raise fail([Problem(file, 0, "", "expected exactly one YAML document")])
    builder = _Builder(file)
    data = builder.build(nodes[0])
    return Located(data, builder.lines)


def _has(node: Any, part: str | int) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _problems(exc: ValidationError, doc: Located, file: str) -> list[Problem]:
    out = []
    for err in exc.errors():
        # pydantic adds union/validator names to loc; keep the parts that are real fields.
        loc: list[str | int] = []
        node: Any = doc.data
        for part in err["loc"]:
            if _has(node, part):
                node = node[part]
                loc.append(part)
            elif isinstance(part, str) and not any(c in part for c in "[]-") and \
                    err["type"] in ("missing", "extra_forbidden"):
                loc.append(part)
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key (not in the runbook schema)"
        out.append(Problem(file, doc.line_of(tuple(loc)), field_path(tuple(loc)), message))
    return out


def load_text(text: str, file: str) -> Runbook:
    """Validate runbook text (see :func:`parse`) against the model and the classifier.

    Raises:
        InvalidInput: every problem found, each with file, line and field.
    """
    from gept.runbook.classify import check_class

    doc = parse(text, file)
    if not isinstance(doc.data, dict):
        raise fail([Problem(file, 1, "", "a runbook is a mapping (name:, steps:, ...)")])
    try:
        runbook = Runbook.model_validate(doc.data)
    except ValidationError as exc:
        raise fail(_problems(exc, doc, file)) from exc
    problems = [Problem(file, doc.line_of(loc), field_path(loc), msg)
                for loc, msg in check_class(runbook)]
    if problems:
        raise fail(problems)
    return runbook


def load_file(path: Path) -> Runbook:
    """Load and validate one runbook file.

    Example:
        >>> load_file(Path("runbooks/restart-engine.yaml")).class_  # doctest: +SKIP
        'caution'
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read: {exc.strerror}", file=str(path)) from exc
    if size > MAX_BYTES:
        raise fail([Problem(str(path), 0, "", f"file is larger than {MAX_BYTES} bytes")])
    runbook = load_text(path.read_text(encoding="utf-8", errors="replace"), str(path))
    if runbook.name != path.stem:
        raise fail([Problem(str(path), 1, "name",
                            f"name {runbook.name!r} must match the file name {path.stem!r}")])
    return runbook


@dataclass
class Catalog:
    """Every runbook in a directory, by name, with the file each came from."""

    runbooks: dict[str, Runbook]
    files: dict[str, Path]

    def get(self, name: str) -> Runbook:
        """A runbook by name.

        Raises:
            InvalidInput: no runbook has that name.
        """
        if name not in self.runbooks:
            known = ", ".join(sorted(self.runbooks))
            raise InvalidInput(f"no runbook named {name!r}; known: {known}", field="runbook")
        return self.runbooks[name]


def runbook_dir(directory: Path | None = None) -> Path:
    """The runbooks directory: the argument, or this repository's ``runbooks/`` (never the
    current directory, never an environment variable: see :mod:`gept.runbook.catalogue`).
    """
    if directory is not None:
        return directory
    return DEFAULT_DIR


def load_dir(directory: Path | None = None) -> Catalog:
    """Load every ``*.yaml`` runbook in a directory and check ``use:`` references.

    Raises:
        InvalidInput: any file is invalid (all problems of all files are reported).
    """
    base = runbook_dir(directory)
    if not base.is_dir():
        raise InvalidInput(f"runbook directory {base} does not exist", field="runbooks_dir")
    runbooks: dict[str, Runbook] = {}
    files: dict[str, Path] = {}
    problems: list[Problem] = []
    for path in sorted(base.glob("*.yaml")):
        try:
            rb = load_file(path)
        except InvalidInput as exc:
            problems.extend(problems_of(exc, path))
            continue
        runbooks[rb.name] = rb
        files[rb.name] = path
    catalog = Catalog(runbooks, files)
    if not problems:
        problems.extend(check_references(catalog))
    if problems:
        raise fail(problems)
    return catalog


def _use_sites(data: Any, path: Path_ = ()) -> Iterator[tuple[Path_, str]]:
    """Every ``use: {runbook: X}`` in a runbook document: (path of ``runbook``, X)."""
    if isinstance(data, dict):
        use = data.get("use")
        if isinstance(use, dict) and isinstance(use.get("runbook"), str):
            yield (*path, "use", "runbook"), use["runbook"]
        for key, value in data.items():
            yield from _use_sites(value, (*path, key))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield from _use_sites(item, (*path, i))


def _locator(file: str) -> tuple[Located, dict[str, Path_]]:
    """The file's lines and where it first uses each runbook (empty if unreadable)."""
    try:
        doc = parse(Path(file).read_text(encoding="utf-8", errors="replace"), file)
    except (OSError, InvalidInput):
        return Located(None), {}
    sites: dict[str, Path_] = {}
    for loc, target in _use_sites(doc.data):
        sites.setdefault(target, loc)
    return doc, sites


def check_references(catalog: Catalog) -> list[Problem]:
    """Refuse ``use:`` of unknown runbooks and cycles (a uses b uses a), each located."""
    problems: list[Problem] = []

    def uses(rb: Runbook) -> list[str]:
        return [s.use.runbook for s in rb.all_steps() if s.use is not None]

    for name, rb in catalog.runbooks.items():
        file = str(catalog.files[name])
        doc, sites = _locator(file) if uses(rb) else (Located(None), {})

        def at(target: str, message: str, file: str = file, doc: Located = doc,
               sites: dict[str, Path_] = sites) -> Problem:
            loc = sites.get(target, ("steps",))
            return Problem(file, doc.line_of(loc), field_path(loc), message)

        for target in uses(rb):
            if target not in catalog.runbooks:
                problems.append(at(target, f"uses unknown runbook {target!r}"))
        for step in rb.all_steps():
            used = catalog.runbooks.get(step.use.runbook) if step.use else None
            missing = sorted(set(used.zones) - set(rb.zones)) if used else []
            if used and missing:
                problems.append(at(used.name, f"uses {used.name!r} which touches zones "
                                              f"{missing}; declare them in zones:"))
        # Depth-first search for a path back to ``name``.
        stack: list[tuple[str, tuple[str, ...]]] = [(t, (name, t)) for t in uses(rb)]
        seen: set[str] = set()
        while stack:
            current, trail = stack.pop()
            if current == name:
                problems.append(at(trail[1], "cycle in runbook references: "
                                   + " -> ".join(trail)))
                break
            if current in seen or current not in catalog.runbooks:
                continue
            seen.add(current)
            stack.extend((t, (*trail, t)) for t in uses(catalog.runbooks[current]))
    return problems
