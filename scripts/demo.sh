#!/usr/bin/env bash
# `make demo`: the whole agent Pod on this machine. `agentpod run` renders
# examples/demo/agentrun.yaml into the same Pod a cluster would get and runs
# every container as a local process (agent-runner, ipc-bridge, mcp-bridge
# with a real Python MCP server, a SkillPack sidecar, a memory server, and
# nats-server as the event bus), printing a live timeline and the result.
#
# The model is scripted (examples/demo/conversation.yaml) unless one of
# OPENAI_API_KEY, ANTHROPIC_API_KEY or MODEL_BASE_URL is set; then the same
# run uses that real model (MODEL_NAME picks the model).
#
# Any other AgentRun plays the same way:
#   scripts/demo.sh [AGENTRUN.yaml [CONVERSATION.yaml [RESOURCE.yaml...]]]
# (CONVERSATION is the scripted model's script; `-` means none, for a real
# model.) AGENTPOD_ENGINE=podman runs the containers from `make images`.
set -euo pipefail
cd "$(dirname "$0")/.."

agentrun=${1:-examples/demo/agentrun.yaml}
script=${2:-examples/demo/conversation.yaml}
shift $(( $# > 2 ? 2 : $# ))
for f in "$agentrun" "$@"; do
  [ -r "$f" ] || { echo "demo: cannot read $f (usage: scripts/demo.sh [AGENTRUN [CONVERSATION [RESOURCES...]]])" >&2; exit 2; }
done

say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

say "building agentpod and the Pod's binaries"
cargo build --quiet -p agentpod-operator -p agent-runner -p ipc-bridge -p mcp-bridge \
  -p tool-executor -p memory-server -p agentpod-test-support -p text-tools --bins

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/agentpod-demo.XXXXXX")
args=("$agentrun" "$@" --run-dir "$run_dir" --engine "${AGENTPOD_ENGINE:-process}")
llm=""
cleanup() { if [ -n "$llm" ]; then kill "$llm" 2>/dev/null || true; wait "$llm" 2>/dev/null || true; fi; }
trap cleanup EXIT

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
  say "model: as the AgentRun says (no scripted model; spec.model must reach a real one)"
else
  [ -r "$script" ] || { echo "demo: cannot read the conversation $script" >&2; exit 2; }
  say "model: SCRIPTED — a stand-in that replays $script"
  echo "(set OPENAI_API_KEY, ANTHROPIC_API_KEY or MODEL_BASE_URL to use a real model)" >&2
  ./target/debug/scripted-llm "$script" \
    > "$run_dir/llm.url" 2> "$run_dir/llm.log" &
  llm=$!
  for _ in $(seq 200); do [ -s "$run_dir/llm.url" ] && break; sleep 0.05; done
  url=$(head -n1 "$run_dir/llm.url")
  args+=(--env "MODEL_BASE_URL=$url" --env API_KEY=scripted)
fi

say "agentpod run ${args[*]}"
set +e
./target/debug/agentpod run "${args[@]}"
code=$?
set -e

say "what the run left behind ($run_dir)"
echo "/workspace:" >&2
(cd "$run_dir/workspace" && find . -type f -printf '  %P (%s bytes)\n' | head -20) >&2
echo "/ipc/messages:" >&2
for f in "$run_dir"/ipc/messages/*.json; do [ -e "$f" ] && { printf '  '; cat "$f"; echo; } >&2; done
echo "container logs: $run_dir/logs/" >&2
if [ -n "$llm" ]; then
  kill -INT "$llm" 2>/dev/null || true
  wait "$llm" 2>/dev/null || true
  llm=""
fi
say "exit code: $code"
exit "$code"
