// The kernels a prefill pass runs many tokens through, against the one-token paths bit for bit.
// The prefill GEMM kernels (src/gemm-q4.c, src/gemm-q8.c) against the decode GEMV (gemm_q4,
// gemm_q8): a prompt token's logits may not depend on whether it went through a
// prefill pass or a decode step, nor on how threads split the rows. Odd sizes on purpose: output
// rows that leave a partial tile and a partial group of four, token counts that are not a
// multiple of anything, k with a partial last block and more blocks than one panel chunk.
import { describe, expect, it } from 'vitest'
import { Kernels, type Pointer } from './kernels.ts'
import { loadEngineModule } from './node.ts'
import { hostHasRelaxedSimd } from './simd.ts'
import { type ParallelKernel, shareRange } from './thread-pool.ts'

/** A small deterministic generator (the same data on every run). */
function generator(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return state / 2 ** 32
  }
}

interface Case {
  readonly n: number
  readonly k: number
  readonly tokens: number
  /**
   * The relaxed kernels' worst case: every weight nibble and zero point 0 or 15 (so code - zero is
   * ±15 or 0), every activation ±1 (codes ±127): the largest pair sums the relaxed dots meet.
   */
  readonly extreme?: boolean
}

// n: 8-row tiles, a 4-row tile, 1-3 single rows; k: one partial block, several chunks of 32 blocks
// (the plain panel's), more than one chunk of 128 (the relaxed panel's: k = 4500 is 141 blocks).
const cases: readonly Case[] = [
  { n: 27, k: 2245, tokens: 13 },
  { n: 19, k: 4500, tokens: 9 },
  { n: 12, k: 96, tokens: 5 },
  { n: 3, k: 40, tokens: 7 },
  { n: 70, k: 1056, tokens: 64 },
  { n: 9, k: 1024, tokens: 4 },
]

async function setup(c: Case, seed: number, module?: WebAssembly.Module) {
  const kernels = await Kernels.create(module ?? (await loadEngineModule('plain')))
  const random = generator(seed)
  const blocks = Math.ceil(c.k / 32)
  const fill = (pointer: Pointer, bytes: number) => {
    const view = kernels.bytes(pointer, bytes)
    for (let i = 0; i < bytes; i++) view[i] = Math.floor(random() * 256)
  }
  const floats = (count: number, scale: number, offset = 0): Pointer => {
    const pointer = kernels.alloc(count * 4)
    const view = kernels.f32(pointer, count)
    for (let i = 0; i < count; i++) view[i] = (random() + offset) * scale
    return pointer
  }
  // Activations with a few large outliers per row (as real hidden states have).
  const x = floats(c.tokens * c.k, 2, -0.5)
  const xs = kernels.f32(x, c.tokens * c.k)
  for (let i = 0; i < xs.length; i += 97) xs[i] = xs[i]! * 40
  const codes = kernels.alloc(c.tokens * blocks * 64)
  const scales = kernels.alloc(c.tokens * blocks * 4)
  const sums = kernels.alloc(c.tokens * blocks * 4)
  const starts = kernels.alloc(c.tokens * blocks * 4)
  return { kernels, blocks, fill, floats, x, codes, scales, sums, starts }
}

function bytesOf(kernels: Kernels, pointer: Pointer, floats: number): Buffer {
  return Buffer.from(kernels.bytes(pointer, floats * 4))
}

