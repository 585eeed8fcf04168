#!/usr/bin/env bash
# Installs and starts the system parts `npm test` needs that npm cannot provide, on Debian or
# Ubuntu: Chromium (browser end-to-end tests, driven by playwright-core), Firefox ESR and WebKitGTK's
# WebDriver with Xvfb (test/browser/other-browsers.test.ts: firefox-esr, webkit2gtk-driver, xvfb;
# WebKitGTK has no headless mode, so it draws on Xvfb), strace (the network
# privacy test), clang-16 + lld-16 (the engine's compiler: the check that wasm/engine/*.wasm rebuild
# from their sources), qemu-user with the arm64 C/C++ runtime (libc6-arm64-cross,
# libstdc++6-arm64-cross: wasm/engine/cross-arch.test.ts runs an arm64 Node under emulation),
# and Docker (docker.io; dockerd is started with published ports on 127.0.0.1) with debootstrap
# (the container tests' registry-free base image). Safe to run again:
# what is already there is kept. Needs root (or passwordless sudo). CI (.ci/run) runs this script.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}

packages=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium-browser ] || packages+=(chromium)
# Firefox and WebKit: the engine's plain SIMD build and the SDK in the other two browser engines.
command -v firefox-esr >/dev/null 2>&1 || command -v firefox >/dev/null 2>&1 || packages+=(firefox-esr)
command -v WebKitWebDriver >/dev/null 2>&1 || packages+=(webkit2gtk-driver)
command -v Xvfb >/dev/null 2>&1 || packages+=(xvfb)
command -v strace >/dev/null 2>&1 || packages+=(strace)
command -v clang-16 >/dev/null 2>&1 || packages+=(clang-16)
command -v wasm-ld-16 >/dev/null 2>&1 || packages+=(lld-16)
# An arm64 Node (from the npm registry) under qemu-user: the engine's cross-architecture check.
command -v qemu-aarch64 >/dev/null 2>&1 || packages+=(qemu-user)
[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || packages+=(libc6-arm64-cross)
[ -e /usr/aarch64-linux-gnu/lib/libstdc++.so.6 ] || packages+=(libstdc++6-arm64-cross)
command -v dockerd >/dev/null 2>&1 || packages+=(docker.io)
# The container tests build their Node base image from Debian packages (tools/docker/base-image.sh).
command -v debootstrap >/dev/null 2>&1 || packages+=(debootstrap)

if [ ${#packages[@]} -gt 0 ]; then
  echo "setup-system: installing ${packages[*]}"
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

# dockerd: started once, listening on its Unix socket only; containers' published ports bind
# 127.0.0.1 by default (--ip), so nothing a test starts is reachable from outside. --bip names the
# default bridge's gateway: a first start on a machine without docker0 otherwise leaves the bridge
# network's IPAM config with a subnet and no Gateway, and workerd (wrangler dev's containers) binds
# its egress listener to that gateway, failing every container start with `getaddrinfo(): DNS lookup
# failed. host = ;`.
if ! docker info >/dev/null 2>&1; then
  echo "setup-system: starting dockerd"
  as_root sh -c 'nohup dockerd --ip=127.0.0.1 --bip=172.17.0.1/16 >/var/log/ondevice-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  # Not fatal here: only the container tests need it, and they fail saying how to fix it.
  docker info >/dev/null 2>&1 || echo "setup-system: warning: dockerd did not start; see /var/log/ondevice-dockerd.log" >&2
fi
# A dockerd started elsewhere (or before this flag) may still lack the gateway: say so, with the fix.
gateway=$(docker network inspect bridge --format '{{range .IPAM.Config}}{{.Gateway}}{{end}}' 2>/dev/null || true)
if docker info >/dev/null 2>&1 && [ -z "$gateway" ]; then
  echo "setup-system: warning: Docker's bridge network has no gateway in its IPAM config; wrangler dev's containers cannot start. Restart dockerd with --bip=172.17.0.1/16 (or \"bip\" in /etc/docker/daemon.json)." >&2
fi
echo "setup-system: done"
