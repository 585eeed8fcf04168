import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, describe, expect, it } from 'vitest'
import { parseModelConfig } from '../../core/model-package.ts'
import { writeModelFile } from '../onnx/index.ts'
import { ReferenceModel } from '../reference/reference-model.ts'
import { argmax, maxAbsDifference, OrtDecoder } from '../testing/ort-decoder.ts'
import { architectureFor } from './decoder-graph.ts'
import { randomDecoderWeights } from './random-weights.ts'

const folder = mkdtempSync(join(tmpdir(), 'ondevice-parity-'))
afterAll(() => rmSync(folder, { recursive: true, force: true }))

const configs = {
  llama: parseModelConfig({
    model_type: 'llama',
    hidden_size: 48,
    intermediate_size: 96,
    num_hidden_layers: 2,
    num_attention_heads: 6,
    num_key_value_heads: 2,
    vocab_size: 300,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
  }),
  'llama (llama3 rope scaling)': parseModelConfig({
    model_type: 'llama',
    hidden_size: 64,
    intermediate_size: 96,
    num_hidden_layers: 1,
    num_attention_heads: 4,
    num_key_value_heads: 1,
    vocab_size: 300,
    rope_theta: 500000,
    rope_scaling: {
      rope_type: 'llama3',
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 64,
    },
    tie_word_embeddings: true,
  }),
  qwen3: parseModelConfig({
    model_type: 'qwen3',
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 32,
    vocab_size: 320,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000,
    tie_word_embeddings: true,
  }),
}

const tokens = Array.from({ length: 40 }, (_, i) => (i * 37 + 11) % 300)

const cases = Object.entries(configs).flatMap(([name, config]) =>
  (['plain', 'gqa'] as const).map((attention) => [name, attention, config] as const),
)

describe.each(cases)(
  '%s ONNX graph (%s attention) vs the TypeScript reference (fp32)',
  (name, attention, config) => {
    it('matches for full prefills and prefill + token-by-token decode at several lengths', async () => {
      const weights = randomDecoderWeights(config, 7)
      const path = join(folder, `${name.replace(/\W+/g, '-')}-${attention}.onnx`)
      writeModelFile(architectureFor(weights).buildGraph('fp32', { attention }), path)
      const decoder = await OrtDecoder.create(ort, path, {
        kvHeads: config.numKeyValueHeads,
        headDim: config.headDim,
      })
      const reference = new ReferenceModel(weights)
      const expected = reference.forward(tokens)
      let worst = 0
      try {
        for (const length of [1, 5, 17, 40]) {
          decoder.reset()
          const prefill = await decoder.append(tokens.slice(0, length))
          for (let i = 0; i < length; i++)
            worst = Math.max(worst, maxAbsDifference(prefill[i]!, expected[i]!))
        }
        for (const prefillLength of [1, 3, 12]) {
          decoder.reset()
          await decoder.append(tokens.slice(0, prefillLength))
          for (let i = prefillLength; i < prefillLength + 14; i++) {
            const [logits] = await decoder.append([tokens[i]!])
            worst = Math.max(worst, maxAbsDifference(logits!, expected[i]!))
          }
        }
      } finally {
        await decoder.release()
      }
      console.log(
        `${name} (${attention} attention) fp32 parity: max abs logit difference ${worst.toExponential(2)}`,
      )
      expect(worst).toBeLessThanOrEqual(1e-4)
      // Logits spread a few units, so the comparison is not trivially small numbers.
      const spread = Math.max(...expected[5]!) - Math.min(...expected[5]!)
      expect(spread).toBeGreaterThan(2)
    })
  },
)

