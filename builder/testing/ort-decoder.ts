// A minimal KV-cached runner for the Llama/Qwen3 graphs, over whichever ONNX Runtime the caller
// passes in (onnxruntime-node or onnxruntime-web): enough for parity tests, agreement figures and
// `ondevice logits`. The full ModelSession lives in client-runtime/. The ORT module is described
// structurally so builder/ does not depend on a runtime package.

export interface OrtTensorLike {
  readonly data: unknown
  readonly dims: readonly number[]
  readonly type: string
}

export interface OrtSessionLike {
  readonly inputNames: readonly string[]
  readonly outputNames: readonly string[]
  run(feeds: Record<string, OrtTensorLike>): Promise<Record<string, OrtTensorLike>>
  release(): Promise<void>
}

export interface OrtModuleLike {
  readonly Tensor: new (
    type: 'int64' | 'float32',
    data: BigInt64Array | Float32Array,
    dims: readonly number[],
  ) => OrtTensorLike
  readonly InferenceSession: {
    create(pathOrBytes: string | Uint8Array, options?: Record<string, unknown>): Promise<OrtSessionLike>
  }
}

export class OrtDecoder {
  readonly #ort: OrtModuleLike
  readonly #session: OrtSessionLike
  readonly #layers: number
  readonly kvHeads: number
  readonly headDim: number
  #past: Record<string, OrtTensorLike> = {}
  #length = 0

  private constructor(ort: OrtModuleLike, session: OrtSessionLike, kvHeads: number, headDim: number) {
    this.#ort = ort
    this.#session = session
    this.#layers = session.inputNames.filter((n) => /^past_key_values\.\d+\.key$/.test(n)).length
    this.kvHeads = kvHeads
    this.headDim = headDim
    this.reset()
  }

  /** Opens `modelPath` (an .onnx file; its `_data` file sits beside it). */
  static async create(
    ort: OrtModuleLike,
    modelPath: string,
    shape: { kvHeads: number; headDim: number },
    options: Record<string, unknown> = {},
  ): Promise<OrtDecoder> {
    // One thread by default: tests run two files at once on two cores, and tiny graphs gain nothing.
    const session = await ort.InferenceSession.create(modelPath, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      ...options,
    })
    return new OrtDecoder(ort, session, shape.kvHeads, shape.headDim)
  }

  /**
   * Opens an .onnx file from its bytes, handing its `_data` file (if any) to ORT as external data:
   * the way onnxruntime-web loads models, which cannot read a path's neighbours itself.
   */
  static async createFromBytes(
    ort: OrtModuleLike,
    files: { model: Uint8Array; externalData?: { path: string; data: Uint8Array } },
    shape: { kvHeads: number; headDim: number },
    options: Record<string, unknown> = {},
  ): Promise<OrtDecoder> {
    const session = await ort.InferenceSession.create(files.model, {
      ...(files.externalData ? { externalData: [files.externalData] } : {}),
      ...options,
    })
    return new OrtDecoder(ort, session, shape.kvHeads, shape.headDim)
  }

  get length(): number {
    return this.#length
  }

  reset(): void {
    this.#length = 0
    this.#past = {}
    const empty = new Float32Array(0)
    for (let i = 0; i < this.#layers; i++)
      for (const part of ['key', 'value'])
        this.#past[`past_key_values.${i}.${part}`] = new this.#ort.Tensor('float32', empty, [
          1,
          this.kvHeads,
          0,
          this.headDim,
        ])
  }

  /**
   * Feeds tokens (one call, any count); returns the logits of every new position, or of the last
   * `logitsToKeep` when given (graphs with a num_logits_to_keep input compute only those; for a
   * graph without it, built before it existed, the others are computed and dropped here).
   */
  async append(tokenIds: readonly number[], logitsToKeep = 0): Promise<Float32Array[]> {
    const s = tokenIds.length
    const total = this.#length + s
    const ids = new this.#ort.Tensor('int64', BigInt64Array.from(tokenIds, BigInt), [1, s])
    const mask = new this.#ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total])
    const positions = new this.#ort.Tensor(
      'int64',
      BigInt64Array.from({ length: s }, (_, i) => BigInt(this.#length + i)),
      [1, s],
    )
    const result = await this.#session.run({
      input_ids: ids,
      attention_mask: mask,
      position_ids: positions,
      ...(this.#session.inputNames.includes('num_logits_to_keep')
        ? {
            num_logits_to_keep: new this.#ort.Tensor('int64', BigInt64Array.of(BigInt(logitsToKeep)), []),
          }
        : {}),
      ...this.#past,
    })
    for (let i = 0; i < this.#layers; i++) {
      this.#past[`past_key_values.${i}.key`] = result[`present.${i}.key`]!
      this.#past[`past_key_values.${i}.value`] = result[`present.${i}.value`]!
    }
    this.#length = total
    const logits = result.logits!
    const vocab = logits.dims[2]!
    const data = logits.data as Float32Array
    const rows = logits.dims[1]!
    const wanted = logitsToKeep > 0 ? Math.min(logitsToKeep, rows) : rows
    return Array.from({ length: wanted }, (_, i) =>
      data.slice((rows - wanted + i) * vocab, (rows - wanted + i + 1) * vocab),
    )
  }

  async release(): Promise<void> {
    await this.#session.release()
  }
}

export function argmax(values: Float32Array): number {
  let best = 0
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i
  return best
}

export function maxAbsDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`)
  let max = 0
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!))
  return max
}

/**
 * Top-1 agreement of `other` with `baseline`: the baseline decodes greedily for `steps` tokens
 * after `prompt`; `other` is fed the same tokens (teacher forcing) and each of its argmaxes is
 * compared with the baseline's. Both decoders are reset first.
 */
export async function topOneAgreement(
  baseline: OrtDecoder,
  other: OrtDecoder,
  prompt: readonly number[],
  steps: number,
): Promise<{ agreement: number; tokens: number[] }> {
  baseline.reset()
  other.reset()
  let a = (await baseline.append(prompt)).at(-1)!
  let b = (await other.append(prompt)).at(-1)!
  let agree = 0
  const tokens: number[] = []
  for (let i = 0; i < steps; i++) {
    const token = argmax(a)
    tokens.push(token)
    if (argmax(b) === token) agree++
    ;[a] = (await baseline.append([token])) as [Float32Array]
    ;[b] = (await other.append([token])) as [Float32Array]
  }
  return { agreement: agree / steps, tokens }
}
