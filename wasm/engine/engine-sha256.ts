// Written by wasm/engine/build.ts (`npm run build:engine`) with the .wasm files beside it; do not edit.
// The sha256 of each engine build this version's scripts run: a copy of a .wasm, kept in the
// browser's Cache API or served by the network, is compiled only when it has this hash
// (browser.ts, engine-cache.ts), so a page never runs another deploy's engine with its scripts.
export const engineSha256 = {
  'engine.wasm': 'f9b5b0ca2d69b73cb80b7573e491d5c73dbf6a2615812f7eb04ab6779191259a',
  'engine-threads.wasm': 'd7ab80350f17988a7bcfd1c6506185cb47e2cbbf1e8ad088af0fb6b53d83d604',
  'engine-relaxed.wasm': '98878dcc80450fcf4369a8546de85cea28e53e9e37906d04bc31e93279b79b5c',
  'engine-threads-relaxed.wasm': '1c47ce29489a665aca7af4979b72cdc3c49fafe59a742621cc6f8dd0eb0a07af',
} as const

/** An engine build, by its file name. */
export type EngineBuild = keyof typeof engineSha256
