// Qwen3.5 (text) → llama.cpp's `qwen35` architecture: metadata keys, tensor names and the layout
// changes llama.cpp's converter (convert_hf_to_gguf.py: Qwen3NextModel, its V-head reordering
// base class and Qwen3_5TextModel) applies to the Hugging Face weights, so the file is the one
// llama.cpp itself would write. What is changed, and why (llama.cpp's graph, src/models/qwen35.cpp):
// - Zero-centred RMSNorms (input, post-attention, final, q_norm, k_norm) are stored as 1 + w: its
//   RMSNorm multiplies by the weight as stored. The gated norm of the linear layers (HF
//   `linear_attn.norm`, a plain weight) is stored as is.
// - A_log is stored as ssm_a = -exp(A_log) (the graph multiplies softplus(a + dt_bias) by it);
//   dt_bias becomes ssm_dt.bias; conv1d [C, 1, K] loses its middle axis.
// - When V heads outnumber K heads, HF groups the V heads by the K head they share
//   (K0: v0 v1, K1: v0 v1); ggml broadcasts q/k by tiling (K0 K1 K0 K1), so the V heads move to
//   tiled order everywhere they appear: the V rows of in_proj_qkv and of the conv, in_proj_z,
//   in_proj_b, in_proj_a, A_log, dt_bias and the columns of out_proj. The model computes the same
//   function; only the head numbering changes.
// - The gated attention keeps HF's q_proj as attn_q (per head [query | gate], 2·head_dim rows):
//   llama.cpp splits it with strided views the same way.
import { InvalidArgumentError } from '../../core/errors.ts'
import { convDim, type Qwen35Config, rotaryDim } from '../architectures/qwen3-5-config.ts'
import { type Qwen35Model, validateQwen35Weights } from '../architectures/qwen3-5-reference.ts'
import { attentionShapeMetadata, type GgufValue, gguf } from './gguf-file.ts'

/** One tensor to write: ggml dims (fastest axis first) and its float values in that order. */
export interface GgufTensorPlan {
  readonly name: string
  readonly dims: readonly number[]
  /** 'matrix': written in the export's type; 'float': always F32 (norms, biases, the conv kernel). */
  readonly kind: 'matrix' | 'float'
  readonly values: () => Float32Array
}

/** The model types that mean Qwen3.5's text model. */
export const qwen35ModelTypes = ['qwen3_5', 'qwen3_5_text'] as const

/** HF's layer types as llama.cpp's one key can say them: full attention every `interval` layers. */
function fullAttentionInterval(config: Qwen35Config): number {
  const first = config.layerTypes.indexOf('full_attention')
  const interval = first + 1
  const regular =
    first >= 0 &&
    config.layerTypes.every((type, i) => (type === 'full_attention') === ((i + 1) % interval === 0))
  if (!regular)
    throw new InvalidArgumentError(
      'weights',
      `GGUF export writes Qwen3.5 layer patterns llama.cpp reads from full_attention_interval (full attention on every n-th layer); this model's layer_types are [${config.layerTypes.join(', ')}].`,
    )
  return interval
}

/** Refuses a Qwen3.5 shape llama.cpp's qwen35 graph cannot run, before anything is written. */
export function checkQwen35ForGguf(model: Qwen35Model): void {
  const config = model.config
  // llama.cpp sizes the recurrent state and the gated norm from one head width (ssm.state_size).
  if (config.linearKeyHeadDim !== config.linearValueHeadDim)
    throw new InvalidArgumentError(
      'weights',
      `llama.cpp's qwen35 needs linear_key_head_dim = linear_value_head_dim; this model has ${config.linearKeyHeadDim} and ${config.linearValueHeadDim}.`,
    )
  fullAttentionInterval(config)
  try {
    validateQwen35Weights(config, model.weights)
  } catch (error) {
    throw new InvalidArgumentError('weights', (error as Error).message)
  }
}

