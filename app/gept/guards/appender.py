"""The controller's audit appender: root appends lines the agent hands it, and stamps who.

Installed by ``gept lab up`` as ``/usr/local/sbin/gept-audit-append`` (root-owned, run by
``sudo -n`` from the agent's account; sudo clears the environment). It only appends: lines
already written cannot be changed by the account they audit. Standard library only, run with
``python3 -I``, so nothing the caller controls is imported.

Example:
    $ echo '{"event": "requested"}' | sudo -n /usr/local/sbin/gept-audit-append
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from datetime import UTC, datetime

LOG = "/var/log/gept/audit.jsonl"
MAX_LINES = 10_000
MAX_LINE = 64 * 1024


def main() -> int:
    """Read JSON objects, one per line, from stdin; append each stamped with the caller."""
    caller = os.environ.get("SUDO_USER") or str(os.getuid())
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    out = []
    for n, raw in enumerate(sys.stdin):
        if n >= MAX_LINES or len(raw) > MAX_LINE:
            sys.stderr.write("gept-audit-append: too much input\n")
            return 2
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except ValueError:
            sys.stderr.write("gept-audit-append: not JSON\n")
            return 2
        if not isinstance(item, dict):
            sys.stderr.write("gept-audit-append: not a JSON object\n")
            return 2
        item["asked_by"] = caller   # the caller cannot claim to be someone else
        item["received"] = now
        out.append(json.dumps(item, default=str))
    os.makedirs(os.path.dirname(LOG), mode=0o755, exist_ok=True)
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    with os.fdopen(fd, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write("".join(line + "\n" for line in out))
        fh.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
