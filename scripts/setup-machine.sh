#!/usr/bin/env bash
# Idempotent machine setup for `make test` and `make demo` (Debian 12, run as root):
#   1. installs the Debian packages the tests and the lab need (skips what is installed);
#   2. starts the Docker engine when it is not running (the lab code would too);
#   3. builds the lab image unless cached (GEPT_SETUP_LAB_IMAGE=0 skips it).
# Fast when everything is already there: one `dpkg-query` call, no apt.
set -euo pipefail

PACKAGES=(
  # the lab: Docker engine from Debian (compose v1: bookworm has no plugin), debootstrap
  docker.io docker-compose debootstrap iptables
  # real components the tests start: PostgreSQL, sshd for Fabric, monitoring, load, browser
  postgresql-15 openssh-server openssh-client rsync prometheus prometheus-alertmanager wrk chromium
  ca-certificates curl git python3-venv sudo
)
APT_FRESH_MINUTES=360   # an `apt-get update` younger than this is reused

export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-machine: installing ${missing[*]}"
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -"$APT_FRESH_MINUTES" 2>/dev/null | head -n1)" ]; then
    timeout 600 $SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
  fi
  timeout 1800 $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup-machine: packages present"
fi

# Start the Docker engine through the lab code when the venv exists (one implementation:
# pidfile and log in ~/.local/state/gept/dockerd), else directly.
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -x "$here/.venv/bin/python" ] && "$here/.venv/bin/python" -c 'import gept.lab.engine' 2>/dev/null; then
  # Also build the lab image here (cached by recipe hash: a no-op when present), so that a
  # cold build (2-7 minutes on a busy machine) happens before, not inside, a timed test.
  timeout 1800 "$here/.venv/bin/python" - <<'PY'
import os
from gept.lab.lab import Lab
from gept.lab.image import ensure_image
lab = Lab.from_env()
started = lab.engine.ensure_running()
print(f"setup-machine: docker engine {lab.engine.server_version()} "
      f"{'started' if started else 'running'}", flush=True)
if os.environ.get("GEPT_SETUP_LAB_IMAGE", "1") != "0":
    report = ensure_image(lab.engine, lab.recipe, lab.work_root)
    print(f"setup-machine: lab image {report.tag} "
          f"{'built in %.0f s' % report.seconds if report.built_systemd else 'cached'}")
PY
elif ! timeout 10 /usr/bin/docker version >/dev/null 2>&1; then
  state="${XDG_STATE_HOME:-$HOME/.local/state}/gept/dockerd"
  mkdir -p "$state"
  setsid $SUDO /usr/sbin/dockerd --pidfile "$state/dockerd.pid" >>"$state/dockerd.log" 2>&1 < /dev/null &
  for _ in $(seq 1 100); do timeout 10 /usr/bin/docker version >/dev/null 2>&1 && break; sleep 0.3; done
  timeout 10 /usr/bin/docker version >/dev/null || { echo "docker engine could not start: see $state/dockerd.log" >&2; exit 1; }
  echo "setup-machine: docker engine started"
fi
