import { describe, expect, it } from 'vitest'
import { addModelBytes } from '../test/wasm/add-model-fixture.ts'
import { loadOrtWebForNode } from './node.ts'

describe('wasm/node', () => {
  it('loads onnxruntime-web from node_modules and runs a model on WASM', async () => {
    const { ort, setup } = await loadOrtWebForNode({ numThreads: 1 })
    expect(setup).toMatchObject({ host: 'node', threads: 1, ortVersion: '1.30.0' })
    expect(setup.wasmSource).toMatch(/node_modules\/onnxruntime-web\/dist\/ort-wasm-simd-threaded\.wasm$/)
    const session = await ort.InferenceSession.create(addModelBytes, { executionProviders: ['wasm'] })
    const result = await session.run({ x: new ort.Tensor('float32', new Float32Array([1, 2, 3]), [3]) })
    expect(Array.from(result.y?.data as Float32Array)).toEqual([2, 4, 6])
    await session.release()
  })

  it('rejects a conflicting thread count once configured, naming the field', async () => {
    await loadOrtWebForNode({ numThreads: 1 })
    await expect(loadOrtWebForNode({ numThreads: 2 })).rejects.toMatchObject({
      code: 'invalid_argument',
      param: 'numThreads',
    })
    expect(() => loadOrtWebForNode({ numThreads: 0 })).toThrow(/numThreads/)
  })
})
