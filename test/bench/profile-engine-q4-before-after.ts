// The plain build's 4-bit products (engine.wasm: gemm_panel_q4, the prefill GEMM, and gemm_q4, the
// decode GEMV) of another module file (before a kernel change) against this checkout's, in one
// process, alternating, on Qwen3.5-0.8B's shapes. Checks both give the same bytes first (a change
// must keep the bits), then prints the medians of this thread's CPU time (process.threadCpuUsage,
// so other processes on a loaded machine count less than in wall time) and the ratios. A
// diagnostic script, not part of `npm run bench`:
//   git show <commit>:wasm/engine/engine.wasm > /tmp/engine-before.wasm
//   npx node test/bench/profile-engine-q4-before-after.ts --before /tmp/engine-before.wasm [--tokens 512] [--rounds 7]
import { readFileSync } from 'node:fs'
import { compileEngine, Kernels, type Pointer } from '../../wasm/engine/kernels.ts'
import { loadEngineModule } from '../../wasm/engine/node.ts'

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`)
  return index < 0 ? undefined : process.argv[index + 1]
}
const beforePath = argument('before')
if (!beforePath) throw new Error('--before FILE (an engine.wasm to compare with this checkout) is required')
const tokens = Number(argument('tokens') ?? 512)
const rounds = Number(argument('rounds') ?? 7)
const gemvRepeats = 50
// [n, k]: the MLP's gate/up and down projections, and attention's q projection.
const shapes: readonly [number, number][] = [
  [3584, 1024],
  [1024, 3584],
  [4096, 1024],
]
const modules = {
  before: await compileEngine(new Uint8Array(readFileSync(beforePath))),
  after: await loadEngineModule('plain'),
}
type Side = keyof typeof modules
const sides: readonly Side[] = ['before', 'after']

async function prepare(side: Side, n: number, k: number) {
  const kernels = await Kernels.create(modules[side])
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
  const y = kernels.alloc(tokens * n * 4)
  const K = kernels.k
  K.quantize_rows_q4(x, tokens, k, codes, aScales, sums, 0, tokens)
  const matrix = [weights, scales, zeros, n, blocks, codes, aScales] as const
  const gemm = (rows: number, out: Pointer) => K.gemm_panel_q4(...matrix, rows, out, 0, n)
  const gemv = (out: Pointer) => K.gemm_q4(...matrix, sums, 1, out, 0, n)
  const bytes = () => Buffer.from(kernels.bytes(y, tokens * n * 4))
  return { gemm, gemv, y, bytes }
}

function cpu(): number {
  const usage = process.threadCpuUsage()
  return (usage.user + usage.system) / 1000
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

for (const [n, k] of shapes) {
  const prepared = { before: await prepare('before', n, k), after: await prepare('after', n, k) }
  for (const side of sides) prepared[side].gemm(tokens, prepared[side].y)
  if (!prepared.before.bytes().equals(prepared.after.bytes()))
    throw new Error(`n ${n} k ${k}: the GEMM's bytes differ between the two modules`)
  // Odd token counts too (the tile's single-token tail).
  for (const rows of [1, 5, 7]) {
    for (const side of sides) prepared[side].gemm(rows, prepared[side].y)
    if (!prepared.before.bytes().equals(prepared.after.bytes()))
      throw new Error(`n ${n} k ${k}, ${rows} tokens: the GEMM's bytes differ between the two modules`)
  }
  for (const side of sides) prepared[side].gemv(prepared[side].y)
  if (!prepared.before.bytes().equals(prepared.after.bytes()))
    throw new Error(`n ${n} k ${k}: the GEMV's bytes differ between the two modules`)
  const gemmTimes = { before: [] as number[], after: [] as number[] }
  const gemvTimes = { before: [] as number[], after: [] as number[] }
  for (let round = 0; round < rounds; round++) {
    for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
      const { gemm, gemv, y } = prepared[side]
      let started = cpu()
      gemm(tokens, y)
      gemmTimes[side].push(cpu() - started)
      started = cpu()
      for (let i = 0; i < gemvRepeats; i++) gemv(y)
      gemvTimes[side].push(cpu() - started)
    }
  }
  const gmacs = (ms: number, count: number) => ((n * k * count) / (ms / 1000) / 1e9).toFixed(1)
  const line = (what: string, times: { before: number[]; after: number[] }, count: number) => {
    const before = median(times.before)
    const after = median(times.after)
    return `${what} before ${gmacs(before, count)}, after ${gmacs(after, count)} GMAC/s (${(before / after).toFixed(2)}x)`
  }
  console.log(
    `n ${n} k ${k}: ${line(`GEMM ${tokens} tokens`, gemmTimes, tokens)}; ${line('GEMV', gemvTimes, gemvRepeats)}`,
  )
}
