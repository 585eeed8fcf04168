#!/usr/bin/env bash
# For wrangler's WRANGLER_DOCKER_BIN on a Docker without buildx (Debian's docker.io): wrangler
# builds container images with `docker build --load --provenance=false ...`, flags only BuildKit
# knows. This drops those two and runs the rest as is; every other command passes through.
set -euo pipefail
docker=${ONDEVICE_REAL_DOCKER:-$(command -v docker)}
if [ "${1:-}" = build ]; then
  args=()
  for argument in "$@"; do
    case "$argument" in --load | --provenance=*) ;; *) args+=("$argument") ;; esac
  done
  exec "$docker" "${args[@]}"
fi
exec "$docker" "$@"
