// Llama and Qwen3 decoders on the engine's kernels, from the packages ondevice's builder writes
// (builder/architectures/decoder-graph.ts): pre-norm blocks of grouped-query attention with
// rotate_half RoPE and a SwiGLU MLP; Qwen3 adds an RMSNorm over each query and key head before
// RoPE and a head_dim decoupled from hidden / heads. Tied embeddings come through the graph (the
// LM head node reads the embedding's own bytes), so nothing here depends on tying.
//
// One forward pass handles up to `chunk` tokens at a time (prefill) or one (decode) with the same
// kernels, and every kernel reduces each output in a fixed order per row, so the logits do not
// depend on how a prompt was split into appends.
import type { Pointer } from '../kernels.ts'
import type { OnnxWeights } from '../onnx-weights.ts'
import {
  attentionScoresStride,
  type Embedding,
  EngineUnsupportedError,
  feedForward,
  KvCache,
  kvCacheCapacity,
  type Linear,
  type LoadContext,
  runShared,
  SessionSlots,
} from './load-context.ts'
import { MAX_PASS_TOKENS, runPasses, runsInWorker } from './pass-size.ts'
import type { EngineAppendOptions, EngineModel } from './types.ts'

/**
 * The most tokens per prefill pass (each weight panel is reused across them; pass-size.ts says how
 * many a pass takes): the scratch is sized for it.
 */
const chunk = MAX_PASS_TOKENS
/** Whether passes may all take `chunk` tokens (pass-size.ts). */
const inWorker = runsInWorker()

interface LayerWeights {
  readonly inputNorm: Pointer
  readonly q: Linear
  readonly k: Linear
  readonly v: Linear
  readonly o: Linear
  readonly qNorm: Pointer | undefined
  readonly kNorm: Pointer | undefined
  readonly postNorm: Pointer
  readonly gate: Linear
  readonly up: Linear
  readonly down: Linear
}

/** The ops the builder's Llama / Qwen3 graphs use; anything else means a graph this file does not know. */
const knownOps = new Set([
  'Gather',
  'GatherBlockQuantized',
  'Reshape',
  'SimplifiedLayerNormalization',
  'MatMul',
  'MatMulNBits',
  'DynamicQuantizeMatMul',
  'Gemm',
  'Cast',
  'Mul',
  'Sigmoid',
  'Add',
  'Shape',
  'Sub',
  'Squeeze',
  'Range',
  'LessOrEqual',
  'Unsqueeze',
  'And',
  'Where',
  'ReduceSum',
  'Concat',
  'Cos',
  'Sin',
  'Split',
  'Neg',
  'Transpose',
  'Softmax',
  'GroupQueryAttention',
  'Identity',
  // num_logits_to_keep's cut before the final norm (packages built since it exists); the engine
  // computes the last position's logits only, whatever the graph would.
  'Slice',
])

/** The weight initializer of a linear layer named `prefix` in whichever format the file holds. */
function weightName(graph: OnnxWeights, prefix: string): string {
  for (const suffix of ['.weight_Q4', '.weight_quantized', '.weight'])
    if (graph.has(`${prefix}${suffix}`)) return `${prefix}${suffix}`
  throw new EngineUnsupportedError(
    `${graph.path} has no weight for ${prefix} under the names ondevice's builder writes; the engine runs packages from \`ondevice convert\` / \`ondevice fixture\`.`,
  )
}

