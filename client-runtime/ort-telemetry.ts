// ONNX Runtime's native library (onnxruntime-node) starts a usage-telemetry uploader with its first
// session: about ten seconds later it resolves and posts to a Microsoft collector. It reads one
// switch, the ORT_DISABLE_TELEMETRY environment variable, from the process environment (there is
// no JavaScript API). ondevice promises no connection the user did not configure, so every path
// that loads onnxruntime-node sets it first. Node's process.env setter writes the real C
// environment, so the native library sees it. A user who wants ORT's telemetry sets
// ORT_DISABLE_TELEMETRY=0 explicitly; that choice is kept.
//
// onnxruntime-web (WASM, WebGPU) has no telemetry; docs/runtime.md lists the switches of every
// tool we run (wrangler's metrics, transformers.js's remote models in the benchmarks).

interface ProcessLike {
  readonly env: Record<string, string | undefined>
}

/** Turns ONNX Runtime's native telemetry off unless the user set ORT_DISABLE_TELEMETRY. Node only. */
export function disableOrtTelemetry(): void {
  const nodeProcess = (globalThis as { process?: ProcessLike }).process
  if (nodeProcess === undefined) return
  if (nodeProcess.env['ORT_DISABLE_TELEMETRY'] === undefined) nodeProcess.env['ORT_DISABLE_TELEMETRY'] = '1'
}
