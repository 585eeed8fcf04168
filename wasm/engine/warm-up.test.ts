// The engine's warm-up (./warm-up.ts): it runs every kernel the model's forward pass calls, the
// logits are the same bits with and without it (prefill and decode, relaxed and plain builds, q4,
// q8 and fp32), and it leaves the arena as it found it: nothing below the top written, zeros above.
// Whether it makes the first prompt faster is a benchmark's question (test/bench/engine-first-prompt.ts).
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeQwen35Fixture } from '../../builder/architectures/qwen3-5-fixture.ts'
import { InvalidArgumentError } from '../../core/errors.ts'
import { parseModelConfig } from '../../core/model-package.ts'
import { watchKernelCalls } from '../../test/support/engine-kernel-calls.ts'
import type { DotForm, DotFormRequest } from './dot-form.ts'
import { Kernels } from './kernels.ts'
import { folderWeightReader, loadEngineModule } from './node.ts'
import { createEngineSession } from './session.ts'
import type { EngineSimd } from './simd.ts'
import { warmUpKernels, warmUpShape, warmUpSteps } from './warm-up.ts'

let folder: string
let packageDir: string

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-engine-warm-up-'))
  packageDir = join(folder, 'tiny')
  await writeQwen35Fixture({ outDir: packageDir, seed: 3, dtypes: ['fp32', 'q8', 'q4'] })
}, 120_000)
afterAll(async () => {
  await rm(folder, { recursive: true, force: true })
})

// Every instance the engine creates has its exports wrapped, so a test can see which kernels the
// session's load (the warm-up among it) and its forward passes call. Vitest runs this file in its
// own worker.
const called = { load: new Set<string>(), forward: new Set<string>() }
let phase: keyof typeof called | undefined
watchKernelCalls((name, _args, call) => {
  if (phase) called[phase].add(name)
  return call()
})

const prompt = Array.from({ length: 11 }, (_, i) => (i * 7919 + 13) % 151_000)

/** The logits of an 11-token prompt and three greedy decode steps, as bytes. */
async function run(dtype: string, simd: EngineSimd, warmUp: boolean, dot: DotFormRequest): Promise<Buffer[]> {
  called.load.clear()
  called.forward.clear()
  const module = await loadEngineModule(simd)
  phase = 'load'
  const session = await createEngineSession({
    module,
    files: folderWeightReader(packageDir),
    dtype,
    warmUp,
    dot,
  })
  const logits: Buffer[] = []
  try {
    phase = 'forward'
    let next = await session.append(prompt)
    for (let step = 0; step < 4; step++) {
      logits.push(Buffer.from(next.buffer.slice(next.byteOffset, next.byteOffset + next.byteLength)))
      if (step === 3) break
      let best = 0
      for (let i = 1; i < next.length; i++) if (next[i]! > next[best]!) best = i
      next = await session.append([best])
    }
  } finally {
    phase = undefined
    await session.dispose()
  }
  return logits
}

