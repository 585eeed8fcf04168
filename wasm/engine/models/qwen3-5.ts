// Qwen3.5 (text) on the engine's kernels, from the two graphs ondevice's builder writes
// (builder/architectures/qwen3-5-graph.ts): embed_tokens*.onnx and decoder_model_merged*.onnx.
// Three of every four layers are Gated DeltaNet (in_proj_qkv → causal conv + SiLU → the gated
// delta rule on a [dk, dv] state per value head → gated RMSNorm with silu(z) → out_proj; kernels
// in src/causal-conv.c and src/gated-delta.c); every fourth (3, 7, ...) is gated full attention
// (q_proj gives per head [query | gate], QK-norm, RoPE on the first head_dim · partial_rotary_factor
// dims, attention, · sigmoid(gate), o_proj; src/gated-attention.c plus the shared kernels).
//
// The graph stores every zero-centred norm weight as 1 + w already (`….weight.scale`), and
// −exp(A_log) instead of A_log (`neg_exp_A_log`): those are read as stored.
//
// The delta rule runs one token after another inside a prefill pass (the recurrent form, not the
// chunked WY form): each value is computed by the same operations whatever the chunking of the
// prompt into appends and passes, so a prompt fed in one append, in several, or token by token
// gives the same bits, and an edge that replays a device's tokens continues from the same state.
// Its cost is measured in docs/wasm-engine.md.
//
// Rewind: attention caches are position-indexed, but the conv and recurrent states only exist for
// the current length. An append with `checkpoint` copies them (as the ONNX Runtime session does,
// keeping the last `maxCheckpoints`), and so does every `decodeCheckpointInterval`-th decode step
// past the latest copy (one such copy, replaced in place); rewind() can return to those lengths,
// to 0, or to the current length; anything else returns false and the caller re-feeds. The decode
// copy is for a chat's next turn: its prompt renders the previous answer again, and where that
// rendering's tokens part from the generated ones (a last token cut by max_tokens merges with the
// one before it; a re-serialized tool call) the turn resumes at most one interval before, not at
// the answer's turn boundary. The logits do not depend on where a prompt is resumed (above), so
// any of these lengths gives a cold run's bits.
import { ModelError } from '../../../core/errors.ts'
import type { Pointer } from '../kernels.ts'
import type { Initializer, OnnxWeights } from '../onnx-weights.ts'
import {
  attentionScoresStride,
  Embedding,
  EngineUnsupportedError,
  feedForward,
  KvCache,
  kvCacheCapacity,
  type Linear,
  type LoadContext,
  runShared,
  SessionSlots,
} from './load-context.ts'
import { BASE_PASS_TOKENS, MAX_PASS_TOKENS, runPasses, runsInWorker } from './pass-size.ts'
import type { EngineAppendOptions, EngineModel } from './types.ts'

/**
 * The most tokens per prefill pass (each weight panel is reused across them; pass-size.ts says how
 * many a pass takes): the scratch is sized for it.
 */
const chunk = MAX_PASS_TOKENS
/** Whether passes may all take `chunk` tokens (pass-size.ts). */
const inWorker = runsInWorker()
/** Recurrent-state checkpoints kept for rewind (the ONNX Runtime session's default too). */
const maxCheckpoints = 2
/**
 * Decode steps past the latest checkpoint after which the state is copied again (the one decode
 * checkpoint). On the 0.8B shape a copy (~19 MiB) takes a few ms against ~37 ms per decode step
 * on one thread: under 1 % of decode; a next turn that parts from the answer re-feeds at most
 * this many tokens more than it must.
 */
const decodeCheckpointInterval = 16

/** The ops of the builder's Qwen3.5 decoder graph; anything else is a graph this file does not know. */
const knownOps = new Set([
  'Add',
  'And',
  'Cast',
  'CausalConvWithState',
  'Concat',
  'Cos',
  'Div',
  'DynamicQuantizeMatMul',
  'Expand',
  'Gather',
  'Identity',
  'LessOrEqual',
  'LinearAttention',
  'MatMul',
  'MatMulNBits',
  'Mul',
  'Neg',
  'Range',
  'ReduceSum',
  'Reshape',
  'Shape',
  'Sigmoid',
  'SimplifiedLayerNormalization',
  'Sin',
  'Slice',
  'Softmax',
  'Softplus',
  'Split',
  'Sqrt',
  'Squeeze',
  'Transpose',
  'Unsqueeze',
  'Where',
])