export function qwen35Metadata(config: Qwen35Config): [string, GgufValue][] {
  const arch = 'qwen35'
  return [
    ...attentionShapeMetadata(arch, config),
    // Partial rotary: only the first head_dim · partial_rotary_factor values of each head turn.
    [`${arch}.rope.dimension_count`, gguf.u32(rotaryDim(config))],
    // Interleaved M-RoPE sections (T, H, W, and a fourth llama.cpp has for other models).
    [`${arch}.rope.dimension_sections`, gguf.i32s([...config.mropeSection, 0])],
    [`${arch}.rope.freq_base`, gguf.f32(config.ropeTheta)],
    [`${arch}.attention.layer_norm_rms_epsilon`, gguf.f32(config.rmsNormEps)],
    [`${arch}.vocab_size`, gguf.u32(config.vocabSize)],
    // Gated DeltaNet, in llama.cpp's SSM vocabulary.
    [`${arch}.ssm.conv_kernel`, gguf.u32(config.linearConvKernelDim)],
    [`${arch}.ssm.state_size`, gguf.u32(config.linearKeyHeadDim)],
    [`${arch}.ssm.group_count`, gguf.u32(config.linearNumKeyHeads)],
    [`${arch}.ssm.time_step_rank`, gguf.u32(config.linearNumValueHeads)],
    [`${arch}.ssm.inner_size`, gguf.u32(config.linearNumValueHeads * config.linearValueHeadDim)],
    [`${arch}.full_attention_interval`, gguf.u32(fullAttentionInterval(config))],
  ]
}

/**
 * For each V head in llama.cpp's tiled order, the HF (grouped) head it holds: position
 * v·K + k holds HF head k·r + v (K key heads, r = V heads per key head).
 */
export function tiledValueHeadOrder(config: Qwen35Config): number[] {
  const keyHeads = config.linearNumKeyHeads
  const perKey = config.linearNumValueHeads / keyHeads
  const order: number[] = []
  for (let v = 0; v < perKey; v++) for (let k = 0; k < keyHeads; k++) order.push(k * perKey + v)
  return order
}

/** `rows` of `width` values: blocks of `headRows` rows per V head, moved to tiled order from `offset` on. */
function reorderRows(
  data: Float32Array,
  width: number,
  offset: number,
  headRows: number,
  order: readonly number[],
): Float32Array {
  const out = data.slice()
  order.forEach((from, to) => {
    const source = (offset + from * headRows) * width
    out.set(data.subarray(source, source + headRows * width), (offset + to * headRows) * width)
  })
  return out
}

/** Columns in blocks of `headColumns` per V head, moved to tiled order (out_proj's input axis). */
function reorderColumns(
  data: Float32Array,
  rows: number,
  columns: number,
  headColumns: number,
  order: readonly number[],
): Float32Array {
  const out = new Float32Array(data.length)
  for (let r = 0; r < rows; r++)
    order.forEach((from, to) => {
      const source = r * columns + from * headColumns
      out.set(data.subarray(source, source + headColumns), r * columns + to * headColumns)
    })
  return out
}

