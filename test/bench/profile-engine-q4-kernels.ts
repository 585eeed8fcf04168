// The 4-bit matrix products alone, engine.wasm's (SIMD128) against engine-relaxed.wasm's (relaxed
// SIMD, src/gemm-q4-relaxed.c), in one process, alternating, on Qwen3.5-0.8B's shapes: the prefill
// GEMM over a 512-token pass and the decode GEMV (one token). Prints the median throughput of
// each and the ratio; checks the two give the same bytes first. A diagnostic script, not part of
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

async function prepare(relaxed: boolean, n: number, k: number) {
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
  const gemm = (rows: number, out: Pointer) =>
    relaxed
      ? K.gemm_panel_q4_relaxed!(weights, scales, zeros, n, blocks, codes, aScales, starts, rows, out, 0, n)
      : K.gemm_panel_q4(weights, scales, zeros, n, blocks, codes, aScales, rows, out, 0, n)
  const gemv = (out: Pointer) =>
    relaxed
      ? K.gemm_q4_relaxed!(weights, scales, zeros, n, blocks, codes, aScales, sums, 1, out, 0, n)
      : K.gemm_q4(weights, scales, zeros, n, blocks, codes, aScales, sums, 1, out, 0, n)
  return { kernels, gemm, gemv, y }
}

/** Milliseconds of CPU time of this thread. */
function cpu(): number {
  const usage = process.threadCpuUsage()
  return (usage.user + usage.system) / 1000
}

const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!

for (const [n, k] of shapes) {
  const plain = await prepare(false, n, k)
  const relaxed = await prepare(true, n, k)
  plain.gemm(tokens, plain.y)
  relaxed.gemm(tokens, relaxed.y)
  const same = Buffer.from(plain.kernels.bytes(plain.y, tokens * n * 4)).equals(
    Buffer.from(relaxed.kernels.bytes(relaxed.y, tokens * n * 4)),
  )
  if (!same) throw new Error(`n ${n} k ${k}: the relaxed GEMM's bytes differ from the plain one's`)
  const times = {
    plainGemm: [] as number[],
    relaxedGemm: [] as number[],
    plainGemv: [] as number[],
    relaxedGemv: [] as number[],
  }
  const gemvRepeats = 50
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of [
      ['plainGemm', () => plain.gemm(tokens, plain.y)],
      ['relaxedGemm', () => relaxed.gemm(tokens, relaxed.y)],
      [
        'plainGemv',
        () => {
          for (let i = 0; i < gemvRepeats; i++) plain.gemv(plain.y)
        },
      ],
      [
        'relaxedGemv',
        () => {
          for (let i = 0; i < gemvRepeats; i++) relaxed.gemv(relaxed.y)
        },
      ],
    ] as const) {
      const started = cpu()
      run()
      times[name].push(cpu() - started)
    }
  }
  const gmacs = (ms: number, count: number) => ((n * k * count) / (ms / 1000) / 1e9).toFixed(1)
  const pg = median(times.plainGemm),
    rg = median(times.relaxedGemm)
  const pv = median(times.plainGemv),
    rv = median(times.relaxedGemv)
  console.log(
    `n ${n} k ${k}: GEMM ${tokens} tokens plain ${gmacs(pg, tokens)} vs relaxed ${gmacs(rg, tokens)} GMAC/s (${(pg / rg).toFixed(2)}x); ` +
      `GEMV plain ${gmacs(pv, gemvRepeats)} vs relaxed ${gmacs(rv, gemvRepeats)} GMAC/s (${(pv / rv).toFixed(2)}x)`,
  )
}
