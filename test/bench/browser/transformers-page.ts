// The transformers.js side of the browser benchmark: its web build (from node_modules, with its own
// onnxruntime-web and .wasm files served from this origin, never a CDN), reading the same package
// folder, greedy with EOS ignored, timed from its streamer. Leaves a PageResult on window.benchResult.
// The page maps this bare name to transformers.web.js with an import map (not bundled).
import * as transformers from '@huggingface/transformers'
import { decodeRate, type PageResult, readRequest } from './page-protocol.ts'

declare const window: { benchResult?: PageResult; location: { search: string } }

interface Model {
  generate(options: Record<string, unknown>): Promise<unknown>
  dispose(): Promise<unknown>
  _get_text_only_rope_index?: (
    inputIds: unknown,
    attentionMask: { dims: number[] } | undefined,
  ) => [unknown, { data: BigInt64Array }]
}

const library = transformers as unknown as {
  env: {
    allowRemoteModels: boolean
    allowLocalModels: boolean
    localModelPath: string
    backends: { onnx: { wasm: { wasmPaths: string; numThreads: number; proxy: boolean } } }
  }
  AutoConfig: {
    from_pretrained(name: string, options: Record<string, unknown>): Promise<Record<string, unknown>>
  }
  AutoTokenizer: { from_pretrained(name: string, options: Record<string, unknown>): Promise<unknown> }
  AutoModelForCausalLM: { from_pretrained(name: string, options: Record<string, unknown>): Promise<Model> }
  Tensor: new (type: string, data: BigInt64Array, dims: number[]) => { dims: number[] }
}

async function main(): Promise<PageResult> {
  const request = readRequest(window.location.search)
  const { env, AutoConfig, AutoTokenizer, AutoModelForCausalLM, Tensor } = library
  const folder = request.packageUrl.replace(/\/$/, '')
  const name = folder.slice(folder.lastIndexOf('/') + 1)
  env.allowRemoteModels = false
  env.allowLocalModels = true
  env.localModelPath = `${folder.slice(0, folder.lastIndexOf('/'))}/`
  env.backends.onnx.wasm.wasmPaths = '/tjs-ort/'
  env.backends.onnx.wasm.numThreads = request.threads
  env.backends.onnx.wasm.proxy = false
  const started = performance.now()
  const config = await AutoConfig.from_pretrained(name, { local_files_only: true })
  if (
    request.transformersConfigPatch &&
    config.model_type === 'qwen3_5_text' &&
    config['transformers.js_config'] === undefined
  )
    Object.assign(config, request.transformersConfigPatch)
  else if (request.transformersConfigPatch && config.model_type === 'qwen3_5_text')
    Object.assign(config, {
      ...request.transformersConfigPatch,
      'transformers.js_config': config['transformers.js_config'],
    })
  await AutoTokenizer.from_pretrained(name, { local_files_only: true })
  const model = await AutoModelForCausalLM.from_pretrained(name, {
    config,
    dtype: request.dtype,
    device: request.backend,
    local_files_only: true,
  })
  const loadMs = performance.now() - started
  // The same decode-position correction as in Node (support/engines.ts), only where the bug shows.
  const original = model._get_text_only_rope_index
  if (typeof original === 'function') {
    const probe = new Tensor('int64', new BigInt64Array(2).fill(1n), [1, 2])
    if (original.call(model, probe, probe)[1].data[0] === 4n) {
      model._get_text_only_rope_index = function (inputIds, attentionMask) {
        const result = original.call(this, inputIds, attentionMask)
        if (attentionMask)
          for (let index = 0; index < result[1].data.length; index++)
            result[1].data[index] =
              (result[1].data[index] as bigint) - BigInt(2 * (attentionMask.dims[1] as number))
        return result
      }
    }
  }
  const run = async (prompt: readonly number[], maxTokens: number) => {
    const tokens: number[] = []
    let sawPrompt = false
    let firstAt = 0
    let lastAt = 0
    const streamer = {
      put(value: bigint[][]) {
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
    const runStarted = performance.now()
    await model.generate({
      input_ids: new Tensor(
        'int64',
        BigInt64Array.from(prompt, (id) => BigInt(id)),
        [1, prompt.length],
      ),
      attention_mask: new Tensor('int64', new BigInt64Array(prompt.length).fill(1n), [1, prompt.length]),
      max_new_tokens: maxTokens,
      do_sample: false,
      eos_token_id: null,
      streamer,
    })
    return {
      tokens,
      ttftMs: firstAt - runStarted,
      decodeTokensPerSecond: decodeRate(tokens.length, firstAt, lastAt),
    }
  }
  await run(request.promptTokenIds.slice(0, 8), 2)
  const measured = await run(request.promptTokenIds, request.maxTokens)
  await model.dispose()
  return {
    loadMs,
    ...measured,
    setup: { threads: env.backends.onnx.wasm.numThreads, device: request.backend },
  }
}

main().then(
  (result) => {
    window.benchResult = result
  },
  (error: unknown) => {
    window.benchResult = {
      loadMs: 0,
      ttftMs: 0,
      decodeTokensPerSecond: 0,
      tokens: [],
      setup: {},
      error: error instanceof Error ? `${error.message}\n${error.stack ?? ''}` : String(error),
    }
  },
)
