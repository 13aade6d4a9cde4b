#!/usr/bin/env bash
# podman with agentpod's private store and configuration (written by
# scripts/setup-podman.sh): every argument is passed through.
#   scripts/podman.sh images
#   scripts/podman.sh run --rm --network none localhost/agentpod/agent-runner:dev --help
# Shared podman state (/var/lib/containers, ~/.local/share/containers) is
# never used. Only `--network host` or `--network none`: the configuration
# defaults to none, and the default bridge network must not be used here.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/target/podman"
if [ ! -f "$dir/containers.conf" ]; then
  echo "podman.sh: $dir/containers.conf is missing: run scripts/setup-podman.sh (make setup-podman)" >&2
  exit 125
fi
export CONTAINERS_CONF="$dir/containers.conf"
export TMPDIR="$dir/tmp"
exec podman \
  --root "$dir/root" \
  --runroot "$dir/runroot" \
  --runtime runc \
  --cgroup-manager cgroupfs \
  --storage-driver overlay \
  "$@"