/** The tensors of a Qwen3.5 text model in llama.cpp's names, shapes and layout (see the top). */
export function planQwen35Tensors(model: Qwen35Model): GgufTensorPlan[] {
  const { config, weights } = model
  const get = (name: string): Float32Array => {
    const found = weights.get(name)
    if (!found) throw new InvalidArgumentError('weights', `Qwen3.5 weights: "${name}" is missing.`)
    return found.data
  }
  const hidden = config.hiddenSize
  const plans: GgufTensorPlan[] = []
  const matrix = (name: string, rows: number, cols: number, values: () => Float32Array) =>
    plans.push({ name, dims: [cols, rows], kind: 'matrix', values })
  const floats = (name: string, dims: readonly number[], values: () => Float32Array) =>
    plans.push({ name, dims, kind: 'float', values })
  const onePlus = (name: string) => () => Float32Array.from(get(name), (w) => 1 + w)

  const valueHeads = config.linearNumValueHeads
  const dv = config.linearValueHeadDim
  const keyDim = config.linearNumKeyHeads * config.linearKeyHeadDim
  const valueDim = valueHeads * dv
  const channels = convDim(config)
  const kernel = config.linearConvKernelDim
  const order = tiledValueHeadOrder(config)
  const tiled = order.some((from, to) => from !== to)
  const rows = (data: Float32Array, width: number, offset: number, headRows: number) =>
    tiled ? reorderRows(data, width, offset, headRows, order) : data

  matrix('token_embd.weight', config.vocabSize, hidden, () => get('model.embed_tokens.weight'))
  for (let i = 0; i < config.numHiddenLayers; i++) {
    const p = `model.layers.${i}`
    const b = `blk.${i}`
    floats(`${b}.attn_norm.weight`, [hidden], onePlus(`${p}.input_layernorm.weight`))
    if (config.layerTypes[i] === 'full_attention') {
      const a = `${p}.self_attn`
      const heads = config.numAttentionHeads
      const kv = config.numKeyValueHeads * config.headDim
      matrix(`${b}.attn_q.weight`, 2 * heads * config.headDim, hidden, () => get(`${a}.q_proj.weight`))
      matrix(`${b}.attn_k.weight`, kv, hidden, () => get(`${a}.k_proj.weight`))
      matrix(`${b}.attn_v.weight`, kv, hidden, () => get(`${a}.v_proj.weight`))
      matrix(`${b}.attn_output.weight`, hidden, heads * config.headDim, () => get(`${a}.o_proj.weight`))
      floats(`${b}.attn_q_norm.weight`, [config.headDim], onePlus(`${a}.q_norm.weight`))
      floats(`${b}.attn_k_norm.weight`, [config.headDim], onePlus(`${a}.k_norm.weight`))
    } else {
      const l = `${p}.linear_attn`
      matrix(`${b}.attn_qkv.weight`, channels, hidden, () =>
        rows(get(`${l}.in_proj_qkv.weight`), hidden, 2 * keyDim, dv),
      )
      matrix(`${b}.attn_gate.weight`, valueDim, hidden, () =>
        rows(get(`${l}.in_proj_z.weight`), hidden, 0, dv),
      )
      // ggml_ssm_conv takes an F32 kernel [K, channels].
      floats(`${b}.ssm_conv1d.weight`, [kernel, channels], () =>
        rows(get(`${l}.conv1d.weight`), kernel, 2 * keyDim, dv),
      )
      floats(`${b}.ssm_dt.bias`, [valueHeads], () => rows(get(`${l}.dt_bias`), 1, 0, 1))
      floats(`${b}.ssm_a`, [valueHeads], () =>
        rows(
          Float32Array.from(get(`${l}.A_log`), (v) => -Math.exp(v)),
          1,
          0,
          1,
        ),
      )
      matrix(`${b}.ssm_beta.weight`, valueHeads, hidden, () =>
        rows(get(`${l}.in_proj_b.weight`), hidden, 0, 1),
      )
      matrix(`${b}.ssm_alpha.weight`, valueHeads, hidden, () =>
        rows(get(`${l}.in_proj_a.weight`), hidden, 0, 1),
      )
      floats(`${b}.ssm_norm.weight`, [dv], () => get(`${l}.norm.weight`))
      matrix(`${b}.ssm_out.weight`, hidden, valueDim, () =>
        tiled
          ? reorderColumns(get(`${l}.out_proj.weight`), hidden, valueDim, dv, order)
          : get(`${l}.out_proj.weight`),
      )
    }
    floats(`${b}.post_attention_norm.weight`, [hidden], onePlus(`${p}.post_attention_layernorm.weight`))
    matrix(`${b}.ffn_gate.weight`, config.intermediateSize, hidden, () => get(`${p}.mlp.gate_proj.weight`))
    matrix(`${b}.ffn_up.weight`, config.intermediateSize, hidden, () => get(`${p}.mlp.up_proj.weight`))
    matrix(`${b}.ffn_down.weight`, hidden, config.intermediateSize, () => get(`${p}.mlp.down_proj.weight`))
  }
  floats('output_norm.weight', [hidden], onePlus('model.norm.weight'))
  // Tied embeddings: llama.cpp reads token_embd for the output when `output` is absent.
  if (!config.tieWordEmbeddings)
    matrix('output.weight', config.vocabSize, hidden, () => get('lm_head.weight'))
  return plans
}
