"""The host gate: the only way the agent's account reaches a danger-zone action on a host.

Installed by the deploys as ``/usr/local/sbin/gept-gate`` (root-owned; it runs this package
from the host's release venv with ``python -I``), allowed to ``gept-agent`` by sudoers. Each
action verifies a person's approval against the host's own allowed signers
(``/etc/gept/allowed_signers``) and identity (``/etc/gept/host-identity``), spends its nonce
in root's ledger, writes the decision to the journal (``journalctl -t gept-gate``), and only
then acts. The actions are fixed here; nothing the caller sends becomes code.

Example:
    $ sudo -n /usr/local/sbin/gept-gate restart-postgres --plan-hash <H> --approval <A>
"""
