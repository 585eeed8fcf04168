// What '#runtime-node' resolves to outside Node (package.json "imports", 'default' condition):
// the same names as node-platform.ts, failing clearly if called. The runtime calls them only when
// it runs in Node, where the 'node' condition picks node-platform.ts instead, so only a bundle
// built for Node without that condition reaches these.
import { BackendError } from '../core/errors.ts'
import type { RuntimeHost } from './load-model.ts'
import type { NodeCapabilities } from './node-capabilities.ts'

function unavailable(): never {
  throw new BackendError(
    'backend_unavailable',
    "This bundle has no Node runtime host (it was built without the 'node' condition): bundle ondevice for Node with the 'node' export condition.",
    { isRetryable: false },
  )
}

export const nodeHost: RuntimeHost = {
  defaultStore: () => unavailable(),
  defaultBackend: async () => unavailable(),
  loadOrt: async () => unavailable(),
}

export async function probeNodeCapabilities(): Promise<NodeCapabilities> {
  return unavailable()
}