interface Mlp {
  readonly postNorm: Pointer
  readonly gate: Linear
  readonly up: Linear
  readonly down: Linear
}

interface DeltaLayer extends Mlp {
  readonly kind: 'linear'
  readonly inputNorm: Pointer
  readonly qkv: Linear
  readonly z: Linear
  readonly b: Linear
  readonly a: Linear
  readonly out: Linear
  /** [kernel, channels] (repacked from the stored [channels, 1, kernel]). */
  readonly convWeight: Pointer
  readonly negExpALog: Pointer
  readonly dtBias: Pointer
  readonly norm: Pointer
  /**
   * Which delta layer this is: its block in a session's states (statesOf) holds the conv state
   * [kernel − 1, channels], oldest first, then the recurrent state [value heads, dk, dv].
   */
  readonly deltaIndex: number
}

interface AttentionLayer extends Mlp {
  readonly kind: 'full'
  readonly inputNorm: Pointer
  readonly q: Linear
  readonly k: Linear
  readonly v: Linear
  readonly o: Linear
  readonly qNorm: Pointer
  readonly kNorm: Pointer
  /** Index among the attention layers (the KV cache's layer). */
  readonly cacheLayer: number
}

interface Checkpoint {
  readonly length: number
  /** Every Gated DeltaNet layer's conv then recurrent state, concatenated. */
  readonly states: Float32Array
}

/** The initializer name of the linear layer `name` in whichever format the file holds. */
function linearWeightName(graph: OnnxWeights, name: string): string {
  for (const suffix of ['.q4', '.int8', '']) if (graph.has(`${name}${suffix}`)) return `${name}${suffix}`
  throw new EngineUnsupportedError(
    `${graph.path} has no weight for ${name} under the names ondevice's builder writes; the engine runs Qwen3.5 packages from \`ondevice convert\` / \`ondevice fixture\`.`,
  )
}

function integer(raw: Readonly<Record<string, unknown>>, field: string, fallback: number): number {
  const value = raw[field] ?? fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0)
    throw new ModelError(
      'model_invalid',
      `config.json: "${field}" must be a positive integer, got ${JSON.stringify(value)}.`,
    )
  return value
}