describe('prefill GEMM equals the decode GEMV bit for bit', () => {
  it.each(cases)('q4: n $n, k $k, $tokens tokens (whole, per token, per thread share)', async (c) => {
    const { kernels, blocks, fill, floats, x, codes, scales, sums } = await setup(c, c.n * 7 + c.k)
    const K = kernels.k
    // Stored [n, blocks, 16] bytes, regrouped as the loader does (four rows per 64-byte block).
    const stored = kernels.alloc(c.n * blocks * 16)
    fill(stored, c.n * blocks * 16)
    const weights = kernels.alloc(Math.ceil(c.n / 4) * blocks * 64)
    K.repack_q4_weights(stored, c.n, blocks, weights)
    const storedScales = floats(c.n * blocks, 0.02, 0.1)
    const storedZero = kernels.alloc(c.n * Math.ceil(blocks / 2))
    fill(storedZero, c.n * Math.ceil(blocks / 2))
    const groups = Math.ceil(c.n / 4)
    const groupedScales = kernels.alloc(groups * blocks * 16)
    const groupedZero = kernels.alloc(groups * blocks * 4)
    K.repack_q4_scales(storedScales, storedZero, c.n, blocks, groupedScales, groupedZero)
    K.quantize_rows_q4(x, c.tokens, c.k, codes, scales, sums, 0, c.tokens)

    const decode = kernels.alloc(c.tokens * c.n * 4)
    for (let t = 0; t < c.tokens; t++)
      K.gemm_q4(
        weights,
        groupedScales,
        groupedZero,
        c.n,
        blocks,
        codes + t * blocks * 64,
        scales + t * blocks * 4,
        sums + t * blocks * 4,
        1,
        decode + t * c.n * 4,
        0,
        c.n,
      )
    const batched = kernels.alloc(c.tokens * c.n * 4)
    K.gemm_q4(
      weights,
      groupedScales,
      groupedZero,
      c.n,
      blocks,
      codes,
      scales,
      sums,
      c.tokens,
      batched,
      0,
      c.n,
    )
    const panel = kernels.alloc(c.tokens * c.n * 4)
    K.gemm_panel_q4(weights, groupedScales, groupedZero, c.n, blocks, codes, scales, c.tokens, panel, 0, c.n)
    // The thread pool's split: three shares of whole groups of four rows.
    const shared = kernels.alloc(c.tokens * c.n * 4)
    for (let share = 0; share < 3; share++) {
      const [begin, end] = shareRange(c.n, 3, 4, share)
      if (begin < end)
        K.gemm_panel_q4(
          weights,
          groupedScales,
          groupedZero,
          c.n,
          blocks,
          codes,
          scales,
          c.tokens,
          shared,
          begin,
          end,
        )
    }

    const expected = bytesOf(kernels, decode, c.tokens * c.n)
    // The formula itself, in float32 steps from the stored bytes: the grouped layout and the
    // plane-scaled codes change no bit of sum_b float(dot_b - zero_b * sum_b) * (scale_w * scale_a).
    const reference = new Float32Array(c.tokens * c.n)
    const storedBytes = kernels.bytes(stored, c.n * blocks * 16)
    const zeroBytes = kernels.bytes(storedZero, c.n * Math.ceil(blocks / 2))
    const weightScale = kernels.f32(storedScales, c.n * blocks)
    const codeView = new Int16Array(kernels.memory.buffer, codes, c.tokens * blocks * 32)
    const activationScale = kernels.f32(scales, c.tokens * blocks)
    const planeFactor = [256, 16, 1, 256]
    for (let t = 0; t < c.tokens; t++)
      for (let row = 0; row < c.n; row++) {
        let acc = 0
        for (let b = 0; b < blocks; b++) {
          const zeroByte = zeroBytes[row * Math.ceil(blocks / 2) + (b >> 1)]!
          const zero = b & 1 ? zeroByte >> 4 : zeroByte & 15
          let dot = 0
          for (let i = 0; i < 32; i++) {
            const byte = storedBytes[(row * blocks + b) * 16 + (i >> 1)]!
            const code = i & 1 ? byte >> 4 : byte & 15
            const a = codeView[(t * blocks + b) * 32 + i]! / planeFactor[(i >> 1) & 3]!
            dot += (code - zero) * a
          }
          const scale = Math.fround(weightScale[row * blocks + b]! * activationScale[t * blocks + b]!)
          acc = Math.fround(acc + Math.fround(Math.fround(dot) * scale))
        }
        reference[t * c.n + row] = acc
      }
    expect(Buffer.from(reference.buffer).equals(expected)).toBe(true)
    expect(bytesOf(kernels, batched, c.tokens * c.n).equals(expected)).toBe(true)
    expect(bytesOf(kernels, panel, c.tokens * c.n).equals(expected)).toBe(true)
    expect(bytesOf(kernels, shared, c.tokens * c.n).equals(expected)).toBe(true)
    // Not vacuous: the outputs are finite and mostly non-zero.
    const values = kernels.f32(panel, c.tokens * c.n)
    expect(values.every(Number.isFinite)).toBe(true)
    expect(values.filter((v) => v !== 0).length).toBeGreaterThan(values.length * 0.9)
  })

  it.each(cases)('q8: n $n, k $k, $tokens tokens (whole, per token, per thread share)', async (c) => {
    const { kernels, blocks, fill, floats, x, codes, scales } = await setup(c, c.n * 11 + c.k)
    const K = kernels.k
    // Stored [k, n] int8 as DynamicQuantizeMatMul holds it, regrouped as the loader does (four rows
    // per 128-byte block), in two slabs of inputs so a slab boundary falls inside a block.
    const stored = kernels.alloc(c.k * c.n)
    fill(stored, c.k * c.n)
    const groupBytes = blocks * 128
    const weights = kernels.alloc(Math.ceil(c.n / 4) * groupBytes)
    // Whatever the arena held before: the repack must write every padding byte itself.
    fill(weights, Math.ceil(c.n / 4) * groupBytes)
    const split = Math.max(1, Math.floor(c.k / 3) + 5)
    K.repack_q8_grouped(stored, 0, split, c.k, c.n, weights)
    K.repack_q8_grouped(stored + split * c.n, split, c.k - split, c.k, c.n, weights)
    const weightScales = floats(c.n, 0.01, 0.1)
    K.quantize_rows_q8(x, c.tokens, c.k, codes, scales, 0, c.tokens)

    const decode = kernels.alloc(c.tokens * c.n * 4)
    for (let t = 0; t < c.tokens; t++)
      K.gemm_q8(
        weights,
        weightScales,
        c.n,
        blocks,
        codes + t * blocks * 64,
        scales + t * blocks * 4,
        1,
        decode + t * c.n * 4,
        0,
        c.n,
      )
    const batched = kernels.alloc(c.tokens * c.n * 4)
    K.gemm_q8(weights, weightScales, c.n, blocks, codes, scales, c.tokens, batched, 0, c.n)
    const panel = kernels.alloc(c.tokens * c.n * 4)
    K.gemm_panel_q8(weights, weightScales, c.n, blocks, codes, scales, c.tokens, panel, 0, c.n)
    // The thread pool's split: three shares of whole groups of four rows, for the GEMV and the GEMM.
    const shared = kernels.alloc(c.tokens * c.n * 4)
    const sharedDecode = kernels.alloc(c.tokens * c.n * 4)
    for (let share = 0; share < 3; share++) {
      const [begin, end] = shareRange(c.n, 3, 4, share)
      if (begin >= end) continue
      K.gemm_panel_q8(weights, weightScales, c.n, blocks, codes, scales, c.tokens, shared, begin, end)
      K.gemm_q8(weights, weightScales, c.n, blocks, codes, scales, c.tokens, sharedDecode, begin, end)
    }

    const expected = bytesOf(kernels, decode, c.tokens * c.n)
    // The formula itself, in float32 steps from the stored bytes (the one the kernels kept before
    // the regrouping, one row at a time): (sum_b float(dot_b) * scale_a) * scale_w.
    const reference = new Float32Array(c.tokens * c.n)
    const storedCodes = new Int8Array(kernels.memory.buffer, stored, c.k * c.n)
    const codeView = new Int16Array(kernels.memory.buffer, codes, c.tokens * blocks * 32)
    const activationScale = kernels.f32(scales, c.tokens * blocks)
    const weightScale = kernels.f32(weightScales, c.n)
    for (let t = 0; t < c.tokens; t++)
      for (let row = 0; row < c.n; row++) {
        let acc = 0
        for (let b = 0; b < blocks; b++) {
          let dot = 0
          for (let i = b * 32; i < Math.min(c.k, b * 32 + 32); i++)
            dot += storedCodes[i * c.n + row]! * codeView[t * blocks * 32 + i]!
          acc = Math.fround(acc + Math.fround(Math.fround(dot) * activationScale[t * blocks + b]!))
        }
        reference[t * c.n + row] = Math.fround(acc * weightScale[row]!)
      }
    expect(Buffer.from(reference.buffer).equals(expected)).toBe(true)
    expect(bytesOf(kernels, batched, c.tokens * c.n).equals(expected)).toBe(true)
    expect(bytesOf(kernels, panel, c.tokens * c.n).equals(expected)).toBe(true)
    expect(bytesOf(kernels, shared, c.tokens * c.n).equals(expected)).toBe(true)
    expect(bytesOf(kernels, sharedDecode, c.tokens * c.n).equals(expected)).toBe(true)
    // The padding the layout adds (the tail of the last block, the rows of a partial last group) is zero.
    const grouped = new Int8Array(kernels.memory.buffer, weights, Math.ceil(c.n / 4) * groupBytes)
    for (let row = 0; row < Math.ceil(c.n / 4) * 4; row++)
      for (let i = 0; i < blocks * 32; i++) {
        const at = ((Math.floor(row / 4) * blocks + Math.floor(i / 32)) * 4 + (row % 4)) * 32 + (i % 32)
        const want = row < c.n && i < c.k ? storedCodes[i * c.n + row]! : 0
        if (grouped[at] !== want)
          expect.fail(`grouped byte of row ${row}, input ${i}: ${grouped[at]} != ${want}`)
      }
    const values = kernels.f32(panel, c.tokens * c.n)
    expect(values.every(Number.isFinite)).toBe(true)
    expect(values.filter((v) => v !== 0).length).toBeGreaterThan(values.length * 0.9)
  })
})

