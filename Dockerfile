# The ondevice edge app on Node (`ondevice serve`): the same OpenAI-compatible API as the
# Cloudflare Worker, for packages larger than a Worker isolate (128 MB) or a self-hosted box.
#
#   docker build -t ondevice-edge .
#   docker run -p 8787:8787 -e API_KEYS=$(openssl rand -hex 32) -v /path/to/package:/model:ro ondevice-edge
#
# The package folder is mounted at /model (or pass `--model https://.../` for a URL prefix, kept in
# /home/node/.cache/ondevice). Settings: the environment variables in docs/worker.md.
FROM node:24-bookworm-slim

WORKDIR /app
# ORT_DISABLE_TELEMETRY: the code sets it too (client-runtime/ort-telemetry.ts); kept here so any
# other process in the image is covered.
ENV NODE_ENV=production \
    ONNXRUNTIME_NODE_INSTALL=skip \
    ORT_DISABLE_TELEMETRY=1

# onnxruntime-node's CPU binaries ship in its npm package; the install-time download is skipped
# (.npmrc), so the image builds without network access beyond the npm registry.
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev && npm cache clean --force

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

# Node >= 22.12 runs the TypeScript sources directly (type stripping): no build step.
ENTRYPOINT ["node", "cli/bin.js", "serve", "--host", "0.0.0.0", "--port", "8787"]
CMD ["--model", "/model"]
