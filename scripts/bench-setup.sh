#!/usr/bin/env bash
# Installs what `make bench` needs beyond `make setup`: the Python side of the
# agent-runner comparison (bench/python/agent.py) into the project venv.
# Idempotent: packages already present at the pinned versions are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
# Pinned so the comparison is repeatable; the versions a run used are also
# recorded in bench/RESULTS.md.
py_pkgs=("langgraph==1.2.22" "langchain-openai==1.7.4")

log() { printf 'bench-setup: %s\n' "$*" >&2; }

if [ ! -x "$venv/bin/python" ]; then
  log "creating Python venv in $venv"
  python3 -m venv "$venv"
fi

have() {
  "$venv/bin/python" - "$@" <<'PY' 2>/dev/null
import sys, importlib.metadata as m
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    if m.version(name) != want:
        sys.exit(1)
PY
}

if have "${py_pkgs[@]}"; then
  log "already installed: ${py_pkgs[*]}"
else
  log "installing ${py_pkgs[*]}"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${py_pkgs[@]}"
fi
