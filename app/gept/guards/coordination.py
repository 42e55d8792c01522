"""The one path a guarded action takes: verify the approval, consume its nonce, audit.

Deploys, runbooks, ``gept models`` and the host gate (:mod:`gept.gate`) all call
:func:`require` (or :func:`check`, which verifies without consuming, so a runner can refuse
before it connects and a failed precondition does not burn a person's approval).

Example:
    >>> require("restart-postgres", h, text, hosts=["lab/ampere"], signers=s,
    ...         ledger=default_ledger(), action="runbook restart-postgres")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gept.core.errors import NeedsCoordination
from gept.guards import audit
from gept.guards.approval import Approval, Refused, decode, verify
from gept.guards.ledger import Ledger
from gept.guards.signers import Signers
from gept.guards.zones import check_zone


def how(zone: str, plan_hash: str, hosts: Sequence[str]) -> str:
    """The command a person runs to approve (printed with every refusal)."""
    joined = " ".join(f"--host {h}" for h in sorted(hosts))
    return (f"gept coordinate approve --zone {zone} --plan-hash {plan_hash} {joined} "
            "--reason '<why>' --ttl 15m  (signs with your SSH key; pass the printed "
            "approval with --approval)")


def pick(zone: str, texts: Sequence[str]) -> str | None:
    """The approval among several that *claims* ``zone`` (verified afterwards)."""
    for text in texts:
        try:
            if decode(text)[0].zone == zone:
                return text
        except Refused:
            continue
    return texts[0] if texts else None


def refusal(zone: str, plan_hash: str, hosts: Sequence[str], action: str, why: str,
            nonce: str | None = None) -> NeedsCoordination:
    """The audited exit-3 error for a refusal (raise it)."""
    return _refuse(zone, plan_hash, hosts, action, why, nonce)


def _refuse(zone: str, plan_hash: str, hosts: Sequence[str], action: str, why: str,
            nonce: str | None) -> NeedsCoordination:
    audit.record("refused", zone=zone, plan_hash=plan_hash, hosts=list(hosts), action=action,
                 reason=why, nonce=nonce)
    return NeedsCoordination(f"{action} touches danger zone {zone!r}: {why}", zone=zone,
                             plan_hash=plan_hash, hosts=list(hosts), reason=why,
                             how=how(zone, plan_hash, hosts))


def check(zone: str, plan_hash: str, text: str | None, *, hosts: Sequence[str],
          signers: Signers, action: str, ledger: Ledger | None = None) -> Approval:
    """The approval when it allows ``zone``/``plan_hash`` on every one of ``hosts``.

    Raises:
        NeedsCoordination: no approval, or one that does not allow exactly this (exit 3).
    """
    check_zone(zone)
    if not text:
        raise _refuse(zone, plan_hash, hosts, action, "a person's approval is required", None)
    approval: Approval | None = None
    try:
        for host in hosts:
            approval = verify(text, signers, zone=zone, plan_hash=plan_hash, host=host)
        if approval is None:
            raise Refused("no host to approve for")
        if ledger is not None and ledger.used(approval.nonce):
            raise Refused("approval already used (each approval works once)")
    except Refused as exc:
        nonce = approval.nonce if approval else _nonce(text)
        raise _refuse(zone, plan_hash, hosts, action, str(exc), nonce) from None
    return approval


def require(zone: str, plan_hash: str, text: str | None, *, hosts: Sequence[str],
            signers: Signers, ledger: Ledger, action: str) -> Approval:
    """Verify, then consume: the approval works this once.

    Raises:
        NeedsCoordination: as :func:`check`, or the nonce was used already.
    """
    approval = check(zone, plan_hash, text, hosts=hosts, signers=signers, action=action)
    try:
        ledger.consume(approval.nonce, {"zone": zone, "plan_hash": plan_hash,
                                        "action": action, "by": approval.by,
                                        "asked_by": audit.actor()})
    except Refused as exc:
        raise _refuse(zone, plan_hash, hosts, action, str(exc), approval.nonce) from None
    audit.record("approved_use", zone=zone, plan_hash=plan_hash, hosts=list(hosts),
                 action=action, approved_by=approval.by, nonce=approval.nonce,
                 reason=approval.reason, expires=approval.expires)
    return approval


def _nonce(text: str) -> str | None:
    try:
        return decode(text)[0].nonce
    except Refused:
        return None


@dataclass(frozen=True)
class Guard:
    """Who may approve, where nonces are spent, and which hosts an action runs on."""

    signers: Signers
    ledger: Ledger
    hosts: tuple[str, ...]

    @classmethod
    def on_this_host(cls) -> Guard:
        """The host's own guard: its allowed signers, its identity (``/etc/gept/host.json``),
        root's ledger.

        Raises:
            ConfigError: this machine was not converged by the deploys (no identity or
                allowed signers), so nothing here can be approved.
        """
        from gept.gate.host import HostFacts
        from gept.guards.ledger import HOST_LEDGER

        identity = HostFacts.load().identity  # first: "not a converged host" says it all
        return cls(Signers.from_file(), Ledger(HOST_LEDGER), (identity,))

    def require(self, zone: str, plan_hash: str, text: str | None, action: str) -> Approval:
        """:func:`require` for this guard's hosts (the nonce is spent)."""
        return require(zone, plan_hash, text, hosts=self.hosts, signers=self.signers,
                       ledger=self.ledger, action=action)
