// The app's own model worker, as docs/sdk.md shows it for other runtime options: the runtime's
// DeviceHost served to the page (own-worker.ts starts it through createBrowserDeviceHost).
import { createRuntimeDeviceHost, markNestedWorkers, serveDeviceHost } from 'ondevice/runtime'

markNestedWorkers(self, self)
serveDeviceHost(self, createRuntimeDeviceHost({ contextLength: 1024 }))
