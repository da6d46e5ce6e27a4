#!/usr/bin/env bash
# Stand-ins for the official base images, for machines that reach no image registry.
#
# The deployment (Dockerfile, docker-compose.yml) names python:3.11-slim-bookworm, redis:7 and
# postgres:16. Where they cannot be pulled, this script builds images under those names from a
# debootstrapped Debian bookworm (rootfs.sh), honouring the interface the deployment relies on:
#
#   python:3.11-slim-bookworm  Debian's Python 3.11; `python`, `python3`, `pip` in /usr/local/bin
#                              as in the official image; `python -m venv` works; CMD python3.
#                              It trusts the host's CA certificates (see below).
#   redis:7                    Debian's redis-server 7.0: `redis-server`, `redis-cli`, WORKDIR
#                              /data, runs as user redis, protected mode off when started with
#                              command-line options only (as the official entrypoint does).
#   postgres:16                NOT PostgreSQL 16: Debian bookworm has only PostgreSQL 15. It keeps
#                              the official entrypoint's contract: POSTGRES_USER, POSTGRES_PASSWORD,
#                              POSTGRES_DB, initdb on an empty PGDATA (/var/lib/postgresql/data),
#                              trust on the local socket, scram-sha-256 passwords over TCP,
#                              `pg_isready` and the server binaries on PATH.
#
# An image is built only when its name is absent (a real official image is never replaced) or is
# a stand-in of another recipe. Images carry the label org.framefleet.standin=<key>, a hash of the
# recipe (rootfs.sh, the stand-in's directory and, for python, the host's CA certificates), so a
# second run builds nothing. The root file system is cached as a tarball under
# $FRAMEFLEET_STANDIN_CACHE (default /var/cache/framefleet-standins), keyed by rootfs.sh.
#
# Outbound HTTPS on these machines is re-signed by a local CA. The python stand-in gets the host's
# local CA certificates (/usr/local/share/ca-certificates) in its build context, adds them to
# Debian's store with update-ca-certificates and points pip and Python's ssl module at that store,
# as the official image trusts the public CAs. The project's own Dockerfile never sees them.
#
# Usage (root, Docker engine running): tests/deploy/standins/build.sh [--force]
# Needs: docker (Debian's 20.10 client is preferred), debootstrap, tar, and http://deb.debian.org
# (or $FRAMEFLEET_DEBIAN_MIRROR). Prints one line per image on stderr.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
CACHE="${FRAMEFLEET_STANDIN_CACHE:-/var/cache/framefleet-standins}"
MIRROR="${FRAMEFLEET_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
LABEL=org.framefleet.standin
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

# Debian's client speaks the engine's API; a newer client elsewhere on PATH may not.
if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
export DOCKER_API_VERSION="${DOCKER_API_VERSION:-1.41}" DOCKER_BUILDKIT=0

log() { printf 'standins: %s\n' "$*" >&2; }
die() { printf 'standins: error: %s\n' "$*" >&2; exit 1; }

TEMP=()
cleanup() { [ ${#TEMP[@]} -eq 0 ] || rm -rf "${TEMP[@]}"; }
trap cleanup EXIT

key_of() { (cd "$HERE" && sha256sum "$@") | sha256sum | cut -c1-16; }

BASE_KEY="$(key_of rootfs.sh)"
BASE_IMAGE="framefleet-standin-base:bookworm-$BASE_KEY"

# needs_build IMAGE KEY: succeeds when IMAGE must be (re)built.
needs_build() {
  local found
  "$DOCKER" image inspect "$1" >/dev/null 2>&1 || return 0
  found="$("$DOCKER" image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$1")"
  if [ -z "$found" ] || [ "$found" = "<no value>" ]; then
    log "$1: present and not a stand-in (an official image), kept"
    return 1
  fi
  if [ "$FORCE" = 1 ] || [ "$found" != "$2" ]; then return 0; fi
  log "$1: stand-in $found is up to date"
  return 1
}

ensure_base() {
  if [ "$FORCE" = 0 ] && "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then return; fi
  local tarball="$CACHE/bookworm-minbase-$BASE_KEY.tar"
  if [ "$FORCE" = 1 ] || [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
    [ "$(id -u)" = 0 ] || die "debootstrap needs root; run this script as root"
    mkdir -p "$CACHE"
    log "debootstrap --variant=minbase bookworm from $MIRROR (about 90 s) ..."
    local t0=$SECONDS
    "$HERE/rootfs.sh" "$tarball" "$MIRROR" || die "could not make the root file system"
    log "root file system in $((SECONDS - t0)) s: $tarball"
    # Tarballs of older recipes are dead weight.
    find "$CACHE" -maxdepth 1 -name 'bookworm-minbase-*.tar' ! -name "${tarball##*/}" -delete
  else
    log "root file system from the cache: $tarball"
  fi
  "$DOCKER" import --change 'ENV LANG=C.UTF-8' --change 'CMD ["bash"]' "$tarball" "$BASE_IMAGE" \
    >/dev/null
  log "imported $BASE_IMAGE"
  # Bases of older recipes (kept while a stand-in still uses them).
  "$DOCKER" image ls --format '{{.Repository}}:{{.Tag}}' framefleet-standin-base \
    | grep -vxF "$BASE_IMAGE" | xargs -r "$DOCKER" rmi >/dev/null 2>&1 || true
}

# build IMAGE DIR KEY [EXTRA_CONTEXT...]: build DIR's Dockerfile as IMAGE unless up to date.
build() {
  local image="$1" dir="$2" key="$3"
  shift 3
  needs_build "$image" "$key" || return 0
  ensure_base
  local context output old t0=$SECONDS
  old="$("$DOCKER" image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
  context="$(mktemp -d)"
  TEMP+=("$context")
  cp -r "$HERE/$dir/." "$context/"
  for extra in "$@"; do cp -r "$extra" "$context/"; done
  log "building $image (stand-in $key) ..."
  if ! output="$("$DOCKER" build --build-arg "BASE=$BASE_IMAGE" --label "$LABEL=$key" \
      -t "$image" "$context" 2>&1)"; then
    die "building $image failed; the build's last lines:
$(printf '%s\n' "$output" | tail -n 30)"
  fi
  log "built $image in $((SECONDS - t0)) s"
  # The stand-in it replaced, unless something still uses it.
  if [ -n "$old" ]; then "$DOCKER" rmi "$old" >/dev/null 2>&1 || true; fi
}

command -v "$DOCKER" >/dev/null || die "no docker client (apt-get install docker.io)"
"$DOCKER" info >/dev/null 2>&1 \
  || die "no Docker engine answers (as root: dockerd --storage-driver=overlay2 &)"

# The host's locally added CAs, for the python stand-in (part of its key: a new CA rebuilds it).
CA_DIR="$(mktemp -d)"
TEMP+=("$CA_DIR")
mkdir -p "$CA_DIR/host-ca"
if [ -d /usr/local/share/ca-certificates ]; then
  cp -r /usr/local/share/ca-certificates/. "$CA_DIR/host-ca/"
fi
CA_KEY="$( (cd "$CA_DIR" && find host-ca -type f -print0 | sort -z | xargs -0r sha256sum) \
  | sha256sum | cut -c1-8)"

build python:3.11-slim-bookworm python \
  "$BASE_KEY-$(key_of python/Dockerfile)-$CA_KEY" "$CA_DIR/host-ca"
build redis:7 redis "$BASE_KEY-$(key_of redis/Dockerfile redis/docker-entrypoint.sh)"
build postgres:16 postgres \
  "$BASE_KEY-$(key_of postgres/Dockerfile postgres/docker-entrypoint.sh)"
