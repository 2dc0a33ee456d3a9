#!/usr/bin/env bash
# `make image`: build the CPU image (docker/Dockerfile.cpu), run the smoke pipeline inside it, and fail
# unless every stage left a finished artefact (scripts/check_artefacts.py).
#
# With a running Docker engine (`docker info` works) it uses docker. Otherwise podman/buildah without a
# daemon: vfs storage and chroot isolation (no overlayfs or user namespaces needed), and a Debian bookworm
# base made with debootstrap where no registry can be reached. pip inside such a build sees the host's pip
# configuration, local wheel dirs and indexes, CA bundle and pip cache (bind mounts, not copied into the image),
# so a machine that installs from a local mirror or behind a TLS-inspecting proxy builds the same way, and the
# MinkowskiEngine wheel pip already built is reused instead of compiled again (~10 min).
#
# Environment: IMAGE (tag, default pix2point:cpu), BASE_IMAGE (a bookworm image; default the registry's
# debian:bookworm-slim, else the debootstrap one), TORCH_INDEX_URL (default: the CPU wheel index if reachable,
# else pip's configuration), CONTAINERS_ROOT (podman/buildah storage, default /var/tmp/pix2point-containers),
# SMOKE_ARTEFACTS (host folder for the smoke run's artefacts, default a new temporary one).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGE=${IMAGE:-pix2point:cpu}
REGISTRY_BASE=docker.io/library/debian:bookworm-slim
DEBOOTSTRAP_BASE=localhost/pix2point-base:bookworm
STORAGE=(--root "${CONTAINERS_ROOT:-/var/tmp/pix2point-containers}" --storage-driver vfs)
# The path docker/compose.yaml mounts the shared volume at, so the smoke run writes where a cluster would.
ARTEFACTS_IN_IMAGE=/shared/pix2point/artefacts
BUILD_MOUNTS=/run/pix2point-build
CPU_TORCH_INDEX=https://download.pytorch.org/whl/cpu

log() { printf '[image] %s\n' "$*"; }
fail() { printf '[image] error: %s\n' "$*" >&2; exit 1; }

torch_index() {
  if [ -n "${TORCH_INDEX_URL+set}" ]; then printf '%s' "$TORCH_INDEX_URL"; return; fi
  if curl -fsS -o /dev/null --max-time 15 "$CPU_TORCH_INDEX/torch/" 2>/dev/null; then printf '%s' "$CPU_TORCH_INDEX"; fi
}

# --- Docker engine ------------------------------------------------------------------------------------

build_with_docker() {
  docker build -f "$ROOT/docker/Dockerfile.cpu" -t "$IMAGE" \
    --build-arg BASE_IMAGE="${BASE_IMAGE:-debian:bookworm-slim}" --build-arg TORCH_INDEX_URL="$(torch_index)" "$ROOT"
}

in_image_docker() {  # in_image_docker ARTEFACTS_DIR COMMAND...
  local artefacts=$1; shift
  docker run --rm --shm-size=2g -e RAY_AUTH_MODE=disabled -v "$artefacts:$ARTEFACTS_IN_IMAGE" "$IMAGE" "$@"
}

image_size_docker() { docker image inspect -f '{{.Size}}' "$IMAGE" | numfmt --to=iec; }

# --- podman/buildah, no daemon ------------------------------------------------------------------------

bah() { buildah "${STORAGE[@]}" "$@"; }
pod() { podman "${STORAGE[@]}" --cgroup-manager cgroupfs --events-backend file "$@"; }

have_image() { bah inspect --type image "$1" >/dev/null 2>&1; }

debootstrap_base() {
  local rootfs
  rootfs=$(mktemp -d /var/tmp/pix2point-rootfs.XXXXXX)
  log "no base image reachable: debootstrap --variant=minbase bookworm (a few minutes)"
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$rootfs.log" 2>&1 \
    || { tail -20 "$rootfs.log" >&2; fail "debootstrap failed (log: $rootfs.log)"; }
  # As in the official image: updates and security suites too, and no package cache or lists in the layer.
  cat >"$rootfs/etc/apt/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | pod import --message "debootstrap --variant=minbase bookworm" - "$DEBOOTSTRAP_BASE" >/dev/null
  rm -rf "$rootfs" "$rootfs.log"
}

base_image() {
  if [ -n "${BASE_IMAGE:-}" ]; then printf '%s' "$BASE_IMAGE"; return; fi
  if have_image "$REGISTRY_BASE" || timeout 90 bah pull -q "$REGISTRY_BASE" >/dev/null 2>&1; then
    printf '%s' "$REGISTRY_BASE"; return
  fi
  have_image "$DEBOOTSTRAP_BASE" || debootstrap_base >&2
  printf '%s' "$DEBOOTSTRAP_BASE"
}

