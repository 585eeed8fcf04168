// Written by wasm/engine/build.ts (`npm run build:engine`) with the .wasm files beside it; do not edit.
// The sha256 of each engine build this version's scripts run: a copy of a .wasm, kept in the
// browser's Cache API or served by the network, is compiled only when it has this hash
// (browser.ts, engine-cache.ts), so a page never runs another deploy's engine with its scripts.
export const engineSha256 = {
  'engine.wasm': 'daafb1f80d26b27599505f4564f2c5ac0e960caa05f593d496ba306eab1e7c4a',
  'engine-threads.wasm': 'c765b7709be9136f840c366a76efa32016b15369190ce32433abb7749749fbcc',
  'engine-relaxed.wasm': 'd19bf215ecb27cf2bd20247cf4a86e5db467fe0c2d5373ff3d864702aecbce8e',
  'engine-threads-relaxed.wasm': 'ea9ba7e7aba0b66f56735fabed561c2015122ca63625deca275213f0dbb473de',
} as const

/** An engine build, by its file name. */
export type EngineBuild = keyof typeof engineSha256
