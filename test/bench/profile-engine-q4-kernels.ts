// The 4-bit matrix products alone: engine.wasm's (SIMD128) and engine-relaxed.wasm's two forms
// (relaxed SIMD, src/gemm-q4-relaxed.c: the pairs form on i16x8.relaxed_dot_i8x16_i7x16_s and the
// dot-add form on i32x4.relaxed_dot_i8x16_i7x16_add_s), in one process, alternating, on
// Qwen3.5-0.8B's shapes: the prefill GEMM over a 512-token pass and the decode GEMV (one token).
// Prints the median throughput of each and the ratios against the plain kernel and between the
// two relaxed forms; checks all give the same bytes first. A diagnostic script, not part of
// `npm run bench`. Times are this thread's CPU time (process.threadCpuUsage), so other processes
// on a loaded machine count less than in wall time:
//   npx node test/bench/profile-engine-q4-kernels.ts [--tokens 512] [--rounds 5]
import { Kernels, type Pointer } from '../../wasm/engine/kernels.ts'
import { loadEngineModule } from '../../wasm/engine/node.ts'

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`)
  return index < 0 ? undefined : process.argv[index + 1]
}
const tokens = Number(argument('tokens') ?? 512)
const rounds = Number(argument('rounds') ?? 5)
// [n, k]: the MLP's gate/up and down projections, and attention's q projection.
const shapes: readonly [number, number][] = [
  [3584, 1024],
  [1024, 3584],
  [4096, 1024],
]

type Variant = 'plain' | 'pairs' | 'dot-add'
const variants: readonly Variant[] = ['plain', 'pairs', 'dot-add']

async function prepare(variant: Variant, n: number, k: number) {
  const relaxed = variant !== 'plain'
  const kernels = await Kernels.create(await loadEngineModule(relaxed ? 'relaxed' : 'plain'))
  const blocks = k / 32
  let state = 12345
  const random = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return state / 2 ** 32
  }
  const weights = kernels.alloc((n / 4) * blocks * 64)
  const w = kernels.bytes(weights, (n / 4) * blocks * 64)
  for (let i = 0; i < w.length; i++) w[i] = Math.floor(random() * 256)
  const scales = kernels.alloc((n / 4) * blocks * 16)
  const s = kernels.f32(scales, n * blocks)
  for (let i = 0; i < s.length; i++) s[i] = 0.01 + random() * 0.02
  const zeros = kernels.alloc((n / 4) * blocks * 4)
  const z = kernels.bytes(zeros, n * blocks)
  for (let i = 0; i < z.length; i++) z[i] = Math.floor(random() * 16)
  const x = kernels.alloc(tokens * k * 4)
  const xs = kernels.f32(x, tokens * k)
  for (let i = 0; i < xs.length; i++) xs[i] = random() - 0.5
  const codes = kernels.alloc(tokens * blocks * 64)
  const aScales = kernels.alloc(tokens * blocks * 4)
  const sums = kernels.alloc(tokens * blocks * 4)
  const starts = kernels.alloc(tokens * blocks * 4)
  const y = kernels.alloc(tokens * n * 4)
  const K = kernels.k
  if (relaxed) K.quantize_rows_q4_relaxed!(x, tokens, k, codes, aScales, sums, starts, 0, tokens)
  else K.quantize_rows_q4(x, tokens, k, codes, aScales, sums, 0, tokens)
  const matrix = [weights, scales, zeros, n, blocks, codes, aScales] as const
  const gemm = (rows: number, out: Pointer) =>
    variant === 'pairs'
      ? K.gemm_panel_q4_relaxed!(...matrix, starts, rows, out, 0, n)
      : variant === 'dot-add'
        ? K.gemm_panel_q4_relaxed_dot_add!(...matrix, sums, rows, out, 0, n)
        : K.gemm_panel_q4(...matrix, rows, out, 0, n)
  const gemv = (out: Pointer) =>
    variant === 'pairs'
      ? K.gemm_q4_relaxed!(...matrix, sums, 1, out, 0, n)
      : variant === 'dot-add'
        ? K.gemm_q4_relaxed_dot_add!(...matrix, sums, 1, out, 0, n)
        : K.gemm_q4(...matrix, sums, 1, out, 0, n)
  return { kernels, gemm, gemv, y }
}

/** Milliseconds of CPU time of this thread. */
function cpu(): number {
  const usage = process.threadCpuUsage()
  return (usage.user + usage.system) / 1000
}

const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const gemvRepeats = 50

for (const [n, k] of shapes) {
  const prepared = new Map<Variant, Awaited<ReturnType<typeof prepare>>>()
  for (const variant of variants) prepared.set(variant, await prepare(variant, n, k))
  const bytes = (variant: Variant) => {
    const { kernels, y } = prepared.get(variant)!
    return Buffer.from(kernels.bytes(y, tokens * n * 4))
  }
  for (const variant of variants) {
    const { gemm, y } = prepared.get(variant)!
    gemm(tokens, y)
  }
  for (const variant of variants)
    if (!bytes(variant).equals(bytes('plain')))
      throw new Error(`n ${n} k ${k}: the ${variant} GEMM's bytes differ from the plain one's`)
  for (const variant of variants) {
    const { gemv, y } = prepared.get(variant)!
    gemv(y)
  }
  // (The relaxed GEMV reads the first token of the 512 stored in quads as if alone, so only the two
  // relaxed forms are compared here; prefill-kernels.test.ts checks both against the plain one.)
  if (
    !bytes('dot-add')
      .subarray(0, n * 4)
      .equals(bytes('pairs').subarray(0, n * 4))
  )
    throw new Error(`n ${n} k ${k}: the dot-add GEMV's bytes differ from the pairs one's`)
  const gemmTimes = new Map<Variant, number[]>(variants.map((variant) => [variant, []]))
  const gemvTimes = new Map<Variant, number[]>(variants.map((variant) => [variant, []]))
  for (let round = 0; round < rounds; round++) {
    // Each round in another order, so no variant always runs right after the same one.
    const order = variants.map((_, i) => variants[(i + round) % variants.length]!)
    for (const variant of order) {
      const { gemm, gemv, y } = prepared.get(variant)!
      let started = cpu()
      gemm(tokens, y)
      gemmTimes.get(variant)!.push(cpu() - started)
      started = cpu()
      for (let i = 0; i < gemvRepeats; i++) gemv(y)
      gemvTimes.get(variant)!.push(cpu() - started)
    }
  }
  const gmacs = (ms: number, count: number) => ((n * k * count) / (ms / 1000) / 1e9).toFixed(1)
  const line = (what: string, times: Map<Variant, number[]>, count: number) => {
    const [plain, pairs, dotAdd] = variants.map((variant) => median(times.get(variant)!))
    return (
      `${what} plain ${gmacs(plain!, count)}, pairs ${gmacs(pairs!, count)}, dot-add ${gmacs(dotAdd!, count)} GMAC/s ` +
      `(pairs ${(plain! / pairs!).toFixed(2)}x plain, dot-add ${(plain! / dotAdd!).toFixed(2)}x plain, dot-add ${(pairs! / dotAdd!).toFixed(2)}x pairs)`
    )
  }
  console.log(`n ${n} k ${k}: ${line(`GEMM ${tokens} tokens`, gemmTimes, tokens)}`)
  console.log(`n ${n} k ${k}: ${line('GEMV', gemvTimes, gemvRepeats)}`)
}