# The host's pip set-up, read-only at the same paths: its config files (the user's at root's place) and what
# they name by absolute path (wheel dirs, file:// indexes, constraint files). The CA bundle goes to a side path
# handed to pip as PIP_CERT: the image's own /etc/ssl/certs/ca-certificates.crt belongs to its ca-certificates.
pip_mounts() {
  local config path
  {
    for config in /etc/xdg/pip/pip.conf /etc/pip.conf; do [ -f "$config" ] && mount_ro "$config" "$config"; done
    [ -f "$HOME/.config/pip/pip.conf" ] && mount_ro "$HOME/.config/pip/pip.conf" /root/.config/pip/pip.conf
    for path in $(pip_config 'find-links\|constraint'); do
      [[ $path == /* && -e $path ]] && mount_ro "$path" "$path"
    done
    # A file:// index's pages link to files beside it (../../files/...), so its parent goes in.
    for path in $(pip_config 'extra-index-url\|index-url'); do
      path=${path#file://}
      [[ $path == /* && -d $path ]] && mount_ro "$(dirname "$path")" "$(dirname "$path")"
    done
    [ -f "$(host_ca)" ] && mount_ro "$(host_ca)" "$BUILD_MOUNTS/ca.crt"
  } | sort -u
  # A cache, so writable: pip ignores a cache it cannot write to.
  mkdir -p "$HOME/.cache/pip"
  printf -- '--volume=%s:/root/.cache/pip\n' "$HOME/.cache/pip"
}

mount_ro() { printf -- '--volume=%s:%s:ro\n' "$1" "$2"; }

pip_config() {  # the values of the pip settings matching a sed pattern, over all config files and PIP_* vars
  command -v python3 >/dev/null || return 0
  python3 -m pip config list 2>/dev/null | sed -n "s/^[^=]*\.\($1\)='\(.*\)'$/\2/p" | tr ' ' '\n'
}

host_ca() { printf '%s' "${PIP_CERT:-$(pip_config cert | head -1)}"; }

build_with_buildah() {
  local base mounts
  base=$(base_image)
  log "base image: $base"
  mapfile -t mounts < <(pip_mounts)
  log "host pip set-up mounted into the build: ${mounts[*]#--volume=}"
  local cert_arg=()
  [ -f "$(host_ca)" ] && cert_arg=(--build-arg "PIP_CERT=$BUILD_MOUNTS/ca.crt")
  # No --layers: on vfs every cached layer is a full copy of the file system. Docker format keeps SHELL.
  # The bind mounts leave empty mount points (/etc/pip.conf, /opt/wheels, ...) in the image; pip reads an
  # empty config as no config.
  bah build --isolation chroot --layers=false --format docker -f "$ROOT/docker/Dockerfile.cpu" -t "$IMAGE" \
    --build-arg BASE_IMAGE="$base" --build-arg TORCH_INDEX_URL="$(torch_index)" "${cert_arg[@]}" \
    "${mounts[@]}" "$ROOT"
  # The image this tag named before is now untagged: drop it (a full copy on vfs).
  bah rmi --prune >/dev/null || true
}

in_image_buildah() {  # in_image_buildah ARTEFACTS_DIR COMMAND...
  local artefacts=$1 container status=0; shift
  container=$(bah from --pull-never "$IMAGE")
  bah run --isolation chroot --env RAY_AUTH_MODE=disabled --volume "$artefacts:$ARTEFACTS_IN_IMAGE" "$container" -- "$@" || status=$?
  bah rm "$container" >/dev/null
  return "$status"
}

image_size_buildah() { bah images --format '{{.Size}}' "$IMAGE"; }

# ------------------------------------------------------------------------------------------------------

main() {
  local engine artefacts started=$SECONDS
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker
  elif command -v buildah >/dev/null && command -v podman >/dev/null; then engine=buildah
  else fail "neither a running Docker engine nor podman+buildah (apt-get install podman buildah debootstrap)"
  fi
  log "building $IMAGE from docker/Dockerfile.cpu with $engine"
  "build_with_$engine"
  artefacts=${SMOKE_ARTEFACTS:-$(mktemp -d /var/tmp/pix2point-smoke.XXXXXX)}
  mkdir -p "$artefacts"
  log "smoke run inside $IMAGE; artefacts: $artefacts (at $ARTEFACTS_IN_IMAGE in the image)"
  "in_image_$engine" "$artefacts" pix2point run --profile smoke --artefacts "$ARTEFACTS_IN_IMAGE"
  "in_image_$engine" "$artefacts" python scripts/check_artefacts.py "$ARTEFACTS_IN_IMAGE"
  # A failed run keeps its artefacts for a look; a passed one keeps them only where SMOKE_ARTEFACTS asked.
  [ -n "${SMOKE_ARTEFACTS:-}" ] || rm -rf "$artefacts"
  log "$IMAGE built and checked in $((SECONDS - started)) s; size $("image_size_$engine")"
}

main "$@"
