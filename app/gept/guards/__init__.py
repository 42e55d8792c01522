"""Danger zones and the approvals that open them, one concern per module.

* :mod:`gept.guards.zones` — the zones, listed once;
* :mod:`gept.guards.plans` — the plan hash (what an approval is bound to);
* :mod:`gept.guards.signers` — the people allowed to approve (public keys from inventory);
* :mod:`gept.guards.approval` — an approval: a person's OpenSSH signature over zone, plan
  hash, hosts, expiry and nonce (``ssh-keygen -Y sign``), and its verification;
* :mod:`gept.guards.ledger` — used nonces, so an approval works once;
* :mod:`gept.guards.coordination` — the one path every guarded action takes
  (verify, consume, audit), used by deploys, runbooks, ``gept models`` and the host gate;
* :mod:`gept.guards.audit` — the audit trail, written where the agent cannot edit it.

The boundary itself is on the hosts (:mod:`gept.gate`): the controller's checks are a
courtesy that explains a refusal before anything connects.
"""
