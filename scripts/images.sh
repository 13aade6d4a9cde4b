#!/usr/bin/env bash
# `make images`: every agentpod container image, built without a daemon.
#
# 1. static binaries: cargo --profile image (crt-static, gnu target);
# 2. one staged build context per image under target/images/context/<name>
#    (layout in images/README.md: the same context builds with Docker);
# 3. podman build of images/<name>/Containerfile (FROM scratch) into the
#    private store (scripts/podman.sh), tagged localhost/agentpod/<name>:dev;
# 4. podman save as an OCI archive: target/images/<name>.tar.
#
# Idempotent and quick when nothing changed: an image is rebuilt only when
# the hash of its Containerfile and staged context changed, or when it is
# missing from the store. Usage: scripts/images.sh [name...]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

IMG_TARGET=x86_64-unknown-linux-gnu
IMG_PROFILE=image
TAG=${AGENTPOD_LOCAL_TAG:-dev}
PREFIX=localhost/agentpod
out=target/images
bins_dir=target/$IMG_TARGET/$IMG_PROFILE

# image name -> the binaries it carries (from the cargo build).
declare -A carries=(
  [agent-runner]=agent-runner
  [ipc-bridge]=ipc-bridge
  [mcp-bridge]=mcp-bridge
  [memory-server]=memory-server
  [tool-executor]=tool-executor
  [agentpod]=agentpod
  [skill-code]=tool-executor
  [skill-k8s-ops]=tool-executor
  [skill-text-tools]=text-tools
)
all=(agent-runner ipc-bridge mcp-bridge memory-server tool-executor agentpod
     skill-code skill-k8s-ops skill-text-tools)
names=("$@")
[ "${#names[@]}" -gt 0 ] || names=("${all[@]}")
for n in "${names[@]}"; do
  [ -n "${carries[$n]:-}" ] || { echo "images: unknown image $n (known: ${all[*]})" >&2; exit 2; }
done

say() { printf 'images: %s\n' "$*" >&2; }
t0=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1fs", b-a}'; }
human() { awk -v b="$1" 'BEGIN{printf "%.1f MB", b/1000000}'; }

bash scripts/setup-podman.sh 2>/dev/null || bash scripts/setup-podman.sh
podman_() { bash scripts/podman.sh "$@"; }

mkdir -p "$out"
# One build at a time (tests may ask for the images concurrently).
exec 9>"$out/.lock"
flock 9

# 1. Static binaries. --target keeps build scripts and proc macros
#    dynamic; RUSTFLAGS then only apply to the target's artifacts.
#    Called from a test, the environment carries cargo's variables for
#    that test (CARGO_PKG_*, LD_LIBRARY_PATH, ...): drop them, or the
#    build scripts see a changed environment and everything rebuilds.
for v in $(compgen -e); do
  case "$v" in
    CARGO_HOME | CARGO_TARGET_DIR | CARGO_BUILD_JOBS) ;;
    CARGO | CARGO_* | RUSTC* | RUSTDOC* | RUST_TEST* | LD_LIBRARY_PATH | OUT_DIR) unset "$v" ;;
  esac
done
say "static binaries: cargo build --profile $IMG_PROFILE --target $IMG_TARGET"
tb=$(date +%s.%N)
RUSTFLAGS='-C target-feature=+crt-static' cargo build \
  --profile "$IMG_PROFILE" --target "$IMG_TARGET" \
  -p agent-runner -p ipc-bridge -p mcp-bridge -p tool-executor -p memory-server \
  -p agentpod-operator -p text-tools --bins
say "static binaries ready ($(elapsed "$tb"))"

# Copies $1 to $2, dereferenced; a hard link when possible (same file system).
put() {
  mkdir -p "$(dirname "$2")"
  local src
  src=$(readlink -f "$1")
  ln -f "$src" "$2" 2>/dev/null || cp -f "$src" "$2"
}

