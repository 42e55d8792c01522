"""Plans: the exact commands a run would issue on each host, and their hash. Touches nothing.

Parameters are validated (type, enum, pattern, min/max) before rendering, and every
``{{ value }}`` in a shell template is passed through :func:`shlex.quote` by the template
environment itself (``finalize``), so a template cannot forget to quote: a parameter is
always one shell word, never code. SQL templates get SQL literals; URLs get percent-encoding.

The plan hash covers every byte that will execute: the pinned catalogue, the parameters
(secrets as a short sha256), every step of every section (rollback included) with its kind,
timeout, retries/until, failure handling, expectations and rendered command (secrets
likewise), the sha256 of every uploaded file, and the resolved hosts (identity, address,
port, user, groups) of one inventory: an approval for one plan allows no other, and a lab
approval is not valid in production.

Example:
    >>> p = make_plan(catalog, "restart-collector", {"collector": "5m"}, hosts)  # doctest: +SKIP
    >>> p.to_dict()["plan_hash"]  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote as url_quote

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from gept.core.errors import InvalidInput
from gept.guards.plans import plan_hash as hash_of
from gept.guards.zones import GATE_PROGRAM, GATE_ZONES
from gept.inventory import Host
from gept.runbook.classify import check_rendered
from gept.runbook.loader import Catalog
from gept.runbook.model import Param, Retries, Runbook, Step

SECTIONS = ("preconditions", "steps", "verify", "rollback")
PROBE_ROLE = "gept_probe"  # the read-only PostgreSQL role runbook SQL steps connect as
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


# ---------------------------------------------------------------------------- parameters

def coerce_params(runbook: Runbook, given: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and type the parameters; unknown, missing and bad values are refused.

    Example:
        >>> coerce_params(rb, {"lines": "200"})  # doctest: +SKIP
        {'lines': 200, 'service': 'engine'}

    Raises:
        InvalidInput: names the parameter (``field="params.<name>"``).
    """
    unknown = sorted(set(given) - set(runbook.parameters))
    if unknown:
        raise InvalidInput(f"unknown parameter(s) {unknown} for runbook {runbook.name!r}; "
                           f"it takes {sorted(runbook.parameters)}", field=f"params.{unknown[0]}")
    out: dict[str, Any] = {}
    for name, spec in runbook.parameters.items():
        raw = given.get(name, spec.default)
        if raw is None:
            raise InvalidInput(f"parameter {name!r} is required", field=f"params.{name}")
        out[name] = _coerce(name, spec, raw)
    return out


def _coerce(name: str, spec: Param, raw: Any) -> Any:
    field_ = f"params.{name}"
    text = str(raw)
    if _CONTROL.search(text) or "\n" in text:
        raise InvalidInput(f"parameter {name!r} contains control characters", field=field_)
    if spec.type == "int":
        try:
            value = int(text, 10)
        except ValueError as exc:
            raise InvalidInput(f"parameter {name!r} must be an integer, got {text!r}",
                               field=field_) from exc
        if (spec.min is not None and value < spec.min) or (spec.max is not None
                                                           and value > spec.max):
            raise InvalidInput(f"parameter {name!r} must be within [{spec.min}, {spec.max}], "
                               f"got {value}", field=field_)
        return value
    if spec.type == "bool":
        if isinstance(raw, bool):
            return raw
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise InvalidInput(f"parameter {name!r} must be true or false, got {text!r}",
                           field=field_)
    if spec.type == "enum":
        if text not in (spec.enum or []):
            raise InvalidInput(f"parameter {name!r} must be one of {spec.enum}, got {text!r}",
                               field=field_)
        return text
    if len(text) > 4096:
        raise InvalidInput(f"parameter {name!r} is longer than 4096 characters", field=field_)
    if spec.pattern is not None and not re.fullmatch(spec.pattern, text):
        shown = "(secret)" if spec.secret else repr(text)
        raise InvalidInput(f"parameter {name!r} {shown} does not match {spec.pattern!r}",
                           field=field_)
    return text


def secret_marker(name: str, value: Any) -> str:
    """What a secret looks like in plans, hashes and audit lines."""
    digest = hashlib.sha256(str(value).encode()).hexdigest()[:12]
    return f"<secret:{name}:sha256:{digest}>"


