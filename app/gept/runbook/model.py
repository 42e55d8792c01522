"""The runbook model: what a runbook YAML file may say, validated before anything connects.

Every model forbids unknown keys, so a typo (``timout:``) is an error naming the file, line
and field instead of a silently ignored setting. ``runbooks/schema.json`` is generated from
:class:`Runbook` (``gept runbook schema --write``); a test checks it is up to date.

A step does exactly one thing, named by its key:

=============  ===============================================================
``run``        a shell command on each target host, as the SSH user
``sudo``       the same through ``sudo -n`` (never prompts; root runs it directly)
``http``       an HTTP probe issued *on the host* with curl (services bind localhost)
``sql``        a read-only query through ``psql`` on the host, as the read-only role
``gate``       a danger-zone action through the host's gate (needs a person's approval)
``wait_until`` repeat a command until it succeeds (and matches), bounded by a timeout
``upload``     copy a controller file to the host (SFTP)
``pyinfra``    converge the host with a deploy file (runs ``pyinfra`` on the controller)
``local``      a command on the controller
``use``        the steps of another runbook, with parameters (cycles are refused)
=============  ===============================================================

Example:
    >>> rb = Runbook.model_validate({
    ...     "name": "restart-engine", "description": "Restart the engine.", "class": "caution",
    ...     "targets": "ampere",
    ...     "steps": [{"name": "restart", "sudo": "systemctl restart recommendation-engine"}]})
    >>> rb.class_
    'caution'
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gept.guards.zones import GateAction, GateArg, Zone

NAME_RE = r"^[a-z][a-z0-9-]{1,62}$"
PARAM_RE = r"^[a-z][a-z0-9_]{0,39}$"
TARGET_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}(,[A-Za-z0-9][A-Za-z0-9_.-]{0,62}){0,15}$"
STEP_KINDS: tuple[str, ...] = ("run", "sudo", "http", "sql", "gate", "wait_until", "upload",
                               "pyinfra", "local", "use")
RunbookClass = Literal["safe", "caution", "danger"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Param(_Strict):
    """A typed runbook parameter. Values are validated before anything is rendered."""

    type: Literal["str", "int", "bool", "enum"] = "str"
    description: str = ""
    enum: list[str] | None = Field(default=None, description="allowed values (type enum)")
    pattern: str | None = Field(default=None, description="full-match regex (type str)")
    default: str | int | bool | None = None
    secret: bool = Field(default=False, description="redacted in plans, output and audit")
    min: int | None = None
    max: int | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Param:
        if self.type == "enum" and not self.enum:
            raise ValueError("type enum needs a non-empty 'enum' list")
        if self.enum is not None and self.type != "enum":
            raise ValueError("'enum' is only for type enum")
        if self.pattern is not None:
            if self.type != "str":
                raise ValueError("'pattern' is only for type str")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regex: {exc}") from exc
        if (self.min is not None or self.max is not None) and self.type != "int":
            raise ValueError("'min'/'max' are only for type int")
        return self

    @property
    def required(self) -> bool:
        """A parameter without a default must be given."""
        return self.default is None


class Retries(_Strict):
    """Try a step again: up to ``count`` more times, ``delay`` seconds apart.

    With ``until`` (a regex), a step whose stdout does not match also counts as failed.
    """

    count: int = Field(default=0, ge=0, le=10)
    delay: float = Field(default=2.0, ge=0, le=300)
    until: str | None = None


class HttpProbe(_Strict):
    """An HTTP request issued on the host with curl; services listen on localhost there."""

    url: str
    method: Literal["GET", "HEAD"] = "GET"
    status: int = Field(default=200, ge=100, le=599)
    contains: str | None = Field(default=None, description="substring expected in the body")
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return value


class SqlProbe(_Strict):
    """A query run on the host with psql as the read-only role ``gept_probe``.

    The role can only read (SELECT grants, nothing else), so a probe cannot write whatever
    its text says; psql meta-commands (a backslash) are refused when the runbook loads.
    """

    query: str
    database: str = Field(default="osrs_data", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    expect: str | None = Field(default=None, description="regex the result must match")

    @field_validator("query")
    @classmethod
    def _no_meta(cls, value: str) -> str:
        if "\\" in value:
            raise ValueError("psql meta-commands (a backslash) are not allowed in sql steps")
        return value


class GateCall(_Strict):
    """A danger-zone action the host's gate performs after verifying a person's approval."""

    action: GateAction
    args: dict[GateArg, str] = Field(default_factory=dict)


class WaitUntil(_Strict):
    """Repeat ``run`` (optionally through sudo) until it exits 0 and matches ``until``."""

    run: str
    sudo: bool = False
    until: str | None = None
    timeout: float = Field(default=60, gt=0, le=1800)
    interval: float = Field(default=2, gt=0, le=60)


class Upload(_Strict):
    """Copy a file from the controller to the host (then ``mode`` is applied)."""

    src: str
    dest: str
    mode: str = Field(default="0644", pattern=r"^0?[0-7]{3}$")


class PyinfraCall(_Strict):
    """Converge the step's hosts with a pyinfra deploy file (limited to those hosts)."""

    deploy: str = Field(pattern=r"^deploys/[A-Za-z0-9_./-]+\.py$")
    data: dict[str, str] = Field(default_factory=dict)