export async function loadLlama(context: LoadContext): Promise<EngineModel> {
  const { config, graph, kernels } = context
  for (const node of graph.nodes)
    if (!knownOps.has(node.opType))
      throw new EngineUnsupportedError(
        `${graph.path} uses ${node.opType}, which the engine's ${config.modelType} decoder does not run.`,
      )
  const hidden = config.hiddenSize
  const heads = config.numAttentionHeads
  const kvHeads = config.numKeyValueHeads
  const headDim = config.headDim
  const intermediate = config.intermediateSize
  const vocabulary = config.vocabSize
  const rotaryDim = Math.round(headDim * config.partialRotaryFactor)
  const qWidth = heads * headDim
  const kvWidth = kvHeads * headDim
  const qkNorm = config.modelType === 'qwen3'

  const scratchFloats = chunk * (2 * hidden + 2 * qWidth + 2 * kvWidth + 2 * intermediate) + vocabulary
  const maxK = Math.max(hidden, qWidth, intermediate)
  const activationBytes = chunk * Math.ceil(maxK / 32) * (64 + 8)
  const kvBytesPerPosition = config.numHiddenLayers * 2 * kvWidth * 4
  // Each session's residual stream for a pass: what a pass carries from one layer to the next, so
  // other sessions may run their passes while it gives the event loop a turn between two layers.
  const residualBytes = chunk * hidden * 4
  context.checkFits(
    scratchFloats * 4 + activationBytes + (residualBytes + 256 * kvBytesPerPosition) * context.sessions,
  )

  // A graph from another exporter names things differently: not ours to run (the caller falls back).
  const required = ['model.norm.weight', '/model/rotary_emb/inv_freq']
  for (let i = 0; i < config.numHiddenLayers; i++) {
    const p = `model.layers.${i}`
    required.push(`${p}.input_layernorm.weight`, `${p}.post_attention_layernorm.weight`)
    if (qkNorm) required.push(`${p}.self_attn.q_norm.weight`, `${p}.self_attn.k_norm.weight`)
  }
  // A Qwen3 graph under a llama config.json: running it without its QK-norms would answer
  // otherwise than ONNX Runtime on the same files (onnxruntime-web runs the graph as it is).
  if (!qkNorm && graph.has('model.layers.0.self_attn.q_norm.weight'))
    throw new EngineUnsupportedError(
      `${graph.path} has QK-norm weights (model.layers.0.self_attn.q_norm.weight), which a ${config.modelType} decoder does not have: config.json's model_type does not match the graph.`,
    )
  const missing = required.find((name) => !graph.has(name))
  if (missing !== undefined)
    throw new EngineUnsupportedError(
      `${graph.path} has no "${missing}": it was not written by ondevice's builder, whose graphs the engine reads.`,
    )
  const embedding: Embedding = await context.loadEmbedding(graph, vocabulary, hidden)
  const layers: LayerWeights[] = []
  for (let i = 0; i < config.numHiddenLayers; i++) {
    const p = `model.layers.${i}`
    const linear = (name: string, n: number, k: number) =>
      context.loadLinear(graph, weightName(graph, name), n, k)
    layers.push({
      inputNorm: await context.loadVector(graph, `${p}.input_layernorm.weight`, hidden),
      q: await linear(`${p}.self_attn.q_proj`, qWidth, hidden),
      k: await linear(`${p}.self_attn.k_proj`, kvWidth, hidden),
      v: await linear(`${p}.self_attn.v_proj`, kvWidth, hidden),
      qNorm: qkNorm ? await context.loadVector(graph, `${p}.self_attn.q_norm.weight`, headDim) : undefined,
      kNorm: qkNorm ? await context.loadVector(graph, `${p}.self_attn.k_norm.weight`, headDim) : undefined,
      o: await linear(`${p}.self_attn.o_proj`, hidden, qWidth),
      postNorm: await context.loadVector(graph, `${p}.post_attention_layernorm.weight`, hidden),
      gate: await linear(`${p}.mlp.gate_proj`, intermediate, hidden),
      up: await linear(`${p}.mlp.up_proj`, intermediate, hidden),
      down: await linear(`${p}.mlp.down_proj`, hidden, intermediate),
    })
  }
  const finalNorm = await context.loadVector(graph, 'model.norm.weight', hidden)
  const head = await context.loadHead(graph, vocabulary, hidden)
  // The graph's own inverse frequencies (with Llama 3 scaling already applied), as ONNX Runtime uses them.
  const inverseFrequencies = await context.loadVector(graph, '/model/rotary_emb/inv_freq', rotaryDim / 2)

  context.allocateScratch(chunk, maxK)
  const alloc = (floats: number) => kernels.alloc(floats * 4, 16)
  const h = alloc(chunk * hidden)
  const t = alloc(chunk * hidden)
  const q = alloc(chunk * qWidth)
  const attentionOut = alloc(chunk * qWidth)
  const k = alloc(chunk * kvWidth)
  const v = alloc(chunk * kvWidth)
  const gate = alloc(chunk * intermediate)
  const up = alloc(chunk * intermediate)
  const logits = alloc(vocabulary)
  const ids = kernels.alloc(chunk * 4, 16)
  const scoresStride = attentionScoresStride(context.contextLength)
  const scores = alloc(heads * scoresStride)
  // Everything above is shared by the instance's sessions (a pass uses it within a layer); each
  // session's residual stream and cache come after it.
  const capacity = kvCacheCapacity(
    kernels,
    context.contextLength,
    kvBytesPerPosition * context.sessions,
    residualBytes * context.sessions,
  )
  const slots = new SessionSlots(kernels, residualBytes, () => ({
    residual: alloc(chunk * hidden),
    cache: new KvCache(kernels, config.numHiddenLayers, kvHeads, headDim, capacity),
  }))
  const scale = 1 / Math.sqrt(headDim)
  const eps = config.rmsNormEps
  const K = kernels.k

  interface State {
    length: number
    readonly cache: KvCache
    /** The session's residual stream: all a pass carries from one layer to the next. */
    readonly residual: Pointer
  }

  // A generator: it pauses before every layer but the first, where the append may give the event
  // loop a turn (pass-size.ts); nothing but the session's residual stream is carried across. With
  // wantLogits it returns them, copied out of the shared buffer in its last step (runPasses).
  function* forward(
    state: State,
    tokens: readonly number[],
    from: number,
    count: number,
    wantLogits: boolean,
  ): Generator<undefined, Float32Array | undefined> {
    const { cache, residual: x } = state
    const position0 = state.length
    cache.reserve(position0 + count)
    kernels.i32(ids, count).set(tokens.slice(from, from + count))
    embedding.lookup(ids, count, x)
    for (const [l, layer] of layers.entries()) {
      if (l > 0) yield
      // The last layer feeds only the logits: past storing its keys and values it runs for the
      // last position alone, and not at all in a pass that returns none (llama.cpp does the same).
      // Every row is computed on its own, so the kept row's bits are unchanged.
      const outputs = l < layers.length - 1 ? count : wantLogits ? 1 : 0
      const first = count - outputs
      K.rms_norm(x, layer.inputNorm, h, count, hidden, eps, 0)
      if (outputs === count) runShared([layer.q, layer.k, layer.v], h, count, [q, k, v])
      else {
        runShared([layer.k, layer.v], h, count, [k, v])
        if (outputs > 0) layer.q.run(h + first * hidden * 4, outputs, q)
      }
      if (layer.qNorm !== undefined && layer.kNorm !== undefined) {
        K.rms_norm(q, layer.qNorm, q, outputs * heads, headDim, eps, 0)
        K.rms_norm(k, layer.kNorm, k, count * kvHeads, headDim, eps, 0)
      }
      K.rope(q, outputs, heads, headDim, rotaryDim, position0 + first, inverseFrequencies)
      K.rope(k, count, kvHeads, headDim, rotaryDim, position0, inverseFrequencies)
      cache.attend(l, {
        keys: k,
        values: v,
        query: q,
        out: attentionOut,
        scores,
        scoresStride,
        count,
        queries: outputs,
        heads,
        position0,
        scale,
      })
      if (outputs === 0) continue
      layer.o.run(attentionOut, outputs, t)
      feedForward(layer, x + first * hidden * 4, t, { normed: h, gate, up }, outputs, eps)
    }
    state.length += count
    if (wantLogits) {
      const last = x + (count - 1) * hidden * 4
      K.rms_norm(last, finalNorm, h, 1, hidden, eps, 0)
      head.run(h, 1, logits)
      return kernels.f32(logits, vocabulary).slice()
    }
    return undefined
  }

  const session = (): EngineModel => {
    const slot = slots.take()
    const state: State = { length: 0, cache: slot.cache, residual: slot.residual }
    let released = false
    return {
      config,
      dtype: context.dtype,
      vocabularySize: vocabulary,
      contextLength: capacity,
      kernels,
      get length() {
        return state.length
      },
      async append(tokenIds: readonly number[], options: EngineAppendOptions): Promise<Float32Array> {
        // The length moves only once a pass's last layer has run: an abort at a turn inside a pass
        // leaves the cache at the passes before it (the keys it stored past that are overwritten later).
        if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted')
        return await runPasses(
          tokenIds.length,
          inWorker,
          options.sliceMs,
          (from, count, last) => forward(state, tokenIds, from, count, last),
          async () => {
            await options.between?.()
            if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted')
          },
        )
      },
      rewind(to: number): boolean {
        // Attention caches are position-indexed: dropping the tail is just a shorter length.
        state.length = to
        return true
      },
      rewindableLength(limit: number): number {
        return Math.min(limit, state.length)
      },
      reset(): void {
        state.length = 0
      },
      createSession: session,
      release(): void {
        if (released) return
        released = true
        slots.give(slot)
      },
    }
  }
  return session()
}
