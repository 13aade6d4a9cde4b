#!/usr/bin/env bash
# `make demo-local-model`: the `make demo` Pod with a real model instead of
# the scripted one. Serves Gemma 3 270M with llama-cpp-python on 127.0.0.1
# (installed by scripts/setup-local-model.sh) and points the run at it
# through MODEL_BASE_URL, exactly as you would point it at your own server.
#
# Gemma 3 270M is a tiny base model: it answers, slowly (~50 tokens/s on two
# cores) and not always sensibly, and it rarely calls tools. The point is the
# real path: real HTTP, streaming and the tool loop against a real server.
# Replies are capped at LOCAL_MODEL_MAX_TOKENS (160) tokens, see
# scripts/local-model-server.py.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-local-model.sh
model=target/local-model/gemma-3-270m-q4_k_m.gguf
port=$(.venv-llm/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=target/local-model/server.log

echo "demo-local-model: serving $model on 127.0.0.1:$port (log: $log)" >&2
.venv-llm/bin/python scripts/local-model-server.py --model "$model" --model_alias gemma-3-270m \
  --host 127.0.0.1 --port "$port" --n_ctx 8192 > "$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT

for _ in $(seq 600); do
  if curl -fsS "http://127.0.0.1:$port/v1/models" > /dev/null 2>&1; then break; fi
  kill -0 "$server" 2>/dev/null || { echo "demo-local-model: the model server exited; see $log" >&2; exit 1; }
  sleep 0.1
done

MODEL_BASE_URL="http://127.0.0.1:$port/v1" MODEL_NAME=gemma-3-270m API_KEY=local \
  bash scripts/demo.sh examples/demo/agentrun.yaml -
