// The demo is a plain Vite app (no framework). `npm start` builds it with this config through
// demo/build.ts; `npx vite demo` also works for editing the page (the model and the edge worker
// then come from `npm start`'s servers, named in the page's settings).
import { fileURLToPath } from 'node:url'
import { defaultClientConditions, defineConfig } from 'vite'
import { ondevice } from '../sdk/vite/index.ts'
import { isolationHeaders } from './static-server.ts'

const demoDirectory = fileURLToPath(new URL('.', import.meta.url))

export default defineConfig({
  root: demoDirectory,
  base: './',
  // Relative asset URLs and no public folder: the page works from any path it is served under.
  publicDir: false,
  resolve: {
    // The page imports the package by its public name, like an app that installed it.
    alias: { ondevice: fileURLToPath(new URL('../sdk/index.ts', import.meta.url)) },
    // The package's own imports ('#node-device-host') resolve to the sources (package.json).
    conditions: ['ondevice-source', ...defaultClientConditions],
  },
  // The recipe every app uses (docs/sdk.md, "A web page"): ORT's runtime files under /ort/ in
  // the build, only those a device loads; the module Web Worker; no pre-bundled onnxruntime-web.
  plugins: [ondevice()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // ORT's bundle is large by nature; the warning says nothing useful here.
    chunkSizeWarningLimit: 30_000,
    reportCompressedSize: false,
  },
  server: { host: '127.0.0.1', headers: { ...isolationHeaders } },
  preview: { host: '127.0.0.1', headers: { ...isolationHeaders } },
})
