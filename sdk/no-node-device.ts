// What '#node-device-host' resolves to outside Node (package.json "imports", 'default'
// condition): browser and Worker bundles get this instead of node-device.ts, so they never
// contain the builder or node:* modules. client.ts imports it only when it runs in Node, where
// the 'node' condition picks node-device.ts, so this is reached only by a mis-configured bundle.

import type { DeviceHost } from '../client-runtime/device-host/types.ts'
import { BackendError } from '../core/errors.ts'
import type { NodeDeviceHostOptions } from './node-device.ts'

export async function createNodeDeviceHost(_options: NodeDeviceHostOptions = {}): Promise<DeviceHost> {
  throw new BackendError(
    'backend_unavailable',
    "This bundle has no Node device host (it was built without the 'node' condition): bundle ondevice for Node with the 'node' export condition, or run it in a browser (the Web Worker device host).",
    { isRetryable: false },
  )
}
