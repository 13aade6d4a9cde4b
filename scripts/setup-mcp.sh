#!/usr/bin/env bash
# Installs the MCP servers and clients the mcp-bridge tests and benchmark use,
# into project-local folders: the npm reference server
# @modelcontextprotocol/server-everything into ./node_modules, and PyPI `mcp`
# (the official Python SDK: MCPServer for test servers, ClientSession for the
# benchmark) into the project venv .venv (created by scripts/setup.sh).
# Idempotent: what is already installed at the pinned version is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
everything_pkg="@modelcontextprotocol/server-everything"
everything_version="2026.8.31"
mcp_py_spec="mcp>=2.3,<2.4"
mcp_py_prefix="2.3."

log() { printf 'setup-mcp: %s\n' "$*" >&2; }

if [ ! -x "$venv/bin/python" ]; then
  log "creating Python venv in $venv"
  python3 -m venv "$venv"
fi

installed_everything=""
if [ -f "node_modules/$everything_pkg/package.json" ]; then
  installed_everything=$(node -p "require('./node_modules/$everything_pkg/package.json').version" 2>/dev/null || true)
fi
if [ "$installed_everything" = "$everything_version" ]; then
  log "$everything_pkg $installed_everything already installed"
else
  log "installing $everything_pkg@$everything_version into ./node_modules"
  # --no-save keeps package.json/package-lock.json out of the repository.
  npm install --no-save --no-audit --no-fund --loglevel=error --prefix . \
    "$everything_pkg@$everything_version"
fi

installed_mcp=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp"))' 2>/dev/null || true)
case "$installed_mcp" in
  "$mcp_py_prefix"*) log "python mcp $installed_mcp already installed" ;;
  *)
    log "installing $mcp_py_spec into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$mcp_py_spec"
    ;;
esac

log "ready: $PWD/node_modules/.bin/mcp-server-everything, $PWD/$venv/bin/python -m mcp"
