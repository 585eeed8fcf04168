# The ondevice edge app on Node (`ondevice serve`): the same OpenAI-compatible API as the
# Cloudflare Worker, for packages larger than a Worker isolate (128 MB). The Worker forwards to it
# as a Cloudflare Container (wrangler.toml [[containers]], docs/worker.md), or run it on any box:
#
#   docker build -t ondevice-edge .
#   docker run -p 127.0.0.1:8787:8787 -e API_KEYS=$(openssl rand -hex 32) -v /path/to/package:/model:ro ondevice-edge
#
# The package folder is mounted at /model (or pass `--model https://.../` for a URL prefix, kept in
# /home/node/.cache/ondevice). Settings: the environment variables in docs/worker.md; the engine is
# MODEL_BACKEND: native (onnxruntime-node, the default), wasm (ondevice's WebAssembly engine, which
# continues handoffs from devices on it bit-exactly) or a list, the default first ("native,wasm").
#
# BASE: any image with Node >= 22.18 (23.6 on Node 23) and npm at /usr/local/bin and a `node` user (uid 1000), as
# the official Node images have. Machines without a registry build one from Debian packages with
# `bash tools/docker/base-image.sh` and pass `--build-arg BASE=ondevice-node-base:local`.
ARG BASE=node:24-bookworm-slim

# --- dependencies: production node_modules from package-lock.json, nothing else ---------------
FROM ${BASE} AS dependencies
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc ./
# The image runs the TypeScript sources on Node's type stripping, with the lock file's exact
# production dependencies. onnxruntime-node (the native CPU engine `serve` runs by default) is an
# optional peer of the package, so `npm ci --omit=dev` leaves it out: it is installed at the lock
# file's version in a folder of its own (an `npm install` in /app would bring back every
# devDependency) and merged in without replacing what is there. Install scripts are skipped:
# onnxruntime-node's only downloads binaries its package already holds. Then what this image
# never loads goes: onnxruntime-node's
# binaries for other systems and CPUs, onnxruntime-web's browser flavours (WebGPU/JSEP, JSPI,
# asyncify, WebGL: Node's WASM backend loads ort.node and the plain SIMD wasm), source maps.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && if [ ! -d node_modules/onnxruntime-node ]; then \
      version=$(node -p "require('./package-lock.json').packages['node_modules/onnxruntime-node'].version") \
      && mkdir /tmp/onnxruntime-node && cd /tmp/onnxruntime-node && echo '{"private":true}' > package.json \
      && npm install --ignore-scripts --no-audit --no-fund --omit=dev "onnxruntime-node@$version" \
      && cd /app && cp -Rn /tmp/onnxruntime-node/node_modules/. node_modules/; \
    fi \
 && arch=$(node -p process.arch) \
 && find node_modules/onnxruntime-node/bin -mindepth 2 -maxdepth 2 -type d ! -path "*/linux" -exec rm -rf {} + \
 && find node_modules/onnxruntime-node/bin -mindepth 3 -maxdepth 3 -type d ! -name "$arch" -exec rm -rf {} + \
 && (cd node_modules/onnxruntime-web/dist \
     && rm -f ./*.jsep.* ./*.jspi.* ./*.asyncify.* ort.all.* ort.all.bundle.* ort.webgl.* ort.jspi.* ort.webgpu.* ort.bundle.min.mjs) \
 && find node_modules -name '*.map' -type f -delete \
 && rm -rf /root/.npm /tmp/*

# --- the image ----------------------------------------------------------------------------------
FROM ${BASE}
WORKDIR /app
# ORT_DISABLE_TELEMETRY: the code sets it too (client-runtime/ort-telemetry.ts); kept here so any
# other process in the image is covered. No connection leaves this image unless configured.
ENV NODE_ENV=production \
    ORT_DISABLE_TELEMETRY=1

COPY --from=dependencies /app/node_modules ./node_modules
COPY package.json ./
COPY core ./core
COPY wasm ./wasm
COPY client-runtime ./client-runtime
COPY worker ./worker
COPY builder ./builder
COPY cli ./cli

USER node
EXPOSE 8787
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
  CMD node -e "fetch('http://127.0.0.1:8787/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"

# Node >= 22.18 runs the TypeScript sources directly (type stripping, on by default): no build step.
# The whole command is CMD, with no ENTRYPOINT: the Container class (worker/container/) replaces
# it with its own `entrypoint` (to point --model at R2 or a URL), and workerd hands that array to
# Docker as the command, which an ENTRYPOINT would have prefixed (`serve ... node cli/bin.js serve`).
# `docker run IMAGE node cli/bin.js serve ... --model DIR` runs another command line.
CMD ["node", "cli/bin.js", "serve", "--host", "0.0.0.0", "--port", "8787", "--model", "/model"]