/** One q4 matrix (weights, scales, zero points in the grouped layout) and its activations. */
async function q4Setup(c: Case, module: WebAssembly.Module) {
  const context = await setup(c, c.n * 7 + c.k, module)
  const { kernels, blocks, fill, floats } = context
  const K = kernels.k
  const stored = kernels.alloc(c.n * blocks * 16)
  fill(stored, c.n * blocks * 16)
  const weights = kernels.alloc(Math.ceil(c.n / 4) * blocks * 64)
  const storedScales = floats(c.n * blocks, 0.02, 0.1)
  const storedZero = kernels.alloc(c.n * Math.ceil(blocks / 2))
  fill(storedZero, c.n * Math.ceil(blocks / 2))
  if (c.extreme) {
    const random = generator(c.n + c.k * 3)
    const nibbles = () => (random() < 0.5 ? 0 : 0x0f) | (random() < 0.5 ? 0 : 0xf0)
    for (const [pointer, bytes] of [
      [stored, c.n * blocks * 16],
      [storedZero, c.n * Math.ceil(blocks / 2)],
    ] as const) {
      const view = kernels.bytes(pointer, bytes)
      for (let i = 0; i < bytes; i++) view[i] = nibbles()
    }
    const xs = kernels.f32(context.x, c.tokens * c.k)
    for (let i = 0; i < xs.length; i++) xs[i] = random() < 0.5 ? -1 : 1
  }
  K.repack_q4_weights(stored, c.n, blocks, weights)
  const groups = Math.ceil(c.n / 4)
  const groupedScales = kernels.alloc(groups * blocks * 16)
  const groupedZero = kernels.alloc(groups * blocks * 4)
  K.repack_q4_scales(storedScales, storedZero, c.n, blocks, groupedScales, groupedZero)
  return { ...context, matrix: [weights, groupedScales, groupedZero, c.n, blocks] as const }
}

