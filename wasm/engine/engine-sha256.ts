// Written by wasm/engine/build.ts (`npm run build:engine`) with the .wasm files beside it; do not edit.
// The sha256 of each engine build this version's scripts run: a copy of a .wasm, kept in the
// browser's Cache API or served by the network, is compiled only when it has this hash
// (browser.ts, engine-cache.ts), so a page never runs another deploy's engine with its scripts.
export const engineSha256 = {
  'engine.wasm': 'daafb1f80d26b27599505f4564f2c5ac0e960caa05f593d496ba306eab1e7c4a',
  'engine-threads.wasm': 'c765b7709be9136f840c366a76efa32016b15369190ce32433abb7749749fbcc',
  'engine-relaxed.wasm': 'd67e2b87b13ff1dc59f257ae5f4a56104556a6844408e49c7999b0cd9ba0a400',
  'engine-threads-relaxed.wasm': '9e2bd1205117a5fe4cff4fa5d8f8c9ad6e71882b55c9410b1fe3fe836963300d',
} as const

/** An engine build, by its file name. */
export type EngineBuild = keyof typeof engineSha256
