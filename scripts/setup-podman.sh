#!/usr/bin/env bash
# Installs what `make images` and the podman engine of `agentpod run` need,
# and writes the private podman configuration under target/podman/.
# Idempotent: packages already installed are left alone, the config is
# rewritten only when it changed.
#
# Why the private configuration (see ../shared/ENVIRONMENT.md):
# - runc, not crun: crun rejects this kind of machine's hybrid cgroups;
# - explicit ulimits: podman's default (the caller's hard limits) fails here;
# - a private store (--root/--runroot, set by scripts/podman.sh): shared
#   podman state is never touched.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup-podman: %s\n' "$*" >&2; }

# Debian packages: podman and its OCI runtime and init; busybox-static
# gives the SkillPack images /bin/sh; ripgrep goes into skill-code;
# iproute2 lets the newcomer tests bring up loopback in a network
# namespace of their own.
need=()
for pkg in podman runc catatonit busybox-static ripgrep iproute2; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    need+=("$pkg")
  fi
done
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]}"
  sudo_=()
  [ "$(id -u)" -eq 0 ] || sudo_=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo_[@]}" apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; then
    "${sudo_[@]}" apt-get update -qq
    "${sudo_[@]}" apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
  fi
else
  log "podman, runc, catatonit, busybox-static, ripgrep and iproute2 already installed"
fi

dir=target/podman
mkdir -p "$dir/root" "$dir/runroot" "$dir/tmp"
conf="$dir/containers.conf"
want=$(cat <<CONF
# Written by scripts/setup-podman.sh; used through scripts/podman.sh.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
# Never the default bridge network (a private 10.x range): host or none.
netns = "none"
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PWD/$dir/events.log"
tmp_dir = "$PWD/$dir/tmp"
CONF
)
if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$want" ]; then
  printf '%s\n' "$want" > "$conf"
  log "wrote $conf"
fi
log "ready: $(podman --version) with runc; store in $dir (use scripts/podman.sh)"