// The relaxed-SIMD build (engine-relaxed.wasm, src/gemm-q4-relaxed.c) against engine.wasm's
// kernels, module against module: the same data in each, the plain GEMV's bytes as the answer.
// Both relaxed forms (the pairs kernels and the *_dot_add ones, src/gemm-q4-relaxed.c) are checked.
const relaxedCases: readonly Case[] = [
  ...cases.map((c) => ({ ...c, extreme: false })),
  { n: 27, k: 2245, tokens: 13, extreme: true },
  { n: 70, k: 4128, tokens: 9, extreme: true },
]

describe.runIf(hostHasRelaxedSimd())('relaxed-SIMD 4-bit kernels equal the plain ones bit for bit', () => {
  it.each(relaxedCases)(
    'n $n, k $k, $tokens tokens (extreme codes: $extreme): GEMV per token and batched, GEMM whole and per thread share, both forms',
    async (c) => {
      const plain = await q4Setup(c, await loadEngineModule('plain'))
      const relaxed = await q4Setup(c, await loadEngineModule('relaxed'))
      const P = plain.kernels.k
      const R = relaxed.kernels.k
      expect(relaxed.kernels.relaxed && !plain.kernels.relaxed).toBe(true)
      const blocks = plain.blocks
      const size = c.tokens * c.n
      P.quantize_rows_q4(plain.x, c.tokens, c.k, plain.codes, plain.scales, plain.sums, 0, c.tokens)
      const expected = plain.kernels.alloc(size * 4)
      P.gemm_q4(...plain.matrix, plain.codes, plain.scales, plain.sums, c.tokens, expected, 0, c.n)

      R.quantize_rows_q4_relaxed!(
        relaxed.x,
        c.tokens,
        c.k,
        relaxed.codes,
        relaxed.scales,
        relaxed.sums,
        relaxed.starts,
        0,
        c.tokens,
      )
      // The same quantization: scales and sums bit for bit, token t's block b at its unit of the
      // quad layout (src/engine.h's relaxed_unit, written out again here).
      const unit = (t: number, b: number) => {
        const size = Math.min(4, c.tokens - (t & ~3))
        return (t & ~3) * blocks + b * size + (t & 3)
      }
      const relaxedBits = [relaxed.scales, relaxed.sums].map((p) => relaxed.kernels.i32(p, c.tokens * blocks))
      const plainBits = [plain.scales, plain.sums].map((p) => plain.kernels.i32(p, c.tokens * blocks))
      for (let t = 0; t < c.tokens; t++)
        for (let b = 0; b < blocks; b++)
          for (const i of [0, 1])
            expect(relaxedBits[i]![unit(t, b)], `token ${t} block ${b}`).toBe(plainBits[i]![t * blocks + b])
      // The panel's start values: -15 times the sums of the codes each int16 lane of the relaxed
      // dot meets, bytes 0-1 (low half) and 2-3 (high half) of every four.
      const codeBytes = new Int8Array(relaxed.kernels.memory.buffer, relaxed.codes, c.tokens * blocks * 32)
      const starts = relaxed.kernels.i32(relaxed.starts, c.tokens * blocks)
      for (let u = 0; u < c.tokens * blocks; u++) {
        const half = [0, 0]
        for (let i = 0; i < 32; i++) half[(i >> 1) & 1]! += codeBytes[u * 32 + i]!
        const low = (-15 * half[0]!) & 0xffff
        const high = (-15 * half[1]!) & 0xffff
        expect(starts[u], `unit ${u}`).toBe((low | (high << 16)) >> 0)
      }
      const args = [relaxed.codes, relaxed.scales, relaxed.sums] as const
      const panelArgs = [relaxed.codes, relaxed.scales, relaxed.starts] as const
      // Decode: each token quantized and multiplied alone (one token is plain row order; several
      // are stored in quads, see relaxed_unit in src/engine.h).
      const one = [
        relaxed.kernels.alloc(blocks * 32),
        relaxed.kernels.alloc(blocks * 4),
        relaxed.kernels.alloc(blocks * 4),
      ] as const
      const oneStarts = relaxed.kernels.alloc(blocks * 4)
      const results: [string, Pointer][] = []
      const output = (name: string): Pointer => {
        const pointer = relaxed.kernels.alloc(size * 4)
        results.push([name, pointer])
        return pointer
      }
      // The pairs form, then the dot-add form, which takes the sums where the pairs panel takes
      // the starts.
      for (const [form, gemv, gemm, gemmArgs] of [
        ['pairs', R.gemm_q4_relaxed!, R.gemm_panel_q4_relaxed!, panelArgs],
        ['dot-add', R.gemm_q4_relaxed_dot_add!, R.gemm_panel_q4_relaxed_dot_add!, args],
      ] as const) {
        const decode = output(`${form} GEMV per token`)
        for (let t = 0; t < c.tokens; t++) {
          R.quantize_rows_q4_relaxed!(relaxed.x + t * c.k * 4, 1, c.k, ...one, oneStarts, 0, 1)
          gemv(...relaxed.matrix, ...one, 1, decode + t * c.n * 4, 0, c.n)
        }
        gemv(...relaxed.matrix, ...args, c.tokens, output(`${form} GEMV batched`), 0, c.n)
        gemm(...relaxed.matrix, ...gemmArgs, c.tokens, output(`${form} GEMM`), 0, c.n)
        const shared = output(`${form} GEMM in three thread shares`)
        for (let share = 0; share < 3; share++) {
          const [begin, end] = shareRange(c.n, 3, 4, share)
          if (begin < end) gemm(...relaxed.matrix, ...gemmArgs, c.tokens, shared, begin, end)
        }
      }
      expect(results.length).toBe(8)
      const answer = bytesOf(plain.kernels, expected, size)
      for (const [name, result] of results)
        expect(bytesOf(relaxed.kernels, result, size).equals(answer), name).toBe(true)
      const values = relaxed.kernels.f32(results[2]![1], size)
      expect(values.every(Number.isFinite)).toBe(true)
      expect(values.filter((v) => v !== 0).length).toBeGreaterThan(values.length * 0.9)
    },
  )
})

