#!/usr/bin/env bash
# `make demo`: the whole agent Pod on this machine. `agentpod run` renders
# examples/demo/agentrun.yaml into the same Pod a cluster would get and runs
# every container as a local process (agent-runner, ipc-bridge, mcp-bridge
# with a real Python MCP server, a SkillPack sidecar, a memory server, and
# nats-server as the event bus), printing a live timeline and the result.
#
# The model is scripted (examples/demo/conversation.yaml) unless one of
# OPENAI_API_KEY, ANTHROPIC_API_KEY or MODEL_BASE_URL is set; then the same
# run uses that real model (MODEL_NAME picks the model). Nothing is sent to
# a model that was not asked for.
#
# Any other AgentRun plays the same way, from any folder:
#   scripts/demo.sh [AGENTRUN.yaml [CONVERSATION.yaml [RESOURCE.yaml...]]]
# CONVERSATION is the scripted model's script, required for an AgentRun of
# your own (there is no sensible default); `-` means none: the model the
# AgentRun (or the environment) names. AGENTPOD_ENGINE=podman runs the
# containers from `make images`. AGENTPOD_BIN_DIR=<dir> uses binaries
# already built there instead of building them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
usage="usage: scripts/demo.sh [AGENTRUN.yaml [CONVERSATION.yaml|- [RESOURCE.yaml...]]]"

# Arguments are the caller's paths: made absolute before anything else.
abs() { case "$1" in /*|-) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }
real_model=""
if [ -n "${OPENAI_API_KEY:-}${ANTHROPIC_API_KEY:-}${MODEL_BASE_URL:-}" ]; then real_model=yes; fi
if [ $# -eq 0 ]; then
  agentrun=$root/examples/demo/agentrun.yaml
  script=$root/examples/demo/conversation.yaml
else
  agentrun=$(abs "$1")
  if [ $# -ge 2 ]; then
    script=$(abs "$2")
  elif [ -n "$real_model" ]; then
    script=-
  else
    echo "demo: $1 needs a conversation for the scripted model (format: examples/conversations/hello.yaml)," >&2
    echo "      or '-' to use the model the AgentRun names, or OPENAI_API_KEY / ANTHROPIC_API_KEY / MODEL_BASE_URL" >&2
    echo "      for a real one. $usage" >&2
    exit 2
  fi
fi
shift $(( $# > 2 ? 2 : $# ))
resources=()
for f in "$@"; do resources+=("$(abs "$f")"); done
for f in "$agentrun" "${resources[@]}"; do
  [ -r "$f" ] || { echo "demo: cannot read $f ($usage)" >&2; exit 2; }
done
if [ -z "$real_model" ] && [ "$script" != "-" ] && [ ! -r "$script" ]; then
  echo "demo: cannot read the conversation $script ($usage)" >&2
  exit 2
fi

say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

if [ -n "${AGENTPOD_BIN_DIR:-}" ]; then
  bin=$AGENTPOD_BIN_DIR
else
  say "building agentpod and the Pod's binaries"
  cargo build --quiet --manifest-path "$root/Cargo.toml" -p agentpod-operator -p agent-runner \
    -p ipc-bridge -p mcp-bridge -p tool-executor -p memory-server -p agentpod-test-support \
    -p text-tools --bins
  bin=${CARGO_TARGET_DIR:-$root/target}/debug
fi

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/agentpod-demo.XXXXXX")
args=("$agentrun" "${resources[@]}" --run-dir "$run_dir" --engine "${AGENTPOD_ENGINE:-process}"
      --bin-dir "$bin")
llm=""
cleanup() { if [ -n "$llm" ]; then kill "$llm" 2>/dev/null || true; wait "$llm" 2>/dev/null || true; fi; }
trap cleanup EXIT

# A real model is whatever the caller's variables say; `agentpod run`
# reads MODEL_* and the keys from this environment, and `--env` wins.
if [ -n "${OPENAI_API_KEY:-}" ]; then
  say "model: REAL — OpenAI ${MODEL_NAME:-gpt-4o-mini} (OPENAI_API_KEY is set)"
  args+=(--env MODEL_PROVIDER=openai --env "MODEL_NAME=${MODEL_NAME:-gpt-4o-mini}"
         --env "MODEL_BASE_URL=${MODEL_BASE_URL:-}")
elif [ -n "${ANTHROPIC_API_KEY:-}" ]; then
  say "model: REAL — Anthropic ${MODEL_NAME:-claude-sonnet-4-5} (ANTHROPIC_API_KEY is set)"
  args+=(--env MODEL_PROVIDER=anthropic --env "MODEL_NAME=${MODEL_NAME:-claude-sonnet-4-5}"
         --env "MODEL_BASE_URL=${MODEL_BASE_URL:-}")
elif [ -n "${MODEL_BASE_URL:-}" ]; then
  say "model: REAL — OpenAI-compatible endpoint $MODEL_BASE_URL (${MODEL_NAME:-default model})"
  args+=(--env MODEL_PROVIDER=openai --env "MODEL_BASE_URL=$MODEL_BASE_URL"
         --env "MODEL_NAME=${MODEL_NAME:-default}" --env "API_KEY=${API_KEY:-none}")
elif [ "$script" = "-" ]; then
  say "model: as the AgentRun says (no scripted model)"
else
  say "model: SCRIPTED — a stand-in that replays ${script#"$root"/}"
  echo "(set OPENAI_API_KEY, ANTHROPIC_API_KEY or MODEL_BASE_URL to use a real model)" >&2
  "$bin/scripted-llm" "$script" > "$run_dir/llm.url" 2> "$run_dir/llm.log" &
  llm=$!
  # Ready when it prints its URL; a script it cannot read ends it at once.
  for _ in $(seq 200); do
    [ -s "$run_dir/llm.url" ] && break
    kill -0 "$llm" 2>/dev/null || break
    sleep 0.05
  done
  if [ ! -s "$run_dir/llm.url" ]; then
    wait "$llm" 2>/dev/null && code=0 || code=$?
    llm=""
    echo "demo: the scripted model did not start (exit $code):" >&2
    sed 's/^/  /' "$run_dir/llm.log" >&2
    exit 2
  fi
  url=$(head -n1 "$run_dir/llm.url")
  args+=(--env "MODEL_BASE_URL=$url" --env API_KEY=scripted)
fi

say "agentpod run ${args[*]}"
set +e
"$bin/agentpod" run "${args[@]}"
code=$?
set -e

if [ -d "$run_dir/workspace" ]; then
  say "what the run left behind ($run_dir)"
  echo "/workspace:" >&2
  (cd "$run_dir/workspace" && find . -type f -printf '  %P (%s bytes)\n' | head -20) >&2
  echo "/ipc/messages:" >&2
  for f in "$run_dir"/ipc/messages/*.json; do [ -e "$f" ] && { printf '  '; cat "$f"; echo; } >&2; done
  echo "container logs: $run_dir/logs/" >&2
fi
if [ -n "$llm" ]; then
  kill -INT "$llm" 2>/dev/null || true
  wait "$llm" 2>/dev/null || true
  llm=""
fi
say "exit code: $code"
exit "$code"
