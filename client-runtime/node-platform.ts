// The runtime's Node-only part, in one module: the Node host (cache folder, onnxruntime-node) and
// what the capability probe reads only in Node. Imported as '#runtime-node' (package.json
// "imports"): this file under the 'node' condition, no-node-platform.ts everywhere else, so
// browser and Worker bundles never contain node:* modules (docs/architecture.md).
export { probeNodeCapabilities } from './node-capabilities.ts'
export { nodeHost } from './node-host.ts'