/** round-half-to-even of a float32 value (WebAssembly's nearest). */
function nearest(value: number): number {
  const floor = Math.floor(value)
  const diff = value - floor
  if (diff > 0.5) return floor + 1
  if (diff < 0.5) return floor
  return floor % 2 === 0 ? floor : floor + 1
}

/** The activation quantization as documented (src/quantize.c), computed in float32 in TypeScript. */
function quantizeReference(x: Float32Array, k: number, order: 'q8' | 'q4') {
  const blocks = Math.ceil(k / 32)
  const rows = x.length / k
  const codes = new Int16Array(rows * blocks * 32)
  const scales = new Float32Array(rows * blocks)
  const sums = new Int32Array(rows * blocks)
  for (let r = 0; r < rows; r++)
    for (let b = 0; b < blocks; b++) {
      const count = Math.min(32, k - b * 32)
      let max = 0
      for (let i = 0; i < count; i++) max = Math.max(max, Math.abs(x[r * k + b * 32 + i]!))
      scales[r * blocks + b] = Math.fround(max / 127)
      const inverse = max === 0 ? 0 : Math.fround(127 / max)
      for (let i = 0; i < count; i++) {
        const code = nearest(Math.fround(x[r * k + b * 32 + i]! * inverse))
        // q4: each code times the factor of the weight nibble plane it meets (src/quantize.c).
        codes[(r * blocks + b) * 32 + i] = order === 'q8' ? code : code * [256, 16, 1, 256][(i >> 1) & 3]!
        sums[r * blocks + b]! += code
      }
    }
  return { codes, scales, sums }
}

