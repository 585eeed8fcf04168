#!/usr/bin/env bash
# Builds a Node base image without any image registry: Debian (debootstrap --variant=minbase, from
# the Debian mirror this machine's apt already uses) + the Node binary of the npm `node` package
# (node_modules/node, a devDependency) + npm from the npm `npm` package. For machines that reach
# Debian and npm but no Docker registry (CI here); users build FROM a public Node image instead.
#
#   bash tools/docker/base-image.sh [TAG]        (default ondevice-node-base:local)
#
# The image is labelled with a hash of this script and of the Node/npm versions: a second run with
# the same inputs keeps it (about 30-60 s the first time). Needs root (debootstrap) and dockerd.
set -euo pipefail
cd "$(dirname "$0")/../.."
tag="${1:-ondevice-node-base:local}"
node_bin=node_modules/node/bin/node
npm_version=10.9.2

fail() { echo "base-image: $*" >&2; exit 1; }
# debootstrap and the root file system it writes need root: run as root (or passwordless sudo).
if [ "$(id -u)" != 0 ]; then
  exec sudo -n env "PATH=$PATH" bash "$0" "$@" || fail "needs root or passwordless sudo (debootstrap)."
fi
[ -x "$node_bin" ] || fail "no $node_bin: run npm install first (the npm \`node\` devDependency provides it)."
command -v debootstrap >/dev/null || fail "debootstrap is missing: run bash scripts/setup-system.sh (or apt-get install debootstrap)."
docker info >/dev/null 2>&1 || fail "dockerd is not reachable: run bash scripts/setup-system.sh (it starts dockerd --ip=127.0.0.1)."

node_version=$("$node_bin" --version)
inputs_hash=$( (cat "$0"; echo "$node_version $npm_version") | sha256sum | cut -c1-16)
if [ "$(docker image inspect -f '{{ index .Config.Labels "ondevice.base-inputs" }}' "$tag" 2>/dev/null)" = "$inputs_hash" ]; then
  echo "base-image: $tag is up to date ($node_version)"
  exit 0
fi

# The mirror apt uses here (deb822 sources or a one-line sources.list), else Debian's own.
mirror=$(grep -hoE '^URIs: *[^ ]+' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1 | sed 's/^URIs: *//' || true)
[ -n "$mirror" ] || mirror=$(grep -hoE '^deb +[^ ]+' /etc/apt/sources.list 2>/dev/null | grep -v security | head -1 | awk '{print $2}' || true)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

work=$(mktemp -d /tmp/ondevice-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
echo "base-image: debootstrap bookworm from $mirror"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap failed (log above)."; }

# Slim: no package lists, docs, man pages or locales (apt still works after `apt-get update`).
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/usr/share/doc/* \
  "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} + 2>/dev/null || true

# Node, and npm from its npm package (the image's Dockerfile runs npm ci).
install -m 0755 "$node_bin" "$root/usr/local/bin/node"
(cd "$work" && npm pack --silent "npm@$npm_version" >/dev/null)
mkdir -p "$root/usr/local/lib/node_modules/npm"
tar -xzf "$work/npm-$npm_version.tgz" -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"

# The certificate authorities this machine trusts (its proxy's, where it has one), for npm in the
# image's build: it then reaches the registry the way the host does. Node at run time needs none.
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  mkdir -p "$root/etc/ssl/certs" "$root/usr/local/etc"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  echo 'cafile=/etc/ssl/certs/ca-certificates.crt' >"$root/usr/local/etc/npmrc"
fi

# The unprivileged user the official Node images have (uid 1000), which the Dockerfile runs as.
echo 'node:x:1000:1000::/home/node:/bin/sh' >>"$root/etc/passwd"
echo 'node:x:1000:' >>"$root/etc/group"
echo 'node:*:20000:0:99999:7:::' >>"$root/etc/shadow"
mkdir -p "$root/home/node" && chown 1000:1000 "$root/home/node"

tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=${node_version#v}" \
  --change "LABEL ondevice.base-inputs=$inputs_hash" \
  --change 'CMD ["node"]' - "$tag" >/dev/null
echo "base-image: built $tag ($node_version, npm $npm_version): $(docker image inspect -f '{{ .Size }}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
