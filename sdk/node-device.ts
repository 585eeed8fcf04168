// The device side in Node: the runtime's ORT session in this process (filled in when the runtime lands).
import { OndeviceError } from '../core/errors.ts'
import type { DeviceHost } from './device.ts'

export async function createNodeDeviceHost(): Promise<DeviceHost> {
  throw new OndeviceError('backend_unavailable', 'The Node device host is not wired to the runtime yet.')
}