describe('activation quantization (SIMD blocks, scalar tail) equals its scalar definition', () => {
  it.each([
    [3, 1024],
    [2, 2245],
    [5, 40],
  ])('%i rows of k %i, q8 and q4 layouts', async (rows, k) => {
    const { kernels, blocks, x, codes, scales, sums } = await setup({ n: 4, k, tokens: rows }, rows * 31 + k)
    const K = kernels.k
    const xs = kernels.f32(x, rows * k).slice()
    // Ties and zero blocks on purpose: a row of exact halves and an all-zero block.
    for (let i = 0; i < 32 && i < k; i++) xs[i] = (i - 16) * 0.5
    for (let i = 32; i < 64 && i < k; i++) xs[i] = 0
    kernels.f32(x, rows * k).set(xs)
    for (const order of ['q8', 'q4'] as const) {
      if (order === 'q8') K.quantize_rows_q8(x, rows, k, codes, scales, 0, rows)
      else K.quantize_rows_q4(x, rows, k, codes, scales, sums, 0, rows)
      const expected = quantizeReference(xs, k, order)
      expect(new Int16Array(kernels.memory.buffer, codes, rows * blocks * 32)).toEqual(expected.codes)
      expect(
        Buffer.from(kernels.bytes(scales, rows * blocks * 4)).equals(Buffer.from(expected.scales.buffer)),
      ).toBe(true)
      if (order === 'q4') expect(kernels.i32(sums, rows * blocks)).toEqual(expected.sums)
    }
  })
})

describe('SwiGLU (silu_mul) four lanes at a time equals its one-element path', () => {
  it('on ordinary values, ties of the float rounding and both saturated ends', async () => {
    const kernels = await Kernels.create(await loadEngineModule())
    const random = generator(5)
    const values: number[] = [
      0, -0, 1e-30, -1e-30, 40, -40, 39.99, -40.01, 88, -88, 103, 104, 110, 700, 709, 709.5,
    ]
    values.push(
      -709.5,
      745,
      -745,
      800,
      -800,
      3.4e38,
      -3.4e38,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    )
    while (values.length < 4096) values.push((random() - 0.5) * (random() < 0.1 ? 200 : 12))
    const count = values.length
    const gate = kernels.alloc(count * 4)
    const up = kernels.alloc(count * 4)
    const one = kernels.alloc(count * 4)
    kernels.f32(gate, count).set(values)
    kernels.f32(one, count).set(values)
    kernels.f32(up, count).set(values.map((_, i) => 1 + (i % 7) * 0.25))
    kernels.k.silu_mul(gate, up, 0, count)
    // count 1: the scalar path (q35_sigmoidf), element by element.
    for (let i = 0; i < count; i++) kernels.k.silu_mul(one + i * 4, up + i * 4, 0, 1)
    expect(
      Buffer.from(kernels.bytes(gate, count * 4)).equals(Buffer.from(kernels.bytes(one, count * 4))),
    ).toBe(true)
    const result = kernels.f32(gate, count)
    for (const index of [values.indexOf(40), 100, 2000]) {
      const g = Math.fround(values[index]!)
      const u = 1 + (index % 7) * 0.25
      expect(result[index]).toBeCloseTo((g / (1 + Math.exp(-g))) * u, 3)
    }
  })
})