describe('batched, left-padded input (attention_mask zeros)', () => {
  it('gives each row the logits it gets alone, in prefill and in decode', async () => {
    const config = configs.qwen3
    const weights = randomDecoderWeights(config, 8)
    const path = join(folder, 'batched.onnx')
    writeModelFile(architectureFor(weights).buildGraph('fp32'), path)
    const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 1 })
    const int64 = (values: number[], dims: number[]) =>
      new ort.Tensor('int64', BigInt64Array.from(values, BigInt), dims)
    const empty = new ort.Tensor('float32', new Float32Array(0), [2, 2, 0, 32])
    const pasts: Record<string, ort.Tensor> = {}
    for (let i = 0; i < 2; i++) {
      pasts[`past_key_values.${i}.key`] = empty
      pasts[`past_key_values.${i}.value`] = empty
    }
    // Row 0: two pads then [7, 8, 9]; row 1: [1, 2, 3, 4, 5].
    const everyPosition = new ort.Tensor('int64', BigInt64Array.of(0n), [])
    const prefill = await session.run({
      input_ids: int64([0, 0, 7, 8, 9, 1, 2, 3, 4, 5], [2, 5]),
      attention_mask: int64([0, 0, 1, 1, 1, 1, 1, 1, 1, 1], [2, 5]),
      position_ids: int64([0, 0, 0, 1, 2, 0, 1, 2, 3, 4], [2, 5]),
      num_logits_to_keep: everyPosition,
      ...pasts,
    })
    const next: Record<string, ort.Tensor> = {}
    for (let i = 0; i < 2; i++) {
      next[`past_key_values.${i}.key`] = prefill[`present.${i}.key`] as ort.Tensor
      next[`past_key_values.${i}.value`] = prefill[`present.${i}.value`] as ort.Tensor
    }
    const decode = await session.run({
      input_ids: int64([10, 6], [2, 1]),
      attention_mask: int64([0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [2, 6]),
      position_ids: int64([3, 5], [2, 1]),
      num_logits_to_keep: everyPosition,
      ...next,
    })
    const vocab = config.vocabSize
    const row = (tensor: ort.OnnxValue, b: number, s: number, length: number) =>
      (tensor.data as Float32Array).slice((b * length + s) * vocab, (b * length + s + 1) * vocab)
    const alone0 = new ReferenceModel(weights).forward([7, 8, 9, 10])
    const alone1 = new ReferenceModel(weights).forward([1, 2, 3, 4, 5, 6])
    expect(maxAbsDifference(row(prefill.logits!, 0, 4, 5), alone0[2]!)).toBeLessThanOrEqual(1e-4)
    expect(maxAbsDifference(row(prefill.logits!, 1, 4, 5), alone1[4]!)).toBeLessThanOrEqual(1e-4)
    expect(maxAbsDifference(row(decode.logits!, 0, 0, 1), alone0[3]!)).toBeLessThanOrEqual(1e-4)
    expect(maxAbsDifference(row(decode.logits!, 1, 0, 1), alone1[5]!)).toBeLessThanOrEqual(1e-4)
    // Fully padded query rows must not produce NaN (masked with finfo.min, not -inf).
    expect(Number.isNaN((prefill.logits!.data as Float32Array)[0]!)).toBe(false)
    // num_logits_to_keep = 1: each row's last position (rows are right-aligned), nothing else.
    const lastOnly = await session.run({
      input_ids: int64([0, 0, 7, 8, 9, 1, 2, 3, 4, 5], [2, 5]),
      attention_mask: int64([0, 0, 1, 1, 1, 1, 1, 1, 1, 1], [2, 5]),
      position_ids: int64([0, 0, 0, 1, 2, 0, 1, 2, 3, 4], [2, 5]),
      num_logits_to_keep: new ort.Tensor('int64', BigInt64Array.of(1n), []),
      ...pasts,
    })
    expect(lastOnly.logits!.dims).toEqual([2, 1, vocab])
    expect(row(lastOnly.logits!, 0, 0, 1)).toEqual(row(prefill.logits!, 0, 4, 5))
    expect(row(lastOnly.logits!, 1, 0, 1)).toEqual(row(prefill.logits!, 1, 4, 5))
    await session.release()
  })
})

