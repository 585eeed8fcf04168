// `ondevice`'s createRuntimeDeviceHost and createDeviceModel: the runtime's own (ondevice/runtime
// exports those as they are), loaded with import() when first used. A page imports `ondevice` for
// createClient; esbuild with --splitting loads up front every chunk its entry reaches through a
// static import, re-exports the page never uses included, and the runtime would be one of those
// (the tokenizer, the chat template's Jinja engine, the engine's loaders: 64 KiB gzip). Every
// method of a DeviceHost and every call of a DeviceModel that runs the model is asynchronous, so
// waiting for the chunk there changes nothing a caller sees; a DeviceModel's fields are read from
// its parts at once (model-info.ts), as the runtime's own does.
import type { DeviceModelParts } from '../client-runtime/device-host/device-model.ts'
import { deviceModelInfo } from '../client-runtime/device-host/model-info.ts'
import type { RuntimeDeviceHostOptions } from '../client-runtime/device-host/runtime-host.ts'
import type { DeviceHost, DeviceModel } from '../client-runtime/device-host/types.ts'
import { onDemand } from './on-demand.ts'

/** The DeviceHost over the runtime in this thread (client-runtime/device-host/runtime-host.ts). */
export function createRuntimeDeviceHost(options: RuntimeDeviceHostOptions = {}): DeviceHost {
  const runtime = onDemand(() =>
    import('../client-runtime/device-host/runtime-host.ts').then((module) =>
      module.createRuntimeDeviceHost(options),
    ),
  )
  return {
    capabilities: async () => (await runtime()).capabilities(),
    inspect: async (model, inspectOptions) => (await runtime()).inspect(model, inspectOptions),
    load: async (model, loadOptions) => (await runtime()).load(model, loadOptions),
  }
}

/** A DeviceModel over a session and its tokenizer (client-runtime/device-host/device-model.ts). */
export function createDeviceModel(parts: DeviceModelParts): DeviceModel {
  // One model, made on first use: it holds the queue that makes generations on the session take turns.
  const runtime = onDemand(() =>
    import('../client-runtime/device-host/device-model.ts').then((module) => module.createDeviceModel(parts)),
  )
  return {
    ...deviceModelInfo(parts),
    async *generate(request) {
      yield* (await runtime()).generate(request)
    },
    probe: async (signal) => (await runtime()).probe(signal),
    dispose: async () => (await runtime()).dispose(),
  }
}