/** engine.h's engine_exp, operation for operation in double (JavaScript numbers are IEEE doubles). */
function engineExp(x: number): number {
  if (x > 709) return Number.POSITIVE_INFINITY
  if (x < -745) return 0
  // engine.h's literals as written there: they parse to the same doubles as in C.
  // biome-ignore lint/correctness/noPrecisionLoss: the same literal as engine.h
  // biome-ignore lint/suspicious/noApproximativeNumericConstant: engine.h's literal, not Math.LOG2E by name
  const n = nearest(x * 1.442695040888963387)
  // biome-ignore lint/correctness/noPrecisionLoss: the same literals as engine.h
  const r = x - n * 6.9314718036912381649e-1 - n * 1.90821492927058770002e-10
  let p = 1 / 6227020800
  for (const c of [
    1 / 479001600,
    1 / 39916800,
    1 / 3628800,
    1 / 362880,
    1 / 40320,
    1 / 5040,
    1 / 720,
    1 / 120,
    1 / 24,
    1 / 6,
    0.5,
    1,
    1,
  ])
    p = p * r + c
  if (n < -1020) return p * 2 ** (n + 200) * 6.22301527786965e-61
  return p * 2 ** n
}

/** src/attention.c's attend_head in float32 steps: the documented order of every sum. */
function attentionReference(
  q: Float32Array,
  cache: Float32Array,
  valuesOffset: number,
  rows: number,
  heads: number,
  kvHeads: number,
  headDim: number,
  stride: number,
  position0: number,
  scale: number,
): Float32Array {
  const f = Math.fround
  const out = new Float32Array(rows * heads * headDim)
  const group = heads / kvHeads
  for (let r = 0; r < rows; r++)
    for (let h = 0; h < heads; h++) {
      const length = position0 + r + 1
      const query = (r * heads + h) * headDim
      const kv = Math.floor(h / group) * headDim
      const scores = new Float32Array(length)
      let max = Number.NEGATIVE_INFINITY
      for (let t = 0; t < length; t++) {
        const key = kv + t * stride
        const lanes = [0, 0, 0, 0]
        let i = 0
        for (; i + 4 <= headDim; i += 4)
          for (let l = 0; l < 4; l++) lanes[l] = f(lanes[l]! + f(q[query + i + l]! * cache[key + i + l]!))
        let sum = f(f(lanes[0]! + lanes[2]!) + f(lanes[1]! + lanes[3]!))
        for (; i < headDim; i++) sum = f(sum + f(q[query + i]! * cache[key + i]!))
        scores[t] = f(sum * scale)
        if (scores[t]! > max) max = scores[t]!
      }
      let total = 0
      for (let t = 0; t < length; t++) {
        scores[t] = f(engineExp(f(scores[t]! - max)))
        total = f(total + scores[t]!)
      }
      const inverse = f(1 / total)
      for (let d = 0; d < headDim; d++) {
        let acc = 0
        for (let t = 0; t < length; t++)
          acc = f(acc + f(f(scores[t]! * inverse) * cache[valuesOffset + kv + t * stride + d]!))
        out[query + d] = acc
      }
    }
  return out
}

describe('attention over many query rows equals its documented order of operations', () => {
  // The last argument: rows of scores per head's scratch. One row gives one query row per pass;
  // more let the kernel attend rows in blocks (up to eight per pass over the keys, fewer where a
  // block's longest row would not fit), which may change no bit: blocks of every size, rows in
  // pairs and alone, keys in fours and one by one, head_dim with and without a tail of four.
  it.each([
    [4, 2, 38, 5, 3, 1],
    [8, 2, 64, 9, 40, 1],
    [4, 2, 36, 21, 6, 8],
    [4, 1, 48, 19, 0, 3],
    [2, 2, 64, 13, 37, 8],
    [2, 1, 20, 11, 5, 2.5],
  ])(
    '%i heads over %i KV heads, head_dim %i, %i rows after %i positions, %f rows of scores',
    async (heads, kvHeads, headDim, rows, position0, scoreRows) => {
      const kernels = await Kernels.create(await loadEngineModule())
      const random = generator(heads * 100 + headDim)
      const stride = 3 * 2 * kvHeads * headDim
      const positions = position0 + rows
      const q = kernels.alloc(rows * heads * headDim * 4)
      const cache = kernels.alloc(positions * stride * 4)
      const out = kernels.alloc(rows * heads * headDim * 4)
      const scoresStride = Math.floor(scoreRows * positions)
      const scores = kernels.alloc(heads * scoresStride * 4)
      const qs = kernels.f32(q, rows * heads * headDim)
      for (let i = 0; i < qs.length; i++) qs[i] = (random() - 0.5) * 4
      const cs = kernels.f32(cache, positions * stride)
      // A few keys far off, so some exponentials fall below float range (the clamped lanes).
      for (let i = 0; i < cs.length; i++) cs[i] = (random() - 0.5) * (i % 131 === 0 ? 400 : 3)
      const valuesOffset = kvHeads * headDim
      const scale = 1 / Math.sqrt(headDim)
      // Two calls over two head ranges, as threads split them.
      for (const [begin, end] of [
        [0, 1],
        [1, heads],
      ])
        kernels.k.attention_split(
          q,
          cache,
          cache + valuesOffset * 4,
          out,
          scores,
          scoresStride,
          rows,
          heads,
          kvHeads,
          headDim,
          stride,
          position0,
          scale,
          begin!,
          end!,
        )
      const expected = attentionReference(
        kernels.f32(q, rows * heads * headDim),
        kernels.f32(cache, positions * stride),
        valuesOffset,
        rows,
        heads,
        kvHeads,
        headDim,
        stride,
        position0,
        Math.fround(scale),
      )
      expect(
        Buffer.from(kernels.bytes(out, rows * heads * headDim * 4)).equals(Buffer.from(expected.buffer)),
      ).toBe(true)
    },
  )
})

