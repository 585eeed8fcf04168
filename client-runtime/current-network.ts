// The network state read now, over a device's probed figures. A file of its own, apart from
// probe.ts: the page's Web Worker proxy needs only this, and a page bundled by esbuild with
// --splitting loads up front every file it reaches through a static import, so importing it
// from probe.ts put the probe's code (WebGPU, memory, storage) in every page's first load
// (test/browser/page-bundle-size.test.ts).
import type { DeviceCapabilities } from './probe.ts'

interface NetworkNavigator {
  readonly onLine?: boolean
  readonly connection?: { readonly saveData?: boolean }
}

/**
 * The probe's figures with the network state read now: it changes while a page lives (the probe
 * itself runs once), and a page sees it before its worker does.
 */
export function withCurrentNetwork<T extends DeviceCapabilities>(capabilities: T): T {
  const navigator = (globalThis as { navigator?: NetworkNavigator }).navigator
  return {
    ...capabilities,
    online: navigator?.onLine ?? capabilities.online,
    ...(navigator?.connection?.saveData === undefined ? {} : { saveData: navigator.connection.saveData }),
  }
}
