import { defineConfig } from 'vitest/config'

// One config for the whole suite. Unit tests sit next to the code (x.test.ts); what crosses
// folders lives in test/. Servers that tests need (wrangler dev, ondevice serve, a static server
// for Chromium) are started by the tests themselves on 127.0.0.1 and stopped by PID.
export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: [
      '**/node_modules/**',
      '**/dist/**',
      '**/.wrangler/**',
      // The fuzz and load batch against `wrangler dev` trips an intermittent fault of wrangler's
      // local proxy (a connection lost after a refused, unread request body: cloudflare/workers-sdk
      // #14641, #15317), so it runs on demand (`npm run test:workerd-reliability`, and in
      // `npm run soak`) rather than in every CI run. The same app's fuzzing and load suites run on
      // Node in CI, and test/workerd covers the app in workerd.
      ...(process.env['ONDEVICE_WORKERD_RELIABILITY'] ? [] : ['test/reliability/workerd.test.ts']),
    ],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // Two cores in CI: model tests are CPU-bound, so more parallel files only thrash.
    maxWorkers: 2,
  },
})
