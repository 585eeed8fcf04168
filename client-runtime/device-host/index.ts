// The device side's one engine interface (DeviceHost), its implementation over the runtime in
// this thread, and the DeviceModel over a session that implementation returns.
export { createDeviceModel, type DeviceModelParts } from './device-model.ts'
export { createRuntimeDeviceHost, type RuntimeDeviceHostOptions } from './runtime-host.ts'
export type {
  DeviceGenerateRequest,
  DeviceHost,
  DeviceInspectOptions,
  DeviceLoadOptions,
  DeviceModel,
  DevicePart,
  PromptPart,
} from './types.ts'
