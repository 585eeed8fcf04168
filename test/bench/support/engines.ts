// The engines the benchmarks put side by side, behind one small interface: ours (loadModel or
// createOrtSession + core's generate loop) and transformers.js v4 (AutoModelForCausalLM on
// onnxruntime-node), both loading the same package folder. Every run is greedy, ignores EOS (so
// every run produces exactly the tokens asked for) and reports time to first token and decode rate
// measured the same way on both sides: from the call to the first sampled token, then from the
// first to the last sampled token.
import { existsSync, readFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import type { InferenceSession } from 'onnxruntime-node'
import type { Backend } from '../../../client-runtime/dtype.ts'
import { createOrtSession, type OrtModule } from '../../../client-runtime/index.ts'
import { loadModelWith } from '../../../client-runtime/load-model.ts'
import { nodeHost } from '../../../client-runtime/node-host.ts'
import type { PackageReader } from '../../../client-runtime/package-reader.ts'
import { createNodeStore } from '../../../client-runtime/store/node-store.ts'
import { generate } from '../../../core/generate.ts'
import type { ModelSession } from '../../../core/model-session.ts'
import { Tokenizer } from '../../../core/tokenizer.ts'
import { loadOrtWebForNode } from '../../../wasm/node.ts'

export interface GenerationRun {
  readonly tokens: readonly number[]
  /** From the call to the first sampled token. */
  readonly ttftMs: number
  /** (tokens − 1) / time from the first to the last sampled token. */
  readonly decodeTokensPerSecond: number
}

export interface BenchEngine {
  readonly name: string
  readonly loadMs: number
  /** Greedy generation of exactly `maxTokens` tokens (EOS ignored) from a fresh cache. */
  run(promptTokenIds: readonly number[], maxTokens: number): Promise<GenerationRun>
  dispose(): Promise<void>
}

function decodeRate(count: number, firstAt: number, lastAt: number): number {
  return count > 1 && lastAt > firstAt ? ((count - 1) * 1000) / (lastAt - firstAt) : Number.NaN
}

/**
 * What generate() gets as its tokenizer: no EOS ids (every run produces the tokens asked for), and
 * ids past the tokenizer's vocabulary dropped from the text (the Qwen3.5-0.8B-shaped fixture has
 * 248,320 logits but ships the 151,669-token Qwen3 tokenizer; its text means nothing anyway).
 */
export function decodingView(tokenizer: Tokenizer): {
  eosTokenIds: number[]
  decode(ids: readonly number[], options?: { readonly skipSpecialTokens?: boolean }): string
} {
  const size = tokenizer.vocabularySize
  return {
    eosTokenIds: [],
    decode: (ids, options) =>
      tokenizer.decode(
        ids.filter((id) => id < size),
        options,
      ),
  }
}

/** Core's generate() on a session, EOS ignored (a tokenizer view with no EOS ids). */
export async function runOurs(
  session: ModelSession,
  tokenizer: Tokenizer,
  promptTokenIds: readonly number[],
  maxTokens: number,
): Promise<GenerationRun> {
  await session.reset()
  const view = decodingView(tokenizer)
  const tokens: number[] = []
  const started = performance.now()
  let firstAt = 0
  let lastAt = 0
  for await (const part of generate(session, view, {
    promptTokenIds: [...promptTokenIds],
    maxTokens,
    sampling: { temperature: 0 },
  })) {
    if (part.type !== 'text-delta' || part.tokenIds.length === 0) continue
    lastAt = performance.now()
    if (firstAt === 0) firstAt = lastAt
    tokens.push(...part.tokenIds)
  }
  return {
    tokens,
    ttftMs: firstAt - started,
    decodeTokensPerSecond: decodeRate(tokens.length, firstAt, lastAt),
  }
}

/** Ours through the public loadModel path (store verification, tokenizer, dtype pick) on Node. */
export async function openOurs(options: {
  folder: string
  dtype: string
  backend: Backend
  cacheFolder: string
  numThreads?: number
}): Promise<BenchEngine & { session: ModelSession; tokenizer: Tokenizer }> {
  const started = performance.now()
  const loaded = await loadModelWith(nodeHost, {
    model: options.folder,
    backend: options.backend,
    dtype: options.dtype,
    store: createNodeStore({ cacheDir: join(options.cacheFolder, 'store'), onWarning: () => undefined }),
    ...(options.numThreads === undefined ? {} : { numThreads: options.numThreads }),
  })
  const loadMs = performance.now() - started
  return {
    name: `ondevice ${options.backend}`,
    loadMs,
    session: loaded.session,
    tokenizer: loaded.tokenizer,
    run: (prompt, maxTokens) => runOurs(loaded.session, loaded.tokenizer, prompt, maxTokens),
    dispose: () => loaded.dispose(),
  }
}

export function folderReader(folder: string): PackageReader {
  return {
    readText: async (path) => readFileSync(join(folder, path), 'utf8'),
    readBytes: async (path) => new Uint8Array(readFileSync(join(folder, path))),
    exists: async (path) => existsSync(join(folder, path)),
    localPath: (path) => join(folder, path),
  }
}

export function folderTokenizer(folder: string): Tokenizer {
  const text = (name: string): string | undefined => {
    try {
      return readFileSync(join(folder, name), 'utf8')
    } catch {
      return undefined
    }
  }
  const tokenizerConfigJson = text('tokenizer_config.json')
  const generationConfigJson = text('generation_config.json')
  return Tokenizer.fromFiles({
    tokenizerJson: text('tokenizer.json') as string,
    configJson: text('config.json') as string,
    ...(tokenizerConfigJson === undefined ? {} : { tokenizerConfigJson }),
    ...(generationConfigJson === undefined ? {} : { generationConfigJson }),
  })
}

/** The ORT module for a backend in Node (WASM threads are global per process: first call wins). */
export async function nodeOrt(backend: Backend, wasmThreads?: number): Promise<OrtModule> {
  if (backend === 'wasm')
    return (await loadOrtWebForNode(wasmThreads === undefined ? {} : { numThreads: wasmThreads }))
      .ort as unknown as OrtModule
  return (await import('onnxruntime-node')) as unknown as OrtModule
}

/**
 * Ours through createOrtSession with explicit ORT session options (thread counts), for the
 * backend-against-backend rows. `ort` may be a timing wrapper (group 3).
 */
export async function openOursSession(options: {
  folder: string
  dtype: string
  backend: Backend
  ort: OrtModule
  sessionOptions?: InferenceSession.SessionOptions
  label?: string
}): Promise<BenchEngine & { session: ModelSession; tokenizer: Tokenizer }> {
  const started = performance.now()
  const tokenizer = folderTokenizer(options.folder)
  const session = await createOrtSession(options.ort, folderReader(options.folder), {
    backend: options.backend,
    dtype: options.dtype,
    ...(options.sessionOptions ? { sessionOptions: options.sessionOptions as never } : {}),
  })
  const loadMs = performance.now() - started
  return {
    name: options.label ?? `ondevice ${options.backend}`,
    loadMs,
    session,
    tokenizer,
    run: (prompt, maxTokens) => runOurs(session, tokenizer, prompt, maxTokens),
    dispose: () => session.dispose(),
  }
}

/**
 * What transformers.js v4.3.2 needs to load a Qwen3.5 package as embed_tokens + decoder_model_merged:
 * it takes that two-graph path only when config.json's architectures[0] is
 * Qwen3_5ForConditionalGeneration (as onnx-community's published export says), and its position
 * ids code reads vision_config.spatial_merge_size. Our builder writes Qwen3_5ForCausalLM and no
 * vision_config, so transformers.js would look for onnx/model.onnx; we pass this in-memory config
 * instead of changing the files.
 */
export const transformersQwen35ConfigPatch = {
  architectures: ['Qwen3_5ForConditionalGeneration'],
  vision_config: { spatial_merge_size: 2 },
}

export interface TransformersEngine extends BenchEngine {
  /** The ORT sessions transformers.js made (model, or embed_tokens + decoder_model_merged). */
  readonly sessions: Record<string, InferenceSession>
  /** Whether the config had to be patched in memory to load. */
  readonly configPatched: boolean
  /** Whether its decode position bug (see patchTextOnlyRopeIndex) was patched on this model. */
  readonly positionsPatched: boolean
}

/**
 * transformers.js 4.3.2's Qwen2-VL family (Qwen3.5 included) computes the text-only rope delta as
 * max(position) + 1 + sequence length instead of max(position) + 1 − sequence length, so after a
 * 128-token prompt it feeds position 384 (not 128) to the first decoded token, and every decoded
 * token sits 2 × prompt length too far from the prompt in the full-attention layers' RoPE. That
 * changes its answers, not its speed. We correct the delta on the instance so the greedy check
 * compares like with like; the extra subtraction costs nothing measurable.
 */
function patchTextOnlyRopeIndex(
  model: TransformersModel,
  ones: (length: number) => { dims: number[] },
): boolean {
  const original = model._get_text_only_rope_index
  if (typeof original !== 'function') return false
  // Patch only where the bug is there: a 2-token text prompt must give a delta of 0.
  const probe = ones(2)
  if (original.call(model, probe, probe)[1].data[0] !== 4n) return false
  model._get_text_only_rope_index = function (inputIds, attentionMask) {
    const result = original.call(this, inputIds, attentionMask)
    if (attentionMask) {
      const twice = BigInt(2 * (attentionMask.dims[1] as number))
      const deltas = result[1].data
      for (let index = 0; index < deltas.length; index++) deltas[index] = (deltas[index] as bigint) - twice
    }
    return result
  }
  return true
}

interface TransformersModel {
  sessions: Record<string, InferenceSession>
  _get_text_only_rope_index?: (
    inputIds: unknown,
    attentionMask: { dims: number[] } | undefined,
  ) => [unknown, { data: BigInt64Array }]
  generate(options: Record<string, unknown>): Promise<unknown>
  dispose(): Promise<unknown>
}

/** transformers.js v4 on onnxruntime-node (`device: 'cpu'`), reading the package folder locally. */
export async function openTransformers(options: {
  folder: string
  dtype: string
  /** ORT session options for every session it creates (profiling, threads); none by default, as a user would. */
  sessionOptions?: InferenceSession.SessionOptions
}): Promise<TransformersEngine> {
  const transformers = await import('@huggingface/transformers')
  const { AutoConfig, AutoModelForCausalLM, AutoTokenizer, env, Tensor } = transformers
  env.allowRemoteModels = false
  env.allowLocalModels = true
  env.localModelPath = `${dirname(options.folder)}/`
  const name = basename(options.folder)
  const started = performance.now()
  const config = (await AutoConfig.from_pretrained(name, { local_files_only: true })) as unknown as Record<
    string,
    unknown
  >
  const configPatched =
    config.model_type === 'qwen3_5_text' &&
    (config.architectures as string[] | undefined)?.[0] !== 'Qwen3_5ForConditionalGeneration'
  if (configPatched) Object.assign(config, transformersQwen35ConfigPatch)
  // A user loads the tokenizer with the model; time both, as our loadModel does both.
  await AutoTokenizer.from_pretrained(name, { local_files_only: true })
  const model = (await AutoModelForCausalLM.from_pretrained(name, {
    config,
    dtype: options.dtype,
    device: 'cpu',
    local_files_only: true,
    ...(options.sessionOptions ? { session_options: options.sessionOptions } : {}),
  } as never)) as unknown as TransformersModel
  const loadMs = performance.now() - started
  const positionsPatched = patchTextOnlyRopeIndex(
    model,
    (length) =>
      new Tensor('int64', new BigInt64Array(length).fill(1n), [1, length]) as unknown as { dims: number[] },
  )
  return {
    name: 'transformers.js cpu',
    positionsPatched,
    loadMs,
    sessions: model.sessions,
    configPatched,
    run: async (promptTokenIds, maxTokens) => {
      const started = performance.now()
      let firstAt = 0
      let lastAt = 0
      const tokens: number[] = []
      let sawPrompt = false
      const streamer = {
        put(value: bigint[][]) {
          // The first put is the prompt; then one put per sampled token.
          if (!sawPrompt) {
            sawPrompt = true
            return
          }
          lastAt = performance.now()
          if (firstAt === 0) firstAt = lastAt
          tokens.push(Number(value[0]?.[0]))
        },
        end() {},
      }
      const length = promptTokenIds.length
      await model.generate({
        input_ids: new Tensor(
          'int64',
          BigInt64Array.from(promptTokenIds, (id) => BigInt(id)),
          [1, length],
        ),
        attention_mask: new Tensor('int64', new BigInt64Array(length).fill(1n), [1, length]),
        max_new_tokens: maxTokens,
        do_sample: false,
        eos_token_id: null,
        streamer,
      })
      return {
        tokens,
        ttftMs: firstAt - started,
        decodeTokensPerSecond: decodeRate(tokens.length, firstAt, lastAt),
      }
    },
    dispose: async () => {
      await model.dispose()
    },
  }
}

/**
 * Checks that the other engine's greedy tokens are what our model computes: our session follows
 * their tokens (teacher forcing) and at each step measures how far their token's logit is below
 * our best. 0 everywhere means the same argmax; a tiny gap means a near-tie that rounding order
 * (thread count, kernel choice) can flip.
 */
export async function followTokens(
  session: ModelSession,
  promptTokenIds: readonly number[],
  tokens: readonly number[],
): Promise<{ maxGap: number; gapSteps: number; firstGapStep: number | undefined }> {
  await session.reset()
  let logits = await session.append([...promptTokenIds])
  let maxGap = 0
  let gapSteps = 0
  let firstGapStep: number | undefined
  for (let step = 0; step < tokens.length; step++) {
    const token = tokens[step] as number
    let best = Number.NEGATIVE_INFINITY
    for (let index = 0; index < logits.length; index++)
      if ((logits[index] as number) > best) best = logits[index] as number
    const gap = best - (logits[token] as number)
    if (gap > 0) {
      gapSteps++
      firstGapStep ??= step
      maxGap = Math.max(maxGap, gap)
    }
    if (step + 1 < tokens.length) logits = await session.append([token])
  }
  await session.reset()
  return { maxGap, gapSteps, firstGapStep }
}