class Use(_Strict):
    """Include another runbook's steps; ``params`` are literals or ``{{ outer_param }}``."""

    runbook: str = Field(pattern=NAME_RE)
    params: dict[str, str | int | bool] = Field(default_factory=dict)


class Step(_Strict):
    """One step; exactly one of the action keys (:data:`STEP_KINDS`) is set."""

    name: str = Field(min_length=1, max_length=80)
    description: str = ""
    run: str | None = None
    sudo: str | None = None
    http: HttpProbe | None = None
    sql: SqlProbe | None = None
    gate: GateCall | None = None
    wait_until: WaitUntil | None = None
    upload: Upload | None = None
    pyinfra: PyinfraCall | None = None
    local: str | None = None
    use: Use | None = None
    on: str | None = Field(default=None, pattern=TARGET_RE,
                           description="run on this inventory group/host instead of targets")
    timeout: float = Field(default=60, gt=0, le=3600)
    retries: Retries = Field(default_factory=Retries)
    on_failure: Literal["abort", "continue", "rollback"] = "abort"
    output: str | None = Field(default=None, pattern=PARAM_RE,
                               description="keep stdout under this name in the result")

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        set_kinds = [k for k in STEP_KINDS if getattr(self, k) is not None]
        if len(set_kinds) != 1:
            raise ValueError(f"a step needs exactly one of {', '.join(STEP_KINDS)}; "
                             f"got {set_kinds or 'none'}")
        return self

    @property
    def kind(self) -> str:
        """Which action this step performs (``run``, ``sudo``, ``http`` ...)."""
        return next(k for k in STEP_KINDS if getattr(self, k) is not None)


class Condition(_Strict):
    """A verdict condition over step results (all given parts must hold)."""

    failed: list[str] = Field(default_factory=list, description="any of these failed")
    passed: list[str] = Field(default_factory=list, description="all of these passed")
    matches: dict[str, str] = Field(default_factory=dict,
                                    description="output name -> regex it matches")


class VerdictRule(_Strict):
    """The first rule whose ``when`` holds gives the verdict; no ``when`` = the default."""

    when: Condition | None = None
    verdict: str
    next: str | None = Field(default=None, pattern=NAME_RE,
                             description="the runbook to run next")


class Lock(_Strict):
    """Which runs exclude each other: the same ``scope`` on the same host."""

    scope: str | None = Field(default=None, pattern=NAME_RE,
                              description="default: the runbook's name")
    enabled: bool = True


class Runbook(_Strict):
    """A runbook file (``runbooks/<name>.yaml``)."""

    name: str = Field(pattern=NAME_RE)
    description: str = Field(min_length=1)
    class_: RunbookClass = Field(alias="class")
    zones: list[Zone] = Field(default_factory=list)
    reference: str = Field(default="", description="the operators' procedure it codifies")
    targets: str = Field(pattern=TARGET_RE, description="inventory group or host")
    parameters: dict[str, Param] = Field(default_factory=dict)
    preconditions: list[Step] = Field(default_factory=list)
    steps: list[Step] = Field(min_length=1)
    rollback: list[Step] = Field(default_factory=list)
    verify: list[Step] = Field(default_factory=list)
    verdict: list[VerdictRule] = Field(default_factory=list)
    lock: Lock = Field(default_factory=Lock)

    @field_validator("parameters")
    @classmethod
    def _param_names(cls, value: dict[str, Param]) -> dict[str, Param]:
        for key in value:
            if not re.fullmatch(PARAM_RE, key):
                raise ValueError(f"parameter name {key!r} must match {PARAM_RE}")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Runbook:
        names = [s.name for s in self.all_steps()]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"step names must be unique; repeated: {dupes}")
        if self.zones and self.class_ != "danger":
            raise ValueError(f"a runbook touching zones {list(self.zones)} must be class danger")
        if self.class_ == "danger" and not self.zones:
            raise ValueError("a danger runbook must name the zones it touches")
        if any(s.on_failure == "rollback" for s in self.steps) and not self.rollback:
            raise ValueError("a step says on_failure: rollback but the runbook has no rollback")
        for rule in self.verdict:
            if rule.when is None:
                continue
            unknown = [n for n in rule.when.failed + rule.when.passed if n not in names]
            if unknown:
                raise ValueError(f"verdict refers to unknown steps {unknown}")
        return self

    def all_steps(self) -> list[Step]:
        """Preconditions, steps, verification and rollback steps, in that order."""
        return [*self.preconditions, *self.steps, *self.verify, *self.rollback]

    @property
    def lock_scope(self) -> str:
        """The lock name used on the controller and the hosts."""
        return self.lock.scope or self.name

    @property
    def read_only(self) -> bool:
        """Safe runbooks only read."""
        return self.class_ == "safe"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a runbook file (what ``runbooks/schema.json`` holds).

    Example:
        >>> json_schema()["title"]
        'Runbook'
    """
    schema = Runbook.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://gept.invalid/runbooks/schema.json"
    return schema
