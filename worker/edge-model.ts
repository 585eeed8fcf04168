// Turns a package reader into the HostedModel the app serves: core's Tokenizer from the package's
// tokenizer files, and ORT sessions from the runtime's createOrtSession (the same session code the
// device runs, so edge and device produce the same tokens from the same file and backend family).

import { type Backend, dtypeOfFile, preferredDtypes } from '../client-runtime/dtype.ts'
import { createOrtSession, type OrtModule } from '../client-runtime/ort-session.ts'
import type { PackageReader } from '../client-runtime/package-reader.ts'
import { ModelError } from '../core/errors.ts'
import { Tokenizer } from '../core/tokenizer.ts'
import type { HostedModel } from './model-host.ts'

export interface EdgeModelOptions {
  readonly ort: OrtModule
  readonly reader: PackageReader
  readonly modelId: string
  readonly backend: Backend
  /** Weight format; default: the backend's fastest one the package has. */
  readonly dtype?: string | undefined
  /** Dtypes the package holds (from manifest.json), to choose without probing files. */
  readonly availableDtypes?: readonly string[] | undefined
  /** Caps the context (bounds the KV cache in a 128 MB isolate). */
  readonly contextLength?: number | undefined
}

async function optionalText(reader: PackageReader, path: string): Promise<string | undefined> {
  if (reader.exists && !(await reader.exists(path))) return undefined
  try {
    return await reader.readText(path)
  } catch (error) {
    if (error instanceof ModelError && error.code === 'model_not_found') return undefined
    throw error
  }
}

/** Loads the tokenizer files a package has (tokenizer.json is required, the rest optional). */
export async function loadPackageTokenizer(reader: PackageReader): Promise<Tokenizer> {
  const [tokenizerJson, tokenizerConfigJson, configJson, generationConfigJson, chatTemplate] =
    await Promise.all([
      reader.readText('tokenizer.json'),
      optionalText(reader, 'tokenizer_config.json'),
      optionalText(reader, 'config.json'),
      optionalText(reader, 'generation_config.json'),
      optionalText(reader, 'chat_template.jinja'),
    ])
  return Tokenizer.fromFiles({
    tokenizerJson,
    ...(tokenizerConfigJson === undefined ? {} : { tokenizerConfigJson }),
    ...(configJson === undefined ? {} : { configJson }),
    ...(generationConfigJson === undefined ? {} : { generationConfigJson }),
    ...(chatTemplate === undefined ? {} : { chatTemplate }),
  })
}

async function chooseDtype(options: EdgeModelOptions): Promise<string> {
  if (options.dtype) return options.dtype
  const preferred = preferredDtypes(options.backend)
  if (options.availableDtypes && options.availableDtypes.length > 0) {
    const found = preferred.find((dtype) => options.availableDtypes?.includes(dtype))
    if (found) return found
  }
  // No manifest: look for the graph files themselves.
  if (options.reader.exists) {
    for (const path of [
      'onnx/model_quantized.onnx',
      'onnx/model.onnx',
      'onnx/model_q4.onnx',
      'onnx/decoder_model_merged_quantized.onnx',
      'onnx/decoder_model_merged.onnx',
      'onnx/decoder_model_merged_q4.onnx',
    ]) {
      if (await options.reader.exists(path)) return dtypeOfFile(path) ?? 'fp32'
    }
  }
  return 'fp32'
}

export async function loadEdgeModel(options: EdgeModelOptions): Promise<HostedModel> {
  const tokenizer = await loadPackageTokenizer(options.reader)
  const dtype = await chooseDtype(options)
  const sessionOptions = {
    backend: options.backend,
    dtype,
    modelId: options.modelId,
    ...(options.contextLength === undefined ? {} : { contextLength: options.contextLength }),
  }
  // The first session is made now: a package that cannot run fails the load (503 with the
  // reason) instead of failing every request later.
  const first = await createOrtSession(options.ort, options.reader, sessionOptions)
  let spare: typeof first | undefined = first
  return {
    info: {
      modelId: options.modelId,
      backend: first.info.backend,
      dtype: first.info.dtype,
      contextLength: first.info.contextLength,
    },
    tokenizer,
    async createSession() {
      if (spare) {
        const session = spare
        spare = undefined
        return session
      }
      return createOrtSession(options.ort, options.reader, sessionOptions)
    },
  }
}