// Threads split a prompt pass's quantizers by rows and silu_mul by elements (thread-pool.ts's
// parallelKernels): every share run alone, in reverse order, gives the bytes of one whole call.
describe('the quantizers and silu_mul split into thread shares equal one whole call', () => {
  const modules = hostHasRelaxedSimd() ? (['plain', 'relaxed'] as const) : (['plain'] as const)
  it.each(cases)('n $n, k $k, $tokens tokens, in 1 to 4 shares', async (c) => {
    for (const simd of modules) {
      const whole = await setup(c, c.k * 3 + c.tokens, await loadEngineModule(simd))
      const K = whole.kernels.k
      const blocks = whole.blocks
      // Per quantizer and token, the bytes of each output (codes, scales, sums, starts).
      const quantizers: { name: ParallelKernel; outputs: number[] }[] = [
        { name: 'quantize_rows_q8', outputs: [blocks * 64, blocks * 4] },
        { name: 'quantize_rows_q4', outputs: [blocks * 64, blocks * 4, blocks * 4] },
      ]
      if (simd === 'relaxed')
        quantizers.push({
          name: 'quantize_rows_q4_relaxed',
          outputs: [blocks * 32, blocks * 4, blocks * 4, blocks * 4],
        })
      const noisy = whole.kernels.alloc(c.tokens * c.k * 4)
      for (const { name, outputs } of quantizers) {
        const run = K[name] as (...values: number[]) => void
        const once = outputs.map((bytes) => whole.kernels.alloc(c.tokens * bytes))
        run(whole.x, c.tokens, c.k, ...once, 0, c.tokens)
        for (let shares = 2; shares <= 4; shares++) {
          const split = outputs.map((bytes) => whole.kernels.alloc(c.tokens * bytes))
          for (let share = shares - 1; share >= 0; share--) {
            const [begin, end] = shareRange(c.tokens, shares, 1, share)
            if (begin >= end) continue
            // The other shares' rows are garbage here: a kernel that read (or wrote) outside its
            // rows would leave other codes behind.
            const rows = whole.kernels.f32(noisy, c.tokens * c.k)
            rows.set(whole.kernels.f32(whole.x, c.tokens * c.k))
            rows.fill(3e38, 0, begin * c.k)
            rows.fill(-7, end * c.k)
            run(noisy, c.tokens, c.k, ...split, begin, end)
          }
          for (const [i, bytes] of outputs.entries())
            expect(
              bytesOf(whole.kernels, split[i]!, (c.tokens * bytes) / 4).equals(
                bytesOf(whole.kernels, once[i]!, (c.tokens * bytes) / 4),
              ),
              `${simd} ${name}, output ${i}, ${shares} shares`,
            ).toBe(true)
        }
      }
      // silu_mul in place: each run from a copy of the same gate values.
      const count = c.tokens * c.k
      const gate = whole.x
      const up = whole.floats(count, 1, 0.5)
      const original = Buffer.from(whole.kernels.bytes(gate, count * 4))
      K.silu_mul(gate, up, 0, count)
      const expected = Buffer.from(whole.kernels.bytes(gate, count * 4))
      for (let shares = 2; shares <= 4; shares++) {
        whole.kernels.bytes(gate, count * 4).set(original)
        for (let share = shares - 1; share >= 0; share--) {
          const [begin, end] = shareRange(count, shares, 16, share)
          if (begin < end) K.silu_mul(gate, up, begin, end)
        }
        expect(
          Buffer.from(whole.kernels.bytes(gate, count * 4)).equals(expected),
          `${simd} silu_mul, ${shares} shares`,
        ).toBe(true)
      }
    }
  })
})
