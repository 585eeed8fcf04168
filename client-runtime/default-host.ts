// The runtime host for this platform (detectPlatform): Node's (cache folder, onnxruntime-node)
// or the browser's (OPFS / Cache API, onnxruntime-web), for pages and workers alike.
import type { RuntimeHost } from './load-model.ts'
import { detectPlatform } from './platform.ts'

let host: Promise<RuntimeHost> | undefined

/** The host for this environment. The Node host is imported by a computed name so browser bundlers never pull it in. */
export function defaultHost(): Promise<RuntimeHost> {
  const nodeHostModule = './node-host.ts'
  host ??=
    detectPlatform() === 'node'
      ? import(/* @vite-ignore */ nodeHostModule).then((module: { nodeHost: RuntimeHost }) => module.nodeHost)
      : import('./browser-host.ts').then((module) => module.browserHost)
  return host
}
