// Which build of the engine Node runs (./simd.ts, ./node.ts): the relaxed-SIMD probe, the
// ONDEVICE_ENGINE_SIMD override and its errors, and that each build is what its name says.
import { afterEach, describe, expect, it } from 'vitest'
import { Kernels } from './kernels.ts'
import { loadEngineModule, nodeEngineSimd } from './node.ts'
import { chooseEngineSimd, hostHasRelaxedSimd } from './simd.ts'

const saved = process.env.ONDEVICE_ENGINE_SIMD
afterEach(() => {
  if (saved === undefined) delete process.env.ONDEVICE_ENGINE_SIMD
  else process.env.ONDEVICE_ENGINE_SIMD = saved
})

describe('engine module selection', () => {
  it('Node 22+ validates the relaxed-SIMD probe and picks the relaxed build unless told otherwise', () => {
    expect(hostHasRelaxedSimd()).toBe(true)
    delete process.env.ONDEVICE_ENGINE_SIMD
    expect(nodeEngineSimd()).toBe('relaxed')
    expect(chooseEngineSimd('plain')).toBe('plain')
    process.env.ONDEVICE_ENGINE_SIMD = 'plain'
    expect(nodeEngineSimd()).toBe('plain')
    expect(nodeEngineSimd('relaxed')).toBe('relaxed')
  })

  it('rejects an unknown ONDEVICE_ENGINE_SIMD, saying which values it takes', () => {
    process.env.ONDEVICE_ENGINE_SIMD = 'fast'
    expect(() => nodeEngineSimd()).toThrow(/must be 'plain' or 'relaxed'/)
    expect(() => nodeEngineSimd()).toThrow(expect.objectContaining({ code: 'invalid_argument' }))
  })

  it('engine.wasm has no relaxed kernels; engine-relaxed.wasm has them', async () => {
    expect((await Kernels.create(await loadEngineModule('plain'))).relaxed).toBe(false)
    const relaxed = await Kernels.create(await loadEngineModule('relaxed'))
    expect(relaxed.relaxed).toBe(true)
    expect(typeof relaxed.k.quantize_rows_q4_relaxed).toBe('function')
    expect(typeof relaxed.k.gemm_q4_relaxed).toBe('function')
  })
})