describe('the engine warm-up', () => {
  // A dot form is forced so the load runs no probe (the relaxed 4-bit products' forms, dot-form.ts):
  // the warm-up then warms that form only. The last test covers 'auto'.
  const cases: readonly [string, EngineSimd, DotForm][] = [
    ['q4', 'relaxed', 'pairs'],
    ['q4', 'relaxed', 'dot-add'],
    ['q4', 'plain', 'pairs'],
    ['q8', 'relaxed', 'pairs'],
    ['fp32', 'relaxed', 'pairs'],
  ]
  it.each(cases)(
    '%s (%s build, %s form): warms every kernel the forward pass calls; the logits are the same bits without it',
    async (dtype, simd, dot) => {
      const cold = await run(dtype, simd, false, dot)
      const forward = new Set(called.forward)
      const coldLoad = new Set(called.load)
      const warm = await run(dtype, simd, true, dot)
      const warmLoad = new Set(called.load)
      expect(warm.length).toBe(cold.length)
      for (const [i, bytes] of warm.entries()) expect(bytes.equals(cold[i] as Buffer)).toBe(true)

      const kernels = await Kernels.create(await loadEngineModule(simd))
      const config = parseModelConfig(await readFile(join(packageDir, 'config.json'), 'utf8'))
      const shape = warmUpShape(config, dtype)
      const warmed = new Set(warmUpSteps(kernels, shape, [dot]).map((step) => step.kernel as string))
      // The embedding lookup (embed_*, or f16_to_f32 on an fp16 table's rows) is left out on
      // purpose: one row copy per 64-token chunk.
      const lookup = (name: string) => name.startsWith('embed_') || name === 'f16_to_f32'
      const missing = [...forward].filter((name) => !lookup(name) && !warmed.has(name))
      expect(missing).toEqual([])
      // And nothing warmed that this model never calls (time spent for nothing).
      expect([...warmed].filter((name) => !forward.has(name))).toEqual([])
      // The session ran them while it loaded, and only when asked to.
      expect([...warmed].filter((name) => !warmLoad.has(name))).toEqual([])
      expect([...warmed].filter((name) => coldLoad.has(name))).toEqual([])
    },
    60_000,
  )

  it("q4, relaxed build, dot 'auto': the load warms and times both forms, the forward pass runs the chosen ones; same bits", async () => {
    const forced = await run('q4', 'relaxed', true, 'pairs')
    const chosen = await run('q4', 'relaxed', true, 'auto')
    for (const [i, bytes] of chosen.entries()) expect(bytes.equals(forced[i] as Buffer)).toBe(true)
    const both = [
      'gemm_panel_q4_relaxed',
      'gemm_panel_q4_relaxed_dot_add',
      'gemm_q4_relaxed',
      'gemm_q4_relaxed_dot_add',
    ]
    for (const name of both) expect(called.load.has(name), name).toBe(true)
    // One form of each product in the forward pass (which one is this host's measurement).
    const panels = both.slice(0, 2).filter((name) => called.forward.has(name))
    const gemvs = both.slice(2).filter((name) => called.forward.has(name))
    expect(panels.length).toBe(1)
    expect(gemvs.length).toBe(1)
  }, 60_000)

  it('writes nothing below the arena top and leaves zeros above it', async () => {
    const kernels = await Kernels.create(await loadEngineModule())
    const below = kernels.alloc(4096)
    const pattern = kernels.bytes(below, 4096)
    for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 31 + 7) & 0xff
    const before = Uint8Array.from(pattern)
    const top = kernels.mark()
    const config = parseModelConfig(
      JSON.stringify({
        model_type: 'qwen3_5_text',
        hidden_size: 64,
        intermediate_size: 128,
        num_hidden_layers: 4,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 16,
        vocab_size: 1000,
        rms_norm_eps: 1e-6,
        rope_theta: 10000000,
        partial_rotary_factor: 0.25,
        max_position_embeddings: 512,
        linear_num_key_heads: 2,
        linear_num_value_heads: 4,
        linear_key_head_dim: 16,
        linear_value_head_dim: 24,
        linear_conv_kernel_dim: 4,
      }),
    )
    const shape = warmUpShape(config, 'q4')
    expect(shape).toEqual({
      dtype: 'q4',
      headDim: 16,
      rotaryDim: 4,
      linear: { keyHeadDim: 16, valueHeadDim: 24, convKernel: 4 },
    })
    expect(warmUpKernels(kernels, shape)).toBeGreaterThanOrEqual(0)
    expect(kernels.mark()).toBe(top)
    expect(kernels.bytes(below, 4096)).toEqual(before)
    const above = kernels.bytes(top, kernels.memory.buffer.byteLength - top)
    expect(above.every((byte) => byte === 0)).toBe(true)
  })

  it('is asked for with a boolean', async () => {
    const options = {
      module: await loadEngineModule(),
      files: folderWeightReader(packageDir),
      dtype: 'q4',
      warmUp: 'yes' as unknown as boolean,
    }
    await expect(createEngineSession(options)).rejects.toThrow(InvalidArgumentError)
    await expect(createEngineSession(options)).rejects.toThrow(/warmUp must be true or false/)
  })
})
