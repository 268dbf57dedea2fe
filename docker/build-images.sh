#!/usr/bin/env bash
# Builds the images that the Docker runtime's tests, the failover drill, the generated Compose
# file and `sadomap up --runtime docker` run. No image can be pulled here, so each is built FROM
# scratch from local files: a binary, every shared library `ldd` lists for it, and the dynamic
# loader.
#   sadomap:local            the release `sadomap` binary at /sadomap (entrypoint; assets embedded)
#   sadomap-testchild:local  the supervisor's test child at /testchild (entrypoint)
#   sadomap-redis:local      Debian's redis-server and redis-cli (in PATH, no entrypoint)
# Idempotent and fast: each image is labelled with a hash of its files and rebuilt only when the
# hash changed. Usage: docker/build-images.sh [--no-cargo] [sadomap|testchild|redis ...]
# (--no-cargo: use the binaries already built in $CARGO_TARGET_DIR/release; names: only those
# images, default all).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo=1
if [ "${1:-}" = "--no-cargo" ]; then cargo=0; shift; fi
want=" ${*:-sadomap testchild redis} "
if [ "$cargo" = 1 ]; then
  packages=()
  case "$want" in *" sadomap "*) packages+=(-p sadomap --bin sadomap) ;; esac
  case "$want" in *" testchild "*) packages+=(-p sadomap-supervisor --bin sadomap-supervisor-testchild) ;; esac
  if [ "${#packages[@]}" -gt 0 ]; then cargo build -q --release "${packages[@]}"; fi
fi
redis_server=$(command -v redis-server || true)
if [ -z "$redis_server" ]; then
  echo "build-images: redis-server is not installed; hint: apt-get install redis-server" >&2
  exit 1
fi

contexts=()
trap 'rm -rf "${contexts[@]}"' EXIT

# build_image TAG ENTRYPOINT_JSON SRC:DEST [SRC:DEST ...]  (ENTRYPOINT_JSON may be empty)
build_image() {
  local tag=$1 entrypoint=$2; shift 2
  local ctx; ctx=$(mktemp -d)
  contexts+=("$ctx")
  local root="$ctx/rootfs"
  mkdir -p "$root/data" "$root/tmp" "$root/etc"
  chmod 1777 "$root/tmp"
  # glibc resolves through /etc/hosts and the DNS server Docker writes into /etc/resolv.conf.
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
  local pair src dest lib
  for pair in "$@"; do
    src=${pair%%:*}; dest=${pair#*:}
    mkdir -p "$root$(dirname "$dest")"
    # Debug info is not needed to run; stripping makes the context (and the build) small.
    strip --strip-debug -o "$root$dest" "$src" 2>/dev/null || cp -L "$src" "$root$dest"
    chmod 755 "$root$dest"
    # Every library ldd resolves, and the loader (the line with no "=>").
    for lib in $(ldd "$src" | awk '/=> \// { print $3 } /^[[:space:]]*\// { print $1 }'); do
      if [ ! -e "$root$lib" ]; then
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
      fi
    done
  done
  local hash
  hash=$( (cd "$root" && find . -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum 2>/dev/null; \
           echo "$entrypoint") | sha256sum | cut -c1-16)
  local have
  have=$(docker image inspect --format '{{ index .Config.Labels "sadomap.content" }}' "$tag" 2>/dev/null || true)
  if [ "$have" = "$hash" ]; then
    echo "build-images: $tag is up to date ($hash)"
    return
  fi
  {
    echo "FROM scratch"
    echo "COPY rootfs/ /"
    echo "ENV PATH=/usr/bin:/bin"
    echo "WORKDIR /data"
    echo "LABEL sadomap.content=\"$hash\""
    [ -n "$entrypoint" ] && echo "ENTRYPOINT $entrypoint"
  } >"$ctx/Dockerfile"
  # The classic builder: no BuildKit plugin is installed, and nothing is pulled FROM scratch.
  local out
  if ! out=$(DOCKER_BUILDKIT=0 docker build -q -t "$tag" "$ctx" 2>&1); then
    echo "$out" >&2
    echo "build-images: docker build of $tag failed" >&2
    exit 1
  fi
  echo "build-images: built $tag ($hash, $(du -sh "$root" | cut -f1))"
}

case "$want" in *" sadomap "*)
  build_image sadomap:local '["/sadomap"]' "$target/release/sadomap:/sadomap" ;;
esac
case "$want" in *" testchild "*)
  build_image sadomap-testchild:local '["/testchild"]' \
    "$target/release/sadomap-supervisor-testchild:/testchild" ;;
esac
case "$want" in *" redis "*)
  build_image sadomap-redis:local '' "$(readlink -f "$redis_server"):/usr/bin/redis-server" \
    "$(command -v redis-cli):/usr/bin/redis-cli" ;;
esac
# Old images that lost their tag to a rebuild.
docker image prune -f --filter label=sadomap.content >/dev/null 2>&1 || true
