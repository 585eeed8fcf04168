// Architectures the engine runs, by config.json model_type. A package whose type is not here (or
// whose graph a loader does not recognise) is not covered: loading throws EngineUnsupportedError
// and the caller falls back to onnxruntime-web.
import { loadLlama } from './llama.ts'
import { loadQwen35 } from './qwen3-5.ts'
import type { ModelLoader } from './types.ts'

export const modelLoaders: Readonly<Record<string, ModelLoader>> = {
  llama: loadLlama,
  qwen3: loadLlama,
  qwen3_5: loadQwen35,
  qwen3_5_text: loadQwen35,
}

export {
  type ActivationScratch,
  Embedding,
  EngineUnsupportedError,
  KvCache,
  Linear,
  LoadContext,
  runShared,
} from './load-context.ts'
export type { EngineAppendOptions, EngineModel, ModelLoader } from './types.ts'
