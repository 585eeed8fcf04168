// Two kernels of the relaxed build (engine-relaxed.wasm) of another module file (before a kernel
// change) against this checkout's, in one process, alternating, on the Qwen3.5-0.8B shape's
// prefill: the delta rule (qwen35_gated_delta, 16 heads, dk = dv = 128) and the pairs-form 4-bit
// GEMM (gemm_panel_q4_relaxed) on the delta layers' and the MLP's shapes. Checks both modules give
// the same bytes first (the delta rule's outputs over three calls in a row, so the state they
// carry is checked through them whatever its layout; the GEMM's on several token counts), then
// prints the medians of this thread's CPU time (process.threadCpuUsage, so other processes on a
// loaded machine count less than in wall time) and the ratios. A diagnostic script, not part of
// `npm run bench`:
//   git show <commit>:wasm/engine/engine-relaxed.wasm > /tmp/engine-relaxed-before.wasm
//   npx node test/bench/profile-engine-relaxed-before-after.ts --before /tmp/engine-relaxed-before.wasm \
//     [--tokens 128] [--rounds 9] [--kernels delta,gemm] [--unchecked]
// --unchecked skips the byte check: to time a bound (a change that drops work and so gives a
// wrong result), never to judge a change that is meant to keep the bits.
import { readFileSync } from 'node:fs'
import { compileEngine, Kernels, type Pointer } from '../../wasm/engine/kernels.ts'
import { loadEngineModule } from '../../wasm/engine/node.ts'

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`)
  return index < 0 ? undefined : process.argv[index + 1]
}
const beforePath = argument('before')
if (!beforePath)
  throw new Error('--before FILE (an engine-relaxed.wasm to compare with this checkout) is required')
const tokens = Number(argument('tokens') ?? 128)
const rounds = Number(argument('rounds') ?? 9)
const which = new Set((argument('kernels') ?? 'delta,gemm').split(','))
const checked = !process.argv.includes('--unchecked')
const modules = {
  before: await compileEngine(new Uint8Array(readFileSync(beforePath))),
  after: await loadEngineModule('relaxed'),
}
type Side = keyof typeof modules
const sides: readonly Side[] = ['before', 'after']

/** Milliseconds of CPU time of this thread. */
function cpu(): number {
  const usage = process.threadCpuUsage()
  return (usage.user + usage.system) / 1000
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

interface Case {
  /** One call of the kernel over `rows` tokens (the measured one takes `tokens`). */
  run(rows: number): void
  /** The bytes the two modules must agree on. */
  bytes(): Buffer
}

async function filled(side: Side) {
  const kernels = await Kernels.create(modules[side])
  let state = 12345
  const random = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return state / 2 ** 32
  }
  const floats = (count: number, value: () => number): Pointer => {
    const pointer = kernels.alloc(count * 4)
    const view = kernels.f32(pointer, count)
    for (let i = 0; i < count; i++) view[i] = value()
    return pointer
  }
  return { kernels, random, floats }
}

// Qwen3.5-0.8B's delta layers: 16 key and 16 value heads of 128.
async function delta(side: Side): Promise<Case> {
  const { kernels, random, floats } = await filled(side)
  const [keyHeads, valueHeads, dk, dv] = [16, 16, 128, 128]
  const stride = 2 * keyHeads * dk + valueHeads * dv
  const qkv = floats(tokens * stride, () => random() - 0.5)
  const z = floats(tokens * valueHeads * dv, () => random() - 0.5)
  const a = floats(tokens * valueHeads, () => random() - 0.5)
  const b = floats(tokens * valueHeads, () => random() - 0.5)
  const negExpALog = floats(valueHeads, () => -Math.exp(random() - 0.5))
  const dtBias = floats(valueHeads, random)
  const norm = floats(dv, () => 1 + random() * 0.1)
  const states = floats(valueHeads * dk * dv, () => 0)
  const out = floats(tokens * valueHeads * dv, () => 0)
  const scratch = floats(kernels.k.qwen35_gated_delta_scratch_floats(valueHeads, dk, dv), () => 0)
  const outputs: Buffer[] = []
  return {
    run(rows) {
      kernels.k.qwen35_gated_delta(
        qkv,
        stride,
        z,
        valueHeads * dv,
        a,
        b,
        valueHeads,
        negExpALog,
        dtBias,
        norm,
        states,
        out,
        valueHeads * dv,
        scratch,
        rows,
        keyHeads,
        valueHeads,
        dk,
        dv,
        1e-6,
        0,
        valueHeads,
      )
      if (outputs.length < 3) outputs.push(Buffer.from(kernels.bytes(out, rows * valueHeads * dv * 4)))
    },
    bytes: () => Buffer.concat(outputs),
  }
}

async function gemm(side: Side, n: number, k: number): Promise<Case> {
  const { kernels, random, floats } = await filled(side)
  const blocks = k / 32
  const weights = kernels.alloc((n / 4) * blocks * 64)
  const codes4 = kernels.bytes(weights, (n / 4) * blocks * 64)
  for (let i = 0; i < codes4.length; i++) codes4[i] = Math.floor(random() * 256)
  const scales = floats(n * blocks, () => 0.01 + random() * 0.02)
  const zeros = kernels.alloc(n * blocks)
  const zeroBytes = kernels.bytes(zeros, n * blocks)
  for (let i = 0; i < zeroBytes.length; i++) zeroBytes[i] = Math.floor(random() * 16)
  const x = floats(tokens * k, () => random() - 0.5)
  const codes = kernels.alloc(tokens * blocks * 64)
  const aScales = kernels.alloc(tokens * blocks * 4)
  const sums = kernels.alloc(tokens * blocks * 4)
  const starts = kernels.alloc(tokens * blocks * 4)
  const y = kernels.alloc(tokens * n * 4)
  const outputs: Buffer[] = []
  return {
    run(rows) {
      kernels.k.quantize_rows_q4_relaxed!(x, rows, k, codes, aScales, sums, starts, 0, rows)
      kernels.k.gemm_panel_q4_relaxed!(
        weights,
        scales,
        zeros,
        n,
        blocks,
        codes,
        aScales,
        starts,
        rows,
        y,
        0,
        n,
      )
      if (outputs.length < 5) outputs.push(Buffer.from(kernels.bytes(y, rows * n * 4)))
    },
    bytes: () => Buffer.concat(outputs),
  }
}

const cases: [string, (side: Side) => Promise<Case>, readonly number[]][] = []
if (which.has('delta')) cases.push([`qwen35_gated_delta, ${tokens} tokens`, delta, [tokens, tokens, tokens]])
if (which.has('gemm'))
  for (const [n, k] of [
    [3584, 1024],
    [1024, 3584],
    [6144, 1024],
  ] as const)
    cases.push([
      `gemm_panel_q4_relaxed n ${n} k ${k}, ${tokens} tokens`,
      (side) => gemm(side, n, k),
      [tokens, 5, 7, 1, tokens],
    ])

for (const [name, make, checks] of cases) {
  const prepared = { before: await make('before'), after: await make('after') }
  // The first calls fill the byte record (and warm both modules up).
  for (const rows of checks) for (const side of sides) prepared[side].run(rows)
  if (checked && !prepared.before.bytes().equals(prepared.after.bytes()))
    throw new Error(`${name}: the two modules' bytes differ`)
  const times = { before: [] as number[], after: [] as number[] }
  for (let round = 0; round < rounds; round++)
    for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
      const started = cpu()
      for (let i = 0; i < 3; i++) prepared[side].run(tokens)
      times[side].push((cpu() - started) / 3)
    }
  const before = median(times.before)
  const after = median(times.after)
  console.log(
    `${name}: before ${before.toFixed(2)} ms, after ${after.toFixed(2)} ms of CPU per call (${(before / after).toFixed(3)}x)${checked ? ', same bytes' : ', bytes not checked'}`,
  )
}