def public_params(runbook: Runbook, params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters safe to print: secrets replaced by :func:`secret_marker`."""
    return {k: (secret_marker(k, v) if runbook.parameters[k].secret else v)
            for k, v in params.items()}


# ---------------------------------------------------------------------------- rendering

def _sql_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _env(finalize: Callable[[Any], str]) -> SandboxedEnvironment:
    # Sandboxed + StrictUndefined: a typo in a template is an error, not an empty string.
    return SandboxedEnvironment(finalize=finalize, undefined=StrictUndefined,
                                autoescape=False, keep_trailing_newline=False)


SHELL = _env(lambda v: shlex.quote(_plain(v)))
SQL = _env(_sql_literal)
URL = _env(lambda v: url_quote(_plain(v), safe=""))
RAW = _env(_plain)


def render(env: SandboxedEnvironment, template: str, context: Mapping[str, Any],
           where: str) -> str:
    """Render one template; a template error is an InvalidInput naming the step."""
    try:
        return env.from_string(template).render(**context).strip()
    except TemplateError as exc:
        raise InvalidInput(f"{where}: template error: {exc}", field=where) from exc


# ---------------------------------------------------------------------------- plan

@dataclass
class Action:
    """One step on one host: the rendered command plus how to judge it."""

    command: str                 # as shown and hashed (secrets as markers)
    secret_command: str = field(repr=False)  # what is executed
    expect: str | None = None    # regex stdout must match
    http_status: int | None = None
    http_contains: str | None = None
    wait_timeout: float | None = None
    wait_interval: float | None = None
    upload: tuple[str, str, str] | None = None  # (src, dest, mode)
    upload_sha256: str | None = None  # the bytes approved; checked again before sending
    controller: bool = False     # local / pyinfra: runs on the controller
    gate_zone: str | None = None  # a gate step: the runner adds the plan hash and approval

    def hash_dict(self) -> dict[str, Any]:
        """Everything about this action that decides what runs and how it is judged."""
        return {"command": self.command, "expect": self.expect,
                "http_status": self.http_status, "http_contains": self.http_contains,
                "wait_timeout": self.wait_timeout, "wait_interval": self.wait_interval,
                "upload": list(self.upload[1:]) if self.upload else None,
                "upload_sha256": self.upload_sha256, "controller": self.controller,
                "gate_zone": self.gate_zone}


@dataclass
class StepPlan:
    """One step across its hosts."""

    section: str
    name: str
    kind: str
    timeout: float
    retries: Retries
    on_failure: str
    output: str | None
    on: str
    actions: dict[str, Action]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, secrets redacted."""
        return {"section": self.section, "step": self.name, "kind": self.kind,
                "timeout": self.timeout, "on_failure": self.on_failure,
                "retries": self.retries.model_dump(), "on": self.on,
                "commands": {h: a.command for h, a in self.actions.items()}}

    def hash_dict(self) -> dict[str, Any]:
        """What the plan hash covers of this step."""
        return {"section": self.section, "step": self.name, "kind": self.kind,
                "timeout": self.timeout, "on_failure": self.on_failure,
                "retries": self.retries.model_dump(), "output": self.output, "on": self.on,
                "actions": {h: a.hash_dict() for h, a in sorted(self.actions.items())}}


@dataclass
class Plan:
    """Everything a run will do, and its hash."""

    runbook: Runbook
    params: dict[str, Any] = field(repr=False)
    hosts: list[Host]
    steps: list[StepPlan]
    plan_hash: str = ""
    inventory: str = ""
    host_index: dict[str, Host] = field(default_factory=dict)
    catalogue: str = ""  # the pinned catalogue's hash (or "unpinned:<dir>")

    def section(self, name: str) -> list[StepPlan]:
        """The planned steps of one section, in order."""
        return [s for s in self.steps if s.section == name]

    def hash_input(self) -> dict[str, Any]:
        """What the plan hash covers."""
        hosts = {**{h.name: h for h in self.hosts}, **self.host_index}
        return {
            "format": 2,
            "runbook": self.runbook.name, "class": self.runbook.class_,
            "zones": list(self.runbook.zones), "catalogue": self.catalogue,
            "params": public_params(self.runbook, self.params),
            "hosts": [hosts[n].resolved() for n in sorted(hosts)],
            "steps": [s.hash_dict() for s in self.steps],
        }

    def zone_hosts(self, zone: str) -> list[str]:
        """Identities of the hosts an approval for ``zone`` must name: those whose gate acts
        in it (every host of the plan when no gate step is in that zone).
        """
        found = {self.host_index[h].identity for s in self.steps for h, a in s.actions.items()
                 if a.gate_zone == zone and h in self.host_index}
        return sorted(found or {h.identity for h in self.host_index.values()})

    def approvals_needed(self) -> list[dict[str, Any]]:
        """What a person signs, per zone (``gept coordinate approve`` arguments)."""
        return [{"zone": z, "plan_hash": self.plan_hash, "hosts": self.zone_hosts(z)}
                for z in self.runbook.zones]

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON for people and agents (``gept runbook plan --json``)."""
        return {
            "runbook": self.runbook.name, "class": self.runbook.class_,
            "zones": list(self.runbook.zones), "plan_hash": self.plan_hash,
            "params": public_params(self.runbook, self.params),
            "hosts": [h.name for h in self.hosts],
            "approvals_needed": self.approvals_needed(),
            "steps": [s.to_dict() for s in self.steps],
        }


@dataclass
class _Ctx:
    catalog: Catalog
    inventory: Path | None
    hosts_for: Callable[[str], list[Host]]
    default_hosts: list[Host]
    out: list[StepPlan] = field(default_factory=list)
    host_index: dict[str, Host] = field(default_factory=dict)


def make_plan(catalog: Catalog, name: str, given: Mapping[str, Any], hosts: list[Host],
              hosts_for: Callable[[str], list[Host]] | None = None,
              inventory: Path | None = None, catalogue: str = "") -> Plan:
    """Render a runbook for its hosts. Nothing is executed and nothing connects.

    Args:
        catalog: the loaded runbooks (``use:`` is resolved through it).
        name: the runbook.
        given: parameter values as given (strings from the CLI are fine).
        hosts: the hosts the runbook targets (its ``targets`` or ``--target``).
        hosts_for: resolves a step's ``on:`` group/host (default: only among ``hosts``).
        inventory: the inventory file, for ``pyinfra`` steps.
        catalogue: the pinned catalogue's hash (or ``unpinned:<dir>``), part of the plan hash.

    Raises:
        InvalidInput: bad parameters, template errors, undeclared zones in rendered commands.
    """
    runbook = catalog.get(name)
    params = coerce_params(runbook, given)

    def among(target: str) -> list[Host]:
        found = [h for h in hosts if h.matches(target)]
        if not found:
            raise InvalidInput(f"step target {target!r} matches no host", field="on")
        return found

    ctx = _Ctx(catalog, inventory, hosts_for or among, hosts)
    _expand(ctx, runbook, params, prefix="", section_override=None)
    plan = Plan(runbook, params, hosts, ctx.out, inventory=str(inventory or ""),
                host_index={**{h.name: h for h in hosts}, **ctx.host_index},
                catalogue=catalogue)
    index = plan.host_index
    rendered = [(s.name, (*index[h].groups, h), a.command) for s in plan.steps
                for h, a in s.actions.items()]
    problems = check_rendered(runbook, rendered)
    if problems:
        raise InvalidInput(problems[0], field="steps", problems=problems)
    plan.plan_hash = hash_of(plan.hash_input())
    return plan


def _expand(ctx: _Ctx, runbook: Runbook, params: dict[str, Any], prefix: str,
            section_override: str | None, depth: int = 0) -> None:
    if depth > 8:
        raise InvalidInput("runbook references nest deeper than 8", field="steps.use")
    shown = public_params(runbook, params)
    sections: dict[str, list[Step]] = {"preconditions": runbook.preconditions,
                                       "steps": runbook.steps, "verify": runbook.verify,
                                       "rollback": runbook.rollback}
    for section, steps in sections.items():
        if section_override is not None and section != "steps":
            continue  # an included runbook contributes its steps only
        for step in steps:
            where = f"{runbook.name}.{section}.{step.name}"
            if step.use is not None:
                inner = ctx.catalog.get(step.use.runbook)
                inner_given = {k: (_resolve_ref(v, params, where)) for k, v in
                               step.use.params.items()}
                _expand(ctx, inner, coerce_params(inner, inner_given),
                        prefix=f"{prefix}{step.name}/", section_override=section_override
                        or section, depth=depth + 1)
                continue
            target = step.on or (runbook.targets if prefix == "" else "")
            step_hosts = ctx.hosts_for(step.on) if step.on else ctx.default_hosts
            ctx.host_index.update({h.name: h for h in step_hosts})
            actions = {h.name: _action(step, h, params, shown, where, ctx) for h in step_hosts}
            ctx.out.append(StepPlan(section_override or section, prefix + step.name, step.kind,
                                    step.timeout, step.retries, step.on_failure, step.output,
                                    target or runbook.targets, actions))


def _resolve_ref(value: str | int | bool, params: Mapping[str, Any], where: str) -> Any:
    if isinstance(value, str):
        match = re.fullmatch(r"\{\{\s*([a-z][a-z0-9_]*)\s*\}\}", value)
        if match:
            if match.group(1) not in params:
                raise InvalidInput(f"{where}: use.params refers to unknown {value!r}",
                                   field="use.params")
            return params[match.group(1)]
        if "{" in value:
            raise InvalidInput(f"{where}: use.params values are literals or '{{{{ name }}}}'",
                               field="use.params")
    return value


def _sudo(host: Host, command: str) -> str:
    """Run one command as root without ever prompting.

    The command is given to sudo as it is, never wrapped in a shell: the host's sudoers
    allows the agent's account exact commands only, so what the plan shows is what sudo
    is asked to run (the model refuses shell operators in ``sudo`` steps).
    """
    return command if host.is_root else f"sudo -n -- {command}"


def _action(step: Step, host: Host, params: dict[str, Any], shown: dict[str, Any], where: str,
            ctx: _Ctx) -> Action:
    real = {**params, "host_name": host.name}
    public = {**shown, "host_name": host.name}

    def both(env: SandboxedEnvironment, template: str) -> tuple[str, str]:
        return render(env, template, public, where), render(env, template, real, where)

    timeout = int(step.timeout)
    if step.run is not None or step.sudo is not None:
        shown_cmd, real_cmd = both(SHELL, step.run if step.run is not None else step.sudo or "")
        if step.sudo is not None:
            shown_cmd, real_cmd = _sudo(host, shown_cmd), _sudo(host, real_cmd)
        return Action(shown_cmd, real_cmd, expect=step.retries.until)
    if step.local is not None:
        shown_cmd, real_cmd = both(SHELL, step.local)
        return Action(shown_cmd, real_cmd, expect=step.retries.until, controller=True)
    if step.http is not None:
        probe = step.http
        shown_url, real_url = both(URL, probe.url)
        headers = "".join(f" -H {shlex.quote(f'{k}: {v}')}" for k, v in probe.headers.items())
        head = " -I" if probe.method == "HEAD" else ""

        def curl(url: str) -> str:
            return (f"curl -sS{head} --max-time {timeout}{headers} "
                    f"-w '\\n%{{http_code}}' {shlex.quote(url)}")

        return Action(curl(shown_url), curl(real_url), http_status=probe.status,
                      http_contains=probe.contains, expect=step.retries.until)
    if step.sql is not None:
        sql = step.sql
        shown_q, real_q = both(SQL, sql.query)

        def psql(query: str) -> str:
            # The read-only role is the guarantee (SELECT grants only, peer-mapped from the
            # SSH account); the read-only transaction only makes a mistake fail early.
            return (f"cd /tmp && psql -X -q -A -t -v ON_ERROR_STOP=1 -U {PROBE_ROLE} "
                    f"-d {shlex.quote(sql.database)} "
                    f"-c 'SET default_transaction_read_only = on' -c {shlex.quote(query)}")

        return Action(psql(shown_q), psql(real_q), expect=sql.expect or step.retries.until)
    if step.gate is not None:
        gate = step.gate
        words = [GATE_PROGRAM, gate.action]
        shown_words, real_words = list(words), list(words)
        for arg, template in sorted(gate.args.items()):
            shown_v, real_v = both(RAW, template)
            shown_words += [f"--{arg}", shown_v]
            real_words += [f"--{arg}", real_v]
        return Action(_sudo(host, shlex.join(shown_words)), _sudo(host, shlex.join(real_words)),
                      gate_zone=GATE_ZONES[gate.action])
    if step.wait_until is not None:
        wait = step.wait_until
        shown_cmd, real_cmd = both(SHELL, wait.run)
        if wait.sudo:
            shown_cmd, real_cmd = _sudo(host, shown_cmd), _sudo(host, real_cmd)
        return Action(shown_cmd, real_cmd, expect=wait.until, wait_timeout=wait.timeout,
                      wait_interval=wait.interval)
    if step.upload is not None:
        up = step.upload
        src_s, src = both(RAW, up.src)
        dest_s, dest = both(RAW, up.dest)
        show = f"put {shlex.quote(src_s)} {shlex.quote(dest_s)} && chmod {up.mode} " \
               f"{shlex.quote(dest_s)}"
        try:
            digest = hashlib.sha256(Path(src).read_bytes()).hexdigest()
        except OSError as exc:
            raise InvalidInput(f"{where}: cannot read {src}: {exc.strerror}",
                               field=where) from exc
        return Action(show, show, upload=(src, dest, up.mode), upload_sha256=digest)
    if step.pyinfra is not None:
        call = step.pyinfra
        argv = ["pyinfra", "-y", "--limit", host.name, str(ctx.inventory or "inventory"),
                call.deploy]
        for k, v in sorted(call.data.items()):
            argv += ["--data", f"{k}={render(RAW, v, real, where)}"]
        cmd = shlex.join(argv)
        return Action(cmd, cmd, controller=True)
    raise InvalidInput(f"{where}: step has no action", field=where)  # pragma: no cover
