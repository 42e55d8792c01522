"""Check a runbook's declared class and zones against what its steps actually do.

The declaration is not trusted: a step that restarts or stops PostgreSQL, alters the
predictions table, stops Hydra's inference, changes a collector interval or writes the model
registry touches that danger zone whatever the runbook says. We chose to make a mismatch a
**validation error** (exit 2) rather than silently adding the zone: the file then always says
what it does, reviewers see the zone in the diff, and the plan hash a person approves covers it.

The same patterns are applied twice: to the templates when a file is loaded, and to the
rendered commands when a plan is made (a parameter could complete a pattern).

Example:
    >>> sorted(zones_in("sudo systemctl restart postgresql", targets={"ampere"}))
    ['restart-postgres']
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gept.guards.zones import GATE_ZONES
from gept.runbook.model import Runbook, Step

_I = re.IGNORECASE
# zone -> patterns over a command / query. Hydra's inference patterns also need the step to
# run on hydra (the same cron file name exists on Ampere for the fallback).
ZONE_PATTERNS: dict[str, list[re.Pattern[str]]] = {
    "restart-postgres": [
        re.compile(r"\b(systemctl|service)\b[^;&|\n]*\b(restart|stop|kill)\b[^;&|\n]*postgres", _I),
        re.compile(r"\bservice\s+postgresql\S*\s+(restart|stop)", _I),
        re.compile(r"\bpg_ctl(cluster)?\b[^;&|\n]*\b(restart|stop)\b", _I),
    ],
    "predictions-schema": [
        re.compile(r"\b(ALTER|DROP|TRUNCATE)\s+TABLE\s+(IF\s+EXISTS\s+)?(\w+\.)?predictions\b",
                   _I),
        re.compile(r"\bCREATE\s+(UNIQUE\s+)?INDEX\b[^;]*\bON\s+(\w+\.)?predictions\b", _I),
    ],
    "collector-intervals": [
        re.compile(r"COLLECTOR_INTERVALS|\bINTERVAL_SECONDS\s*=|--interval\b", _I),
        re.compile(r"\b(sed\s+-i|tee|cp|mv|install)\b[^;&|\n]*/opt/gept/collectors/"
                   r"(\.env|docker-compose\.ya?ml)", _I),
        re.compile(r">>?\s*/opt/gept/collectors/(\.env|docker-compose\.ya?ml)", _I),
    ],
    "model-registry": [
        re.compile(r"\bgept\s+models\s+(promote|rollback|retire|register)\b", _I),
        re.compile(r"\b(UPDATE|DELETE\s+FROM|INSERT\s+INTO)\s+(\w+\.)?model_registry\b", _I),
    ],
}
_HYDRA_INFERENCE = [
    re.compile(r"\b(sed\s+-i|rm|mv|truncate|tee|cp)\b[^;&|\n]*/etc/cron\.d/gept-inference", _I),
    re.compile(r">>?\s*/etc/cron\.d/gept-inference", _I),
    re.compile(r"\b(pkill|killall|kill)\b[^;&|\n]*\b(gept|infer)", _I),
    re.compile(r"\bsystemctl\s+(stop|disable|mask)\s+cron\b", _I),
]
# What a "safe" (read-only) runbook may not do.
_MUTATIONS = [
    re.compile(r"\bsystemctl\s+(start|stop|restart|reload|enable|disable|mask|kill)\b", _I),
    re.compile(r"\bdocker[\s-]compose\b[^;&|\n]*\b(up|down|restart|stop|start|rm|kill|pull)\b",
               _I),
    re.compile(r"(^|[\s;&|(])(rm|mv|ln|cp|chmod|chown|mkdir|rmdir|tee|truncate|kill|pkill|"
               r"killall|dd|install|useradd|apt|apt-get|pip|crontab)(\s|$)", _I),
    re.compile(r"\bsed\s+(-\w*i|--in-place)", _I),
    re.compile(r"(?<![0-9&>])>>?\s*(?!/dev/null|&)\S", _I),
]
_SQL_MUTATIONS = [
    re.compile(r"\b(INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|ALTER|DROP|TRUNCATE|CREATE|"
               r"GRANT|REVOKE|VACUUM)\b", re.IGNORECASE),
]


def step_texts(step: Step) -> list[str]:
    """The command-like texts of one step (what the patterns look at)."""
    if step.gate is not None:
        return [f"gept-gate {step.gate.action}"]
    if step.run is not None:
        return [step.run]
    if step.sudo is not None:
        return [step.sudo]
    if step.local is not None:
        return [step.local]
    if step.sql is not None:
        return [step.sql.query]
    if step.wait_until is not None:
        return [step.wait_until.run]
    if step.upload is not None:
        return [f"cp {step.upload.src} {step.upload.dest}"]
    if step.pyinfra is not None:
        return [f"pyinfra deploy {step.pyinfra.deploy}"]
    return []


def zones_in(text: str, targets: Iterable[str]) -> set[str]:
    """The danger zones a command touches, given the groups and names of the hosts it runs
    on (the resolved hosts' groups at plan time; a name is not trusted to say "hydra").
    """
    found = {zone for zone, pats in ZONE_PATTERNS.items() if any(p.search(text) for p in pats)}
    gate = re.match(r"gept-gate (\S+)", text)
    if gate:
        found.update(zone for action, zone in GATE_ZONES.items() if action == gate.group(1))
    if "hydra" in set(targets) and any(p.search(text) for p in _HYDRA_INFERENCE):
        found.add("stop-hydra-inference")
    return found


_SHELL_OPERATORS = re.compile(r"[;&|<>`\n]|\$\(")
_SHELLS = re.compile(r"\b(sh|bash|dash|zsh|eval|exec|python3?|perl|env)\b")


def template_problems(text: str, kind: str) -> list[str]:
    """Parameters placed where one shell word is not one word: inside quotes, or handed to a
    shell or interpreter as code; and ``sudo`` steps that are not one plain command.

    Example:
        >>> template_problems("echo '{{ x }}'", "run")[0][:40]
        'parameter inside quotes: parameters are '
        >>> template_problems("systemctl restart a.service && true", "sudo")[0][:30]
        'a sudo step is one plain comma'
    """
    problems: list[str] = []
    if kind == "sudo" and _SHELL_OPERATORS.search(text):
        problems.append("a sudo step is one plain command (no ;, &&, |, redirection or $()): "
                        "the host's sudoers allows exact commands, not a shell")
    if "{{" not in text:
        return problems
    quote: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if text.startswith("{{", i) and quote is not None:
            problems.append("parameter inside quotes: parameters are quoted for you "
                            "(one shell word each); remove the quotes around {{ }}")
            break
        if quote is None and ch in "'\"":
            quote = ch
        elif ch == quote:
            quote = None
        elif ch == "\\" and quote != "'":
            i += 1
        i += 1
    if _SHELLS.search(text):
        problems.append("parameters may not reach a shell or interpreter as code "
                        "(sh/bash -c, eval, python, perl, env)")
    return problems


def mutates(step: Step, text: str) -> bool:
    """True when a step changes something (not allowed in a ``safe`` runbook)."""
    if step.upload is not None or step.pyinfra is not None:
        return True
    if step.sql is not None:  # psql also runs it in a read-only transaction
        return any(p.search(text) for p in _SQL_MUTATIONS)
    return any(p.search(text) for p in _MUTATIONS + _SQL_MUTATIONS)


def check_class(runbook: Runbook) -> list[tuple[tuple[str | int, ...], str]]:
    """Problems as (field path, message): undeclared zones, mutations in a safe runbook.

    Example:
        >>> from gept.runbook.model import Runbook
        >>> rb = Runbook.model_validate({"name": "sneaky", "description": "x",
        ...     "class": "caution", "targets": "ampere",
        ...     "steps": [{"name": "s", "sudo": "systemctl restart postgresql"}]})
        >>> "touches danger zone 'restart-postgres'" in check_class(rb)[0][1]
        True
    """
    problems: list[tuple[tuple[str | int, ...], str]] = []
    sections: dict[str, list[Step]] = {"preconditions": runbook.preconditions,
                                       "steps": runbook.steps, "verify": runbook.verify,
                                       "rollback": runbook.rollback}
    for section, steps in sections.items():
        for i, step in enumerate(steps):
            where = step.on or runbook.targets
            shell_text = step.run or step.sudo or step.local or (
                step.wait_until.run if step.wait_until else None)
            if shell_text is not None:
                kind = "sudo" if (step.sudo is not None or (
                    step.wait_until is not None and step.wait_until.sudo)) else step.kind
                problems.extend(((section, i, step.kind), f"step {step.name!r}: {msg}")
                                for msg in template_problems(shell_text, kind))
            for text in step_texts(step):
                for zone in sorted(zones_in(text, [where]) - set(runbook.zones)):
                    problems.append(((section, i, step.kind),
                                     f"step {step.name!r} touches danger zone {zone!r} "
                                     f"(matched {text.strip()[:60]!r}); declare class: danger "
                                     f"and zones: [{zone}]"))
                read_only_section = section in ("preconditions", "verify")
                if (runbook.read_only or read_only_section) and mutates(step, text):
                    what = "a safe runbook" if runbook.read_only else section
                    problems.append(((section, i, step.kind),
                                     f"step {step.name!r} changes something, which {what} "
                                     f"may not do: {text.strip()[:60]!r}"))
    return problems


def check_rendered(runbook: Runbook,
                   commands: Iterable[tuple[str, tuple[str, ...], str]]) -> list[str]:
    """Zones touched by rendered commands ``(step, groups and name of the resolved host,
    command)`` but not declared.
    """
    problems = []
    for step_name, where, command in commands:
        for zone in sorted(zones_in(command, where) - set(runbook.zones)):
            problems.append(f"step {step_name!r} as rendered touches undeclared zone {zone!r}")
    return problems