describe('num_logits_to_keep: logits for the last N positions only', () => {
  const prompt = tokens.slice(0, 17)
  const cases = [
    ['qwen3', 'fp32'],
    ['qwen3', 'fp16'],
    ['qwen3', 'q4'],
    ['qwen3', 'q8'],
    ['llama', 'fp32'],
    ['llama', 'q4'],
  ] as const
  it.each(cases)(
    '%s %s: N = 1 and 3 are the last rows of N = 0; N = 0 and N past the prompt keep all; the cache is the same',
    async (name, dtype) => {
      const config = configs[name]
      const weights = randomDecoderWeights(config, 9)
      const path = join(folder, `keep-${name}-${dtype}.onnx`)
      writeModelFile(architectureFor(weights).buildGraph(dtype), path)
      const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 1 })
      const vocab = config.vocabSize
      const empty = new ort.Tensor('float32', new Float32Array(0), [
        1,
        config.numKeyValueHeads,
        0,
        config.headDim,
      ])
      const run = (keep: number) => {
        const feeds: Record<string, ort.Tensor> = {
          input_ids: new ort.Tensor('int64', BigInt64Array.from(prompt, BigInt), [1, prompt.length]),
          attention_mask: new ort.Tensor('int64', new BigInt64Array(prompt.length).fill(1n), [
            1,
            prompt.length,
          ]),
          position_ids: new ort.Tensor(
            'int64',
            BigInt64Array.from(prompt, (_, i) => BigInt(i)),
            [1, prompt.length],
          ),
          num_logits_to_keep: new ort.Tensor('int64', BigInt64Array.of(BigInt(keep)), []),
        }
        for (let i = 0; i < config.numHiddenLayers; i++) {
          feeds[`past_key_values.${i}.key`] = empty
          feeds[`past_key_values.${i}.value`] = empty
        }
        return session.run(feeds)
      }
      try {
        const logitsOf = (outputs: ort.InferenceSession.OnnxValueMapType) =>
          outputs.logits!.data as Float32Array
        const all = await run(0)
        expect(all.logits!.dims).toEqual([1, prompt.length, vocab])
        // HF's logits[:, -N:]: 0 keeps every position, and so does an N past the sequence.
        for (const beyond of [prompt.length, 1000]) expect(logitsOf(await run(beyond))).toEqual(logitsOf(all))
        const three = await run(3)
        const last = await run(1)
        expect(three.logits!.dims).toEqual([1, 3, vocab])
        expect(last.logits!.dims).toEqual([1, 1, vocab])
        // The cache does not depend on N.
        for (let i = 0; i < config.numHiddenLayers; i++)
          for (const part of ['key', 'value'])
            expect(last[`present.${i}.${part}`]!.data, `present.${i}.${part}`).toEqual(
              all[`present.${i}.${part}`]!.data,
            )
        const tail = (rows: number) => logitsOf(all).slice((prompt.length - rows) * vocab)
        if (dtype === 'fp32' || dtype === 'fp16') {
          // The same kernels on fewer rows: the kept rows' logits are bit for bit those of N = 0.
          expect(logitsOf(last)).toEqual(tail(1))
          expect(logitsOf(three)).toEqual(tail(3))
        } else {
          // 4-bit: ONNX Runtime's MatMulNBits takes its one-row path (the one every decode step
          // takes) instead of the many-row one, which sums in another order. 8-bit:
          // DynamicQuantizeMatMul quantizes its input per tensor, so the LM head's activation scale
          // now comes from the kept rows instead of the whole prompt (as in a decode step).
          const tolerance = dtype === 'q4' ? 1e-4 : 0.5
          expect(maxAbsDifference(logitsOf(last), tail(1))).toBeLessThanOrEqual(tolerance)
          expect(maxAbsDifference(logitsOf(three), tail(3))).toBeLessThanOrEqual(tolerance)
          expect(argmax(logitsOf(last))).toBe(argmax(tail(1)))
        }
      } finally {
        await session.release()
      }
    },
  )
})