export async function loadQwen35(context: LoadContext): Promise<EngineModel> {
  const { config, graph, kernels } = context
  const embedGraph = context.files.embedTokens
  if (!embedGraph)
    throw new EngineUnsupportedError('a Qwen3.5 package needs onnx/embed_tokens*.onnx next to the decoder.')
  for (const node of graph.nodes)
    if (!knownOps.has(node.opType))
      throw new EngineUnsupportedError(
        `${graph.path} uses ${node.opType}, which the engine's Qwen3.5 decoder does not run.`,
      )
  const raw = config.raw
  const hidden = config.hiddenSize
  const intermediate = config.intermediateSize
  const vocabulary = config.vocabSize
  const eps = config.rmsNormEps
  const heads = config.numAttentionHeads
  const kvHeads = config.numKeyValueHeads
  const headDim = config.headDim
  const rotaryDim = Math.trunc(headDim * config.partialRotaryFactor)
  const linear = config.linearAttention
  const keyHeads = linear?.numKeyHeads ?? integer(raw, 'linear_num_key_heads', 16)
  const valueHeads = linear?.numValueHeads ?? integer(raw, 'linear_num_value_heads', 32)
  const dk = linear?.keyHeadDim ?? integer(raw, 'linear_key_head_dim', 128)
  const dv = linear?.valueHeadDim ?? integer(raw, 'linear_value_head_dim', 128)
  const kernel = linear?.convKernelDim ?? integer(raw, 'linear_conv_kernel_dim', 4)
  const interval = integer(raw, 'full_attention_interval', 4)
  const layerTypes =
    config.layerTypes ??
    Array.from({ length: config.numHiddenLayers }, (_, i) =>
      (i + 1) % interval === 0 ? 'full_attention' : 'linear_attention',
    )
  for (const [i, type] of layerTypes.entries())
    if (type !== 'full_attention' && type !== 'linear_attention')
      throw new EngineUnsupportedError(
        `config.json: layer ${i} is "${type}"; the engine runs linear_attention and full_attention.`,
      )
  if (valueHeads % keyHeads !== 0 || heads % kvHeads !== 0 || rotaryDim % 2 !== 0 || rotaryDim > headDim)
    throw new ModelError(
      'model_invalid',
      `config.json: value heads ${valueHeads} / key heads ${keyHeads}, heads ${heads} / kv heads ${kvHeads}, rotary ${rotaryDim} of ${headDim}: the heads must divide and the rotary width be even and at most head_dim.`,
    )
  if (kernel < 1 || kernel > 17)
    throw new EngineUnsupportedError(
      `linear_conv_kernel_dim ${kernel} is outside the 1..17 the conv kernel takes.`,
    )
  const keyDim = keyHeads * dk
  const valueDim = valueHeads * dv
  const channels = 2 * keyDim + valueDim
  const qWidth = heads * headDim
  const kvWidth = kvHeads * headDim
  const attentionLayers = layerTypes.filter((type) => type === 'full_attention').length
  const deltaLayers = layerTypes.length - attentionLayers
  const stateFloats = (kernel - 1) * channels + valueHeads * dk * dv

  // The graph must be the one this file implements: the fused delta rule with the scale and
  // head counts the config implies, and the SiLU conv.
  for (const node of graph.nodes) {
    if (node.opType === 'LinearAttention') {
      const a = node.attributes
      if (
        a.update_rule !== 'gated_delta' ||
        a.q_num_heads !== valueHeads ||
        a.kv_num_heads !== valueHeads ||
        typeof a.scale !== 'number' ||
        Math.abs(a.scale - 1 / Math.sqrt(dk)) > 1e-6
      )
        throw new EngineUnsupportedError(
          `${graph.path}: LinearAttention ${JSON.stringify(a)} is not the gated delta rule over ${valueHeads} heads with scale dk^-1/2 the engine runs.`,
        )
    }
    if (node.opType === 'CausalConvWithState' && node.attributes.activation !== 'silu')
      throw new EngineUnsupportedError(
        `${graph.path}: CausalConvWithState with activation ${String(node.attributes.activation)}; the engine runs silu.`,
      )
  }

  const maxK = Math.max(hidden, intermediate, valueDim, qWidth)
  const scratchFloats =
    chunk *
      (2 * hidden +
        2 * channels +
        3 * valueDim +
        2 * valueHeads +
        5 * qWidth +
        2 * kvWidth +
        2 * intermediate) +
    vocabulary
  const activationBytes = chunk * Math.ceil(maxK / 32) * (64 + 8)
  const kvBytesPerPosition = attentionLayers * 2 * kvWidth * 4
  // Each session's residual stream for a pass: what a pass carries from one layer to the next, so
  // other sessions may run their passes while it gives the event loop a turn between two layers.
  const residualBytes = chunk * hidden * 4
  context.checkFits(
    scratchFloats * 4 +
      activationBytes +
      (deltaLayers * stateFloats * 4 + residualBytes + 256 * kvBytesPerPosition) * context.sessions,
  )

  // A graph from another exporter names things differently: not ours to run (the caller falls back).
  const required = ['model.norm.weight.scale']
  for (const [i, type] of layerTypes.entries()) {
    const p = `model.layers.${i}`
    required.push(`${p}.input_layernorm.weight.scale`, `${p}.post_attention_layernorm.weight.scale`)
    if (type === 'full_attention')
      required.push(`${p}.self_attn.q_norm.weight.scale`, `${p}.self_attn.k_norm.weight.scale`)
    else
      for (const name of ['conv1d.weight', 'neg_exp_A_log', 'dt_bias', 'norm.scale'])
        required.push(`${p}.linear_attn.${name}`)
  }
  const missing = required.find((name) => !graph.has(name))
  if (missing !== undefined)
    throw new EngineUnsupportedError(
      `${graph.path} has no "${missing}": it was not written by ondevice's builder, whose Qwen3.5 graphs the engine reads.`,
    )

  const vector = (name: string, length: number) => context.loadVector(graph, name, length)
  const matrix = (name: string, n: number, k: number) =>
    context.loadLinear(graph, linearWeightName(graph, name), n, k)
  const head = await context.loadHead(graph, vocabulary, hidden)
  const embedding = await loadEmbedding(context, embedGraph, graph, vocabulary, hidden)
  const layers: (DeltaLayer | AttentionLayer)[] = []
  let cacheLayer = 0
  let deltaIndex = 0
  for (const [i, type] of layerTypes.entries()) {
    const p = `model.layers.${i}`
    const inputNorm = await vector(`${p}.input_layernorm.weight.scale`, hidden)
    let mixer: Omit<DeltaLayer, keyof Mlp> | Omit<AttentionLayer, keyof Mlp>
    if (type === 'linear_attention') {
      const l = `${p}.linear_attn`
      mixer = {
        kind: 'linear',
        inputNorm,
        qkv: await matrix(`${l}.in_proj_qkv.weight`, channels, hidden),
        z: await matrix(`${l}.in_proj_z.weight`, valueDim, hidden),
        b: await matrix(`${l}.in_proj_b.weight`, valueHeads, hidden),
        a: await matrix(`${l}.in_proj_a.weight`, valueHeads, hidden),
        out: await matrix(`${l}.out_proj.weight`, hidden, valueDim),
        convWeight: await loadConvWeight(context, graph, `${l}.conv1d.weight`, channels, kernel),
        negExpALog: await vector(`${l}.neg_exp_A_log`, valueHeads),
        dtBias: await vector(`${l}.dt_bias`, valueHeads),
        norm: await vector(`${l}.norm.scale`, dv),
        deltaIndex: deltaIndex++,
      }
    } else {
      const a = `${p}.self_attn`
      mixer = {
        kind: 'full',
        inputNorm,
        q: await matrix(`${a}.q_proj.weight`, 2 * qWidth, hidden),
        k: await matrix(`${a}.k_proj.weight`, kvWidth, hidden),
        v: await matrix(`${a}.v_proj.weight`, kvWidth, hidden),
        o: await matrix(`${a}.o_proj.weight`, hidden, qWidth),
        qNorm: await vector(`${a}.q_norm.weight.scale`, headDim),
        kNorm: await vector(`${a}.k_norm.weight.scale`, headDim),
        cacheLayer: cacheLayer++,
      }
    }
    const mlp: Mlp = {
      postNorm: await vector(`${p}.post_attention_layernorm.weight.scale`, hidden),
      gate: await matrix(`${p}.mlp.gate_proj.weight`, intermediate, hidden),
      up: await matrix(`${p}.mlp.up_proj.weight`, intermediate, hidden),
      down: await matrix(`${p}.mlp.down_proj.weight`, hidden, intermediate),
    }
    layers.push({ ...mixer, ...mlp } as DeltaLayer | AttentionLayer)
  }
  const finalNorm = await vector('model.norm.weight.scale', hidden)

  // Rotary inverse frequencies: the graph's own, as ONNX Runtime uses them (a config.json whose
  // rope_theta was changed must not rotate otherwise), else float32 of 1 / theta^(2j / rotary);
  // for text all three M-RoPE rows carry the same position, so this is plain partial RoPE.
  const half = rotaryDim / 2
  const stored = context.rotaryFrequencies(graph, half)
  const inverseFrequencies = stored
    ? await context.loadVector(graph, stored.name, half)
    : kernels.alloc(Math.max(1, half) * 4, 16)
  if (!stored)
    kernels
      .f32(inverseFrequencies, half)
      .set(Array.from({ length: half }, (_, j) => Math.fround(1 / config.ropeTheta ** ((2 * j) / rotaryDim))))

  context.allocateScratch(chunk, maxK)
  const alloc = (floats: number) => kernels.alloc(Math.max(1, floats) * 4, 16)
  const h = alloc(chunk * hidden)
  const t = alloc(chunk * hidden)
  const mixed = alloc(chunk * channels)
  const convolved = alloc(chunk * channels)
  const z = alloc(chunk * valueDim)
  const a = alloc(chunk * valueHeads)
  const b = alloc(chunk * valueHeads)
  const core = alloc(chunk * valueDim)
  // One slot per value head (see src/gated-delta.c), so threads splitting the heads never share one.
  const deltaScratch = alloc(kernels.k.qwen35_gated_delta_scratch_floats(valueHeads, dk, dv))
  const projected = alloc(chunk * 2 * qWidth)
  const query = alloc(chunk * qWidth)
  const gateValues = alloc(chunk * qWidth)
  const attentionOut = alloc(chunk * qWidth)
  const keys = alloc(chunk * kvWidth)
  const values = alloc(chunk * kvWidth)
  const mlpGate = alloc(chunk * intermediate)
  const mlpUp = alloc(chunk * intermediate)
  const logits = alloc(vocabulary)
  const ids = kernels.alloc(chunk * 4, 16)
  // One scores row per query head, so threads splitting the heads never share one.
  const scoresStride = attentionScoresStride(context.contextLength)
  const scores = alloc(heads * scoresStride)
  // Everything above is shared by the instance's sessions: a pass uses it within a layer. Each
  // session has its own residual stream, recurrent states (one block for every delta layer, so a
  // checkpoint is one copy) and KV cache after it.
  const statesLength = deltaLayers * stateFloats
  const capacity =
    attentionLayers === 0
      ? context.contextLength
      : kvCacheCapacity(
          kernels,
          context.contextLength,
          kvBytesPerPosition * context.sessions,
          (statesLength * 4 + residualBytes) * context.sessions,
        )
  const slots = new SessionSlots(kernels, statesLength * 4 + residualBytes, () => ({
    residual: alloc(chunk * hidden),
    statesBase: alloc(statesLength),
    cache:
      attentionLayers === 0 ? undefined : new KvCache(kernels, attentionLayers, kvHeads, headDim, capacity),
  }))
  const scale = 1 / Math.sqrt(headDim)
  const K = kernels.k

  const session = (): EngineModel => {
    const slot = slots.take()
    const statesBase = slot.statesBase
    const x = slot.residual
    const cache = slot.cache
    let released = false
    let length = 0
    let checkpoints: Checkpoint[] = []
    // The answer's latest state copy (decodeCheckpointInterval); its buffer is rewritten in place.
    let decodeCheckpoint: Checkpoint | undefined
    // A copy of the recurrent states is ~20 MiB on the 0.8B shape and every prompt takes one: a
    // buffer a dropped checkpoint (or an append's abort copy) leaves is kept for the next one, so a
    // prompt's time to first token pays a copy, not a fresh allocation, its page faults and its GC.
    let spare: Float32Array | undefined

    const saveStates = (): Float32Array => {
      const target = spare ?? new Float32Array(statesLength)
      spare = undefined
      target.set(kernels.f32(statesBase, statesLength))
      return target
    }
    const release = (states: Float32Array): void => {
      spare ??= states
    }
    const dropCheckpoints = (keep: (checkpoint: Checkpoint) => boolean): void => {
      for (const checkpoint of checkpoints) if (!keep(checkpoint)) release(checkpoint.states)
      checkpoints = checkpoints.filter(keep)
      if (decodeCheckpoint && !keep(decodeCheckpoint)) {
        release(decodeCheckpoint.states)
        decodeCheckpoint = undefined
      }
    }
    const allCheckpoints = (): Checkpoint[] =>
      decodeCheckpoint ? [...checkpoints, decodeCheckpoint] : checkpoints
    const loadStates = (states: Float32Array): void => kernels.f32(statesBase, states.length).set(states)
    const clearStates = (): void => {
      kernels.f32(statesBase, deltaLayers * stateFloats).fill(0)
    }
    // The arena hands back space that loading used as a slab, and a slot may come from a disposed
    // session: the states must start at zero.
    clearStates()

    // A generator: it pauses before every layer but the first, where the append may give the event
    // loop a turn (pass-size.ts); nothing but this session's residual stream `x` is carried across.
    // With wantLogits it returns them, copied out of the shared buffer in its last step (runPasses).
    function* forward(
      tokens: readonly number[],
      from: number,
      count: number,
      wantLogits: boolean,
    ): Generator<undefined, Float32Array | undefined> {
      const position0 = length
      cache?.reserve(position0 + count)
      kernels.i32(ids, count).set(tokens.slice(from, from + count))
      embedding.lookup(ids, count, x)
      for (const [index, layer] of layers.entries()) {
        if (index > 0) yield
        // The last layer feeds only the logits: past its cache or state update it runs for the last
        // position alone, and not at all in a pass that returns none (llama.cpp does the same).
        // Every row is computed on its own, so the kept row's bits are unchanged.
        const outputs = index < layers.length - 1 ? count : wantLogits ? 1 : 0
        const first = count - outputs
        K.rms_norm(x, layer.inputNorm, h, count, hidden, eps, 0)
        if (layer.kind === 'linear') {
          const convState = statesBase + layer.deltaIndex * stateFloats * 4
          const recurrentState = convState + (kernel - 1) * channels * 4
          runShared([layer.qkv, layer.z, layer.b, layer.a], h, count, [mixed, z, b, a])
          // Channels split across threads (four at a time).
          kernels.parallel(
            'qwen35_causal_conv_silu',
            [mixed, convState, layer.convWeight, convolved, count, channels, kernel],
            channels,
            4,
          )
          // Value heads split across threads (eps, argument 19, is a float).
          kernels.parallel(
            'qwen35_gated_delta',
            [
              convolved,
              channels,
              z,
              valueDim,
              a,
              b,
              valueHeads,
              layer.negExpALog,
              layer.dtBias,
              layer.norm,
              recurrentState,
              core,
              valueDim,
              deltaScratch,
              count,
              keyHeads,
              valueHeads,
              dk,
              dv,
              eps,
            ],
            valueHeads,
            1,
            1 << 19,
          )
          if (outputs === 0) continue
          layer.out.run(core + first * valueDim * 4, outputs, t)
        } else {
          if (outputs === count) runShared([layer.q, layer.k, layer.v], h, count, [projected, keys, values])
          else {
            runShared([layer.k, layer.v], h, count, [keys, values])
            if (outputs > 0) layer.q.run(h + first * hidden * 4, outputs, projected)
          }
          K.qwen35_split_query_gate(projected, query, gateValues, outputs, heads, headDim)
          K.rms_norm(query, layer.qNorm, query, outputs * heads, headDim, eps, 0)
          K.rms_norm(keys, layer.kNorm, keys, count * kvHeads, headDim, eps, 0)
          K.rope(query, outputs, heads, headDim, rotaryDim, position0 + first, inverseFrequencies)
          K.rope(keys, count, kvHeads, headDim, rotaryDim, position0, inverseFrequencies)
          const l = layer.cacheLayer
          cache?.attend(l, {
            keys,
            values,
            query,
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
          K.qwen35_sigmoid_gate(attentionOut, gateValues, outputs * qWidth)
          layer.o.run(attentionOut, outputs, t)
        }
        feedForward(layer, x + first * hidden * 4, t, { normed: h, gate: mlpGate, up: mlpUp }, outputs, eps)
      }
      length += count
      if (wantLogits) {
        K.rms_norm(x + (count - 1) * hidden * 4, finalNorm, h, 1, hidden, eps, 0)
        head.run(h, 1, logits)
        return kernels.f32(logits, vocabulary).slice()
      }
      return undefined
    }

    const remember = (): void => {
      // A prompt's checkpoints are later than the answer's copy: that one's buffer serves them.
      dropCheckpoints((c) => c.length !== length && c !== decodeCheckpoint)
      const all = [...checkpoints, { length, states: saveStates() }]
      for (const dropped of all.slice(0, -maxCheckpoints)) release(dropped.states)
      checkpoints = all.slice(-maxCheckpoints)
    }
    const rememberDecodeStep = (): void => {
      let latest = 0
      for (const c of allCheckpoints()) latest = Math.max(latest, c.length)
      if (length - latest < decodeCheckpointInterval) return
      const states = decodeCheckpoint?.states
      if (states) states.set(kernels.f32(statesBase, statesLength))
      decodeCheckpoint = { length, states: states ?? saveStates() }
    }

    /**
     * What an aborted append restores: the state it started from. At length 0 that is zeros, and
     * where a checkpoint holds this length it is that checkpoint (read, not copied: nothing drops
     * checkpoints until the append ends); otherwise a copy.
     */
    const startOf = (): {
      readonly length: number
      readonly states: Float32Array | undefined
      readonly copied: boolean
    } => {
      if (length === 0) return { length, states: undefined, copied: false }
      const checkpoint = allCheckpoints().find((c) => c.length === length)
      if (checkpoint) return { length, states: checkpoint.states, copied: false }
      return { length, states: saveStates(), copied: true }
    }

    return {
      config,
      dtype: context.dtype,
      vocabularySize: vocabulary,
      contextLength: capacity,
      kernels,
      get length() {
        return length
      },
      async append(tokenIds: readonly number[], options: EngineAppendOptions): Promise<Float32Array> {
        // A long append gives the event loop turns (between passes, and between layers inside a
        // pass: pass-size.ts) and can be aborted at each: keep the state it started from so the
        // cache goes back to it (a recurrent state cannot be cut back otherwise). A short one (a
        // decode step, a prompt's short chunk) runs as one pass without turns.
        const start = tokenIds.length > BASE_PASS_TOKENS && options.signal ? startOf() : undefined
        // The last pass's copy of the logits; checkpoints below touch only this session's states.
        let copied: Float32Array
        try {
          if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted')
          // Length moves only once a pass's last layer has run, so an abort at a turn inside a
          // pass restores the start state and the length alike.
          copied = await runPasses(
            tokenIds.length,
            inWorker,
            options.sliceMs,
            (from, count, last) => forward(tokenIds, from, count, last),
            async () => {
              await options.between?.()
              if (options.signal?.aborted) {
                if (start) {
                  if (start.states) loadStates(start.states)
                  else clearStates()
                  length = start.length
                }
                throw options.signal.reason ?? new Error('aborted')
              }
            },
          )
        } finally {
          if (start?.copied && start.states) release(start.states)
        }
        if (options.checkpoint) remember()
        else rememberDecodeStep()
        return copied
      },
      rewind(to: number): boolean {
        if (to === length) return true
        if (to === 0) {
          clearStates()
          length = 0
          dropCheckpoints(() => false)
          return true
        }
        const checkpoint = allCheckpoints().find((c) => c.length === to)
        if (!checkpoint || to > length) return false
        loadStates(checkpoint.states)
        length = to
        dropCheckpoints((c) => c.length <= to)
        return true
      },
      rewindableLength(limit: number): number {
        if (limit >= length) return length
        let best = 0
        for (const c of allCheckpoints()) if (c.length <= limit && c.length > best) best = c.length
        return best
      },
      reset(): void {
        clearStates()
        length = 0
        dropCheckpoints(() => false)
      },
      createSession: session,
      release(): void {
        if (released) return
        released = true
        dropCheckpoints(() => false)
        spare = undefined
        slots.give(slot)
      },
    }
  }
  return session()
}

/** The conv1d weight [channels, 1, kernel] as the kernel wants it: [kernel, channels]. */
async function loadConvWeight(
  context: LoadContext,
  graph: OnnxWeights,
  name: string,
  channels: number,
  kernel: number,
): Promise<Pointer> {
  const stored: Initializer = graph.expect(name, 'float32', [channels, 1, kernel])
  const bytes = new Uint8Array(stored.byteLength)
  await graph.readInto(stored, bytes, 0)
  const source = new Float32Array(bytes.buffer)
  const pointer = context.kernels.alloc(channels * kernel * 4, 16)
  const target = context.kernels.f32(pointer, channels * kernel)
  for (let c = 0; c < channels; c++)
    for (let j = 0; j < kernel; j++) target[j * channels + c] = source[c * kernel + j] as number
  return pointer
}

/**
 * The token embedding. The builder's Qwen3.5 q4 table (GatherBlockQuantized, quantize_axis 1)
 * packs two blocks' 4-bit zero points per byte ([vocab, ceil(blocks / 2)], even block in the low
 * nibble); embed_q4 takes one per byte, so they are unpacked once here (vocab · blocks bytes).
 * The tied LM head (MatMulNBits in the decoder) holds the same 4-bit bytes in its own file: when
 * they are byte for byte the same, the lookup reads the head's copy in the kernel's grouped layout
 * (embed_q4_grouped; 127 MiB less on the 0.8B shape). Every other table goes through the shared
 * loader.
 */
async function loadEmbedding(
  context: LoadContext,
  graph: OnnxWeights,
  decoder: OnnxWeights,
  vocabulary: number,
  hidden: number,
): Promise<Embedding> {
  const node = graph.consumers('input_ids').find((n) => n.opType === 'GatherBlockQuantized')
  const blocks = hidden / 32
  const packedPerRow = Math.ceil(blocks / 2)
  const zeroPointsName = node?.inputs[3]
  if (
    !node ||
    !zeroPointsName ||
    (node.attributes.bits ?? 4) !== 4 ||
    node.attributes.block_size !== 32 ||
    (node.attributes.gather_axis ?? 0) !== 0 ||
    !Number.isInteger(blocks) ||
    graph.get(zeroPointsName).elements !== vocabulary * packedPerRow ||
    packedPerRow === blocks
  )
    return context.loadEmbedding(graph, vocabulary, hidden)
  const data = graph.expect(node.inputs[0] as string, 'uint8', [vocabulary, hidden / 2])
  const scales = graph.get(node.inputs[2] as string)
  if (scales.type !== 'float32' || scales.elements !== vocabulary * blocks)
    throw new ModelError(
      'model_invalid',
      `${graph.path}: embedding scales are ${scales.type}[${scales.dims.join(', ')}], expected ${vocabulary * blocks} float32.`,
    )
  const packed = graph.expect(zeroPointsName, 'uint8', [vocabulary, packedPerRow])
  const kernels = context.kernels
  const shared = await sharedHeadBytes(context, graph, data, decoder, vocabulary, blocks)
  const dataPointer = shared ?? (await context.loadRaw(graph, data))
  const scalesPointer = await context.loadRaw(graph, scales)
  const zeroPoints = kernels.alloc(vocabulary * blocks, 16)
  // Streamed in slabs of rows: no full copy of the packed table in JS.
  const rowsPerSlab = 65536
  const slab = new Uint8Array(Math.min(vocabulary, rowsPerSlab) * packedPerRow)
  for (let row0 = 0; row0 < vocabulary; row0 += rowsPerSlab) {
    const rows = Math.min(rowsPerSlab, vocabulary - row0)
    const view = slab.subarray(0, rows * packedPerRow)
    await graph.readInto(packed, view, row0 * packedPerRow)
    const target = kernels.bytes(zeroPoints + row0 * blocks, rows * blocks)
    for (let r = 0; r < rows; r++)
      for (let b = 0; b < blocks; b++) {
        const byte = view[r * packedPerRow + (b >> 1)] as number
        target[r * blocks + b] = b & 1 ? byte >> 4 : byte & 15
      }
  }
  const k = kernels.k
  const lookup = shared === undefined ? k.embed_q4 : k.embed_q4_grouped
  return new Embedding(kernels, vocabulary, hidden, (ids, count, out) =>
    lookup(dataPointer, scalesPointer, zeroPoints, hidden, ids, count, out),
  )
}

/**
 * The arena copy of the LM head's 4-bit bytes (in the kernel's grouped layout) when `data` (the
 * embedding table's) is the same bytes: the head must be a MatMulNBits whose weight has as many
 * bytes, and the embedding's copy must equal it, regrouped slab by slab and compared with the
 * head already in memory (one read of the embedding's copy). Undefined otherwise.
 */
async function sharedHeadBytes(
  context: LoadContext,
  graph: OnnxWeights,
  data: Initializer,
  decoder: OnnxWeights,
  vocabulary: number,
  blocks: number,
): Promise<Pointer | undefined> {
  let node = decoder.producer('logits')
  for (let depth = 0; node && node.opType === 'Identity' && depth < 4; depth++)
    node = decoder.producer(node.inputs[0] as string)
  const name = node?.opType === 'MatMulNBits' ? node.inputs[1] : undefined
  if (!name || !decoder.has(name)) return undefined
  const head = decoder.get(name)
  if (head.type !== 'uint8' || head.byteLength !== data.byteLength) return undefined
  // Loaded with the LM head already (the same key): no read here.
  const grouped = await context.loadQ4Grouped(decoder, head, vocabulary, blocks)
  return (await context.matchesQ4Grouped(graph, data, grouped, vocabulary, blocks)) ? grouped : undefined
}
