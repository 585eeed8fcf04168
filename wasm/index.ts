// wasm/: getting ONNX Runtime's WebAssembly binary into each host. Import the host module you
// run on directly (they pull in host-specific code): `wasm/node.ts`, `wasm/browser.ts`,
// `wasm/workerd.ts`. This index only re-exports the shared types.
export type { ConfiguredOrt, OrtWebModule, WasmHost, WasmSetup } from './types.ts'
