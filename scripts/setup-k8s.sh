#!/usr/bin/env bash
# Installs the offline Kubernetes schema validator (PyPI kubernetes-validate)
# into the project venv. The operator's golden tests run every rendered object
# through `kubernetes-validate --strict`. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
log() { printf 'setup-k8s: %s\n' "$*" >&2; }

if [ ! -x "$venv/bin/python" ]; then
  log "creating Python venv in $venv"
  python3 -m venv "$venv"
fi

if [ -x "$venv/bin/kubernetes-validate" ]; then
  log "kubernetes-validate already installed"
else
  log "installing kubernetes-validate"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate>=1.31"
fi

log "ready: $PWD/$venv/bin/kubernetes-validate"