# Binaries with their exact shared libraries and loader, at their paths
# under $1 (the dynamic loader's default directories, so no ld.so.cache).
put_dynamic() {
  local dest=$1; shift
  local bin lib
  for bin in "$@"; do
    put "$bin" "$dest$bin"
    while read -r lib; do
      case "$lib" in
        /lib64/ld-linux*) put "$lib" "$dest/lib64/$(basename "$lib")" ;;
        /*) put "$lib" "$dest/lib/x86_64-linux-gnu/$(basename "$lib")" ;;
      esac
    done < <(ldd "$bin" | awk '/=> \//{print $3} /^[ \t]*\/lib64\//{print $1}')
  done
}

# 2. Staged build contexts.
stage() {
  local name=$1 ctx=$out/context/$1
  rm -rf "$ctx"
  mkdir -p "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/tmp" "$ctx/empty" "$ctx/bin"
  chmod 1777 "$ctx/rootfs/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nagent:x:1000:1000:agent:/tmp:/sbin/nologin\n' \
    > "$ctx/rootfs/etc/passwd"
  printf 'root:x:0:\nagent:x:1000:\n' > "$ctx/rootfs/etc/group"
  put /etc/ssl/certs/ca-certificates.crt "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
  put "$bins_dir/${carries[$name]}" "$ctx/bin/${carries[$name]}"
  case "$name" in
    tool-executor | skill-code | skill-k8s-ops) put /bin/busybox "$ctx/bin/busybox" ;;
  esac
  case "$name" in
    skill-code)
      put_dynamic "$ctx/tools" /usr/bin/git /usr/bin/rg /usr/bin/make
      printf '[safe]\n\tdirectory = *\n' > "$ctx/gitconfig"
      ;;
    skill-k8s-ops) put /usr/bin/kubectl "$ctx/bin/kubectl" ;;
  esac
}

# Hash of what an image is made of: the Containerfile and the context
# (paths, modes, contents).
context_hash() {
  local ctx=$out/context/$1
  {
    sha256sum "images/$1/Containerfile"
    (cd "$ctx" && find . -printf '%p %m %y\n' | LC_ALL=C sort)
    (cd "$ctx" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
  } | sha256sum | cut -d' ' -f1
}

# 3 and 4. Build and save.
printf '%-18s %10s %10s  %s\n' IMAGE SIZE ARCHIVE STATUS >&2
: > "$out/sizes.tsv.new"
for name in "${names[@]}"; do
  ti=$(date +%s.%N)
  stage "$name"
  hash=$(context_hash "$name")
  ref=$PREFIX/$name:$TAG
  stamp=$out/$name.stamp
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ] && [ -f "$out/$name.tar" ] \
     && podman_ image exists "$ref"; then
    status="up to date"
  else
    if ! podman_ build --quiet --network none --layers=false \
        -f "images/$name/Containerfile" -t "$ref" "$out/context/$name" \
        > "$out/$name.build.log" 2>&1; then
      cat "$out/$name.build.log" >&2
      say "building $ref failed"
      exit 1
    fi
    rm -f "$out/$name.tar"
    podman_ save --quiet --format oci-archive -o "$out/$name.tar" "$ref" >/dev/null
    echo "$hash" > "$stamp"
    status="built in $(elapsed "$ti")"
  fi
  size=$(podman_ image inspect --format '{{.Size}}' "$ref")
  archive=$(stat -c %s "$out/$name.tar")
  printf '%s\t%s\t%s\t%s\n' "$name" "$ref" "$size" "$archive" >> "$out/sizes.tsv.new"
  printf '%-18s %10s %10s  %s\n' "$name" "$(human "$size")" "$(human "$archive")" "$status" >&2
done
mv "$out/sizes.tsv.new" "$out/sizes.tsv"
# Dangling layers of replaced images.
podman_ image prune -f >/dev/null 2>&1 || true
say "done in $(elapsed "$t0"): ${#names[@]} image(s) tagged $PREFIX/<name>:$TAG, archives in $out/"
