#!/usr/bin/env bash
# For wrangler's WRANGLER_DOCKER_BIN on a Docker without buildx (Debian's docker.io): wrangler
# builds container images with `docker build --load --provenance=false ...`, flags only BuildKit
# knows. This drops those two and runs the rest as is. With ONDEVICE_SKIP_LOCAL_PULL=1, `docker pull
# IMAGE` of an image already present locally does nothing: `wrangler dev --enable-containers`
# pulls its sidecar image (MINIFLARE_CONTAINER_EGRESS_IMAGE) on every start, and a machine without
# a registry has it only as a local build. Every other command passes through.
set -euo pipefail
docker=${ONDEVICE_REAL_DOCKER:-$(command -v docker)}
if [ "${1:-}" = build ]; then
  args=()
  for argument in "$@"; do
    case "$argument" in --load | --provenance=*) ;; *) args+=("$argument") ;; esac
  done
  exec "$docker" "${args[@]}"
fi
if [ "${1:-}" = pull ] && [ "${ONDEVICE_SKIP_LOCAL_PULL:-0}" = 1 ] && "$docker" image inspect "${2:-}" >/dev/null 2>&1; then
  exit 0
fi
exec "$docker" "$@"
