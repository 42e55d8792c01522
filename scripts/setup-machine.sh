#!/usr/bin/env bash
# Placeholder: installs what the tests need (replaced by the lab work).
set -euo pipefail
need=()
for p in postgresql-15 chromium prometheus; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; fi
