// What a DeviceModel says about itself before it runs anything: its id, backend and weights, the
// load's warnings and how it writes tool calls, read from its parts. Apart from the generation
// loop (device-model.ts) so that `ondevice`'s createDeviceModel (sdk/runtime-on-demand.ts) gives
// the same fields at once and loads the loop, the chat template and the sampler on first use.
import { modelToolCallSyntaxOf } from '../../core/structured/call-syntax.ts'
import type { DeviceModelParts } from './device-model.ts'
import type { DeviceModel } from './types.ts'

export type DeviceModelInfo = Required<
  Pick<DeviceModel, 'modelId' | 'backend' | 'dtype' | 'warnings' | 'toolCallSyntax'>
> &
  Pick<DeviceModel, 'packageFingerprint' | 'sourceModelId'>

export function deviceModelInfo(parts: DeviceModelParts): DeviceModelInfo {
  const { info } = parts.session
  return {
    modelId: info.modelId,
    backend: info.backend,
    dtype: info.dtype,
    warnings: parts.warnings ?? [],
    toolCallSyntax: modelToolCallSyntaxOf(parts.tokenizer),
    ...(parts.packageFingerprint === undefined ? {} : { packageFingerprint: parts.packageFingerprint }),
    ...(parts.sourceModelId === undefined ? {} : { sourceModelId: parts.sourceModelId }),
  }
}
