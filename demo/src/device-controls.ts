// The demo's knobs on the device side, as a wrapper around the SDK's own device host (the
// runtime in a Web Worker): the "Hand off" button and the test hooks in the query string make the
// device fail mid-answer or look less capable than it is. The SDK then does what it does on a
// real device: routes to the edge, or hands the answer over and lets the edge finish it.
import { BackendError, type DeviceHost, type DeviceModel } from 'ondevice'

export interface DeviceControls {
  /** The device fails once an answer has produced this many tokens (each answer again). */
  readonly failAtToken: number | undefined
  /** The device waits this long after each piece of text (a slower phone), so a person can act mid-answer. */
  readonly tokenDelayMs: number | undefined
  /** Report no WebGPU adapter, like a browser without it. */
  readonly disableWebgpu: boolean
  /** Checked before each piece of text: true makes the running answer fail now (the button). */
  readonly handoffRequested: () => boolean
}

export function withDeviceControls(host: DeviceHost, controls: DeviceControls): DeviceHost {
  return {
    async capabilities() {
      const capabilities = await host.capabilities()
      if (!controls.disableWebgpu) return capabilities
      return {
        ...capabilities,
        webgpu: { available: false, reason: 'WebGPU turned off by the demo (disableWebgpu)' },
      }
    },
    inspect: (model, options) =>
      host.inspect(
        model,
        controls.disableWebgpu && options.backend === undefined ? { ...options, backend: 'wasm' } : options,
      ),
    async load(model, options) {
      const loaded = await host.load(
        model,
        controls.disableWebgpu && options.backend === undefined ? { ...options, backend: 'wasm' } : options,
      )
      return withFaults(loaded, controls)
    },
  }
}

function withFaults(model: DeviceModel, controls: DeviceControls): DeviceModel {
  return {
    modelId: model.modelId,
    backend: model.backend,
    dtype: model.dtype,
    ...(model.warnings === undefined ? {} : { warnings: model.warnings }),
    probe: (signal) => model.probe(signal),
    dispose: () => model.dispose(),
    async *generate(request) {
      let produced = 0
      for await (const part of model.generate(request)) {
        if (part.type === 'text-delta' || part.type === 'reasoning-delta') {
          if (controls.handoffRequested()) {
            throw new BackendError('backend_failed', `You pressed "Hand off" after ${produced} tokens.`)
          }
          produced += part.tokenIds.length
        }
        yield part
        if (
          (part.type === 'text-delta' || part.type === 'reasoning-delta') &&
          controls.tokenDelayMs !== undefined &&
          controls.tokenDelayMs > 0
        )
          await new Promise((resolve) => setTimeout(resolve, controls.tokenDelayMs))
        if (
          (part.type === 'text-delta' || part.type === 'reasoning-delta') &&
          controls.failAtToken !== undefined &&
          produced >= controls.failAtToken
        ) {
          throw new BackendError(
            'backend_failed',
            `The demo made the device fail after ${produced} tokens (failAtToken=${controls.failAtToken}).`,
          )
        }
      }
    },
  }
}
