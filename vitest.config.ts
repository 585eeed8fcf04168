import { defaultClientConditions, defaultServerConditions } from 'vite'
import { defineConfig } from 'vitest/config'

// One config for the whole suite. Unit tests sit next to the code (x.test.ts); what crosses
// folders lives in test/. Servers that tests need (wrangler dev, ondevice serve, a static server
// for Chromium) are started by the tests themselves on 127.0.0.1 and stopped by PID.
// The repository runs its own package ("ondevice", "#node-device-host") from the TypeScript
// sources: package.json's 'ondevice-source' condition, here for the test files and, through
// NODE_OPTIONS, for the Node processes tests start. Users get dist/ (the other conditions).
const sourceCondition = 'ondevice-source'

export default defineConfig({
  resolve: { conditions: [sourceCondition, ...defaultClientConditions] },
  ssr: { resolve: { conditions: [sourceCondition, ...defaultServerConditions] } },
  test: {
    include: ['**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**', '**/.wrangler/**'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // Two cores in CI: model tests are CPU-bound, so more parallel files only thrash.
    maxWorkers: 2,
    // Test files that import onnxruntime-node directly (builder parity, benchmarks' engines) bypass
    // the runtime's own switch (client-runtime/ort-telemetry.ts). test/privacy removes this again
    // for the processes it traces, so the product's own switch is what it checks.
    env: {
      ORT_DISABLE_TELEMETRY: '1',
      NODE_OPTIONS: [process.env.NODE_OPTIONS, `--conditions=${sourceCondition}`].filter(Boolean).join(' '),
    },
  },
})
