// The device side in a browser: the runtime's Web Worker proxy (filled in when the runtime lands).
import { OndeviceError } from '../core/errors.ts'
import type { DeviceHost } from './device.ts'

export async function createBrowserDeviceHost(): Promise<DeviceHost> {
  throw new OndeviceError('backend_unavailable', 'The browser device host is not wired to the runtime yet.')
}
