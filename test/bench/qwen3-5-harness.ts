// A small driver for a Qwen3.5 package's two ONNX graphs (embed_tokens + decoder_model_merged)
// on onnxruntime-node or onnxruntime-web: it builds the empty conv / recurrent / KV inputs from
// the decoder's input metadata, carries present_* to past_* between runs, and returns every
// position's logits. Used by the parity tests and the prefill benchmark; the product's session
// code lives in client-runtime/.

import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type * as OrtNode from 'onnxruntime-node'

type Ort = Pick<typeof OrtNode, 'InferenceSession' | 'Tensor'>
type Session = OrtNode.InferenceSession
type Tensor = OrtNode.Tensor

export interface Qwen35RunResult {
  /** [positions, vocab] row-major: every input position, or the last `logitsToKeep`. */
  readonly logits: Float32Array
  /** Positions that got logits. */
  readonly sequenceLength: number
  readonly vocabularySize: number
}

export class Qwen35OrtRunner {
  readonly ort: Ort
  readonly embed: Session
  readonly decoder: Session
  /** The past_* feeds for the next run. */
  past: Record<string, Tensor> = {}
  /** Tokens consumed so far. */
  position = 0

  private constructor(ort: Ort, embed: Session, decoder: Session) {
    this.ort = ort
    this.embed = embed
    this.decoder = decoder
    this.reset()
  }

  /** Opens `onnx/embed_tokens{suffix}.onnx` and `onnx/decoder_model_merged{suffix}.onnx` of a package folder. */
  static async open(
    ort: Ort,
    folder: string,
    suffix = '',
    options: OrtNode.InferenceSession.SessionOptions = {},
  ): Promise<Qwen35OrtRunner> {
    const load = async (name: string): Promise<Session> => {
      const path = join(folder, 'onnx', `${name}${suffix}.onnx`)
      // Over 2 GiB of weights cannot be one Node buffer: let onnxruntime-node read the files itself.
      const dataBytes = await stat(`${path}_data`).then(
        (s) => s.size,
        () => 0,
      )
      if (dataBytes >= 2 ** 31 - 1) return ort.InferenceSession.create(path, options)
      const model = new Uint8Array(await readFile(path))
      let externalData: { path: string; data: Uint8Array }[] = []
      try {
        externalData = [
          { path: `${name}${suffix}.onnx_data`, data: new Uint8Array(await readFile(`${path}_data`)) },
        ]
      } catch {
        // No external data: every weight is inline.
      }
      return ort.InferenceSession.create(model, { ...options, externalData })
    }
    return new Qwen35OrtRunner(ort, await load('embed_tokens'), await load('decoder_model_merged'))
  }

  /** Empty caches, shaped from the decoder's input metadata (symbolic dims: batch 1, past 0). */
  reset(): void {
    this.past = {}
    this.position = 0
    for (const meta of this.decoder.inputMetadata) {
      if (!meta.isTensor || !/^past_/.test(meta.name)) continue
      const dims = meta.shape.map((d) =>
        typeof d === 'number' && d >= 0 ? d : /batch/.test(String(d)) ? 1 : 0,
      )
      const size = dims.reduce((a, b) => a * b, 1)
      this.past[meta.name] = new this.ort.Tensor('float32', new Float32Array(size), dims)
    }
  }

  /** Runs `tokenIds`; `logitsToKeep` = how many final positions get logits (0 = all, the default). */
  async run(tokenIds: readonly number[], logitsToKeep = 0): Promise<Qwen35RunResult> {
    const { Tensor } = this.ort
    const length = tokenIds.length
    const embedded = await this.embed.run({
      input_ids: new Tensor('int64', BigInt64Array.from(tokenIds, BigInt), [1, length]),
    })
    const total = this.position + length
    const positions = new BigInt64Array(3 * length)
    for (let row = 0; row < 3; row++)
      for (let t = 0; t < length; t++) positions[row * length + t] = BigInt(this.position + t)
    const outputs = await this.decoder.run({
      ...this.past,
      inputs_embeds: embedded.inputs_embeds as Tensor,
      attention_mask: new Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]),
      position_ids: new Tensor('int64', positions, [3, 1, length]),
      ...(this.decoder.inputNames.includes('num_logits_to_keep')
        ? { num_logits_to_keep: new Tensor('int64', BigInt64Array.from([BigInt(logitsToKeep)]), []) }
        : {}),
    })
    const next: Record<string, Tensor> = {}
    for (const [name, value] of Object.entries(outputs)) {
      const pastName = name.startsWith('present_conv.')
        ? name.replace('present_conv.', 'past_conv.')
        : name.startsWith('present_recurrent.')
          ? name.replace('present_recurrent.', 'past_recurrent.')
          : name.startsWith('present.')
            ? name.replace('present.', 'past_key_values.')
            : undefined
      if (pastName) next[pastName] = value
    }
    this.past = next
    this.position = total
    const logits = outputs.logits as Tensor
    const vocabularySize = logits.dims[2] as number
    return { logits: logits.data as Float32Array, sequenceLength: logits.dims[1] as number, vocabularySize }
  }

  /** Current state tensors by past_* name (copies). */
  stateSnapshot(): Record<string, Float32Array> {
    return Object.fromEntries(
      Object.entries(this.past).map(([name, value]) => [name, (value.data as Float32Array).slice()]),
    )
  }

  async release(): Promise<void> {
    await this.embed.release()
    await this.decoder.release()
  }
}

export async function readJson(path: string): Promise<unknown> {
  return JSON.parse(await readFile(path, 'utf8')) as unknown
}
