// The runtime host for this platform (detectPlatform): Node's (cache folder, onnxruntime-node)
// or the browser's (OPFS / Cache API, onnxruntime-web), for pages and workers alike.
import type { RuntimeHost } from './load-model.ts'
import { detectPlatform } from './platform.ts'

let host: Promise<RuntimeHost> | undefined

/**
 * The host for this environment. The Node host comes through '#runtime-node' (package.json
 * "imports": node-platform.ts under the 'node' condition only), so browser bundles never contain it.
 */
export function defaultHost(): Promise<RuntimeHost> {
  host ??=
    detectPlatform() === 'node'
      ? import('#runtime-node').then((module) => module.nodeHost)
      : import('./browser-host.ts').then((module) => module.browserHost)
  return host
}
