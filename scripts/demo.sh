#!/usr/bin/env bash
# `make demo`: the main job. Plays one agent run on this machine: the real
# agent-runner binary against a scripted model (the one stand-in), with the
# Pod's /ipc, /workspace, /skills and /tmp mapped to a run folder.
# (The whole Pod, sidecars included, is `agentpod run`: issue 10.)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "building agent-runner and the scripted model server"
cargo build --quiet -p agent-runner -p agentpod-test-support --bins

run=$(mktemp -d "${TMPDIR:-/tmp}/agentpod-demo.XXXXXX")
mkdir -p "$run"/{ipc,workspace,skills,tmp}
echo "hello from the workspace" > "$run/workspace/hello.txt"
cat > "$run/skills/greeter.md" <<'SKILL'
# Greeter
Greet people warmly and mention what you found.
SKILL

say "starting the scripted model (examples/conversations/hello.yaml)"
./target/debug/scripted-llm examples/conversations/hello.yaml > "$run/llm.url" 2> "$run/llm.log" &
llm=$!
trap 'kill $llm 2>/dev/null || true' EXIT
for _ in $(seq 200); do [ -s "$run/llm.url" ] && break; sleep 0.05; done
url=$(head -n1 "$run/llm.url")
echo "model endpoint: $url"

say "running agent-runner (run folder: $run)"
set +e
env -i PATH="$PATH" \
  TASK="What is in the workspace? Greet me." \
  MODEL_PROVIDER=openai MODEL_NAME=demo-model MODEL_BASE_URL="$url" API_KEY=demo \
  TOOLS_ENABLED=true INSTANCE_NAME=demo-agent AGENT_RUN_ID=demo-run-1 \
  AGENTPOD_IPC_ROOT="$run/ipc" AGENTPOD_WORKSPACE_ROOT="$run/workspace" \
  AGENTPOD_SKILLS_ROOT="$run/skills" AGENTPOD_TMP_ROOT="$run/tmp" AGENTPOD_SETTLE=0s \
  ./target/debug/agent-runner > "$run/agent.stdout" 2> "$run/agent.stderr"
code=$?
set -e

say "agent log (stderr)"
cat "$run/agent.stderr"
say "stdout: the result marker the controller reads"
cat "$run/agent.stdout"
say "/ipc after the run"
(cd "$run/ipc" && find . -type f | sort)
say "/ipc/output/result.json"
cat "$run/ipc/output/result.json"; echo
say "streamed chunks"
for f in $(ls "$run"/ipc/output/stream-*.json | sort -V); do cat "$f"; echo; done
say "exit code: $code"
exit "$code"
