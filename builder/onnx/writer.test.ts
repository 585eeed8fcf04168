import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, describe, expect, it } from 'vitest'
import {
  attribute,
  float16Bits,
  float16ToNumber,
  GraphBuilder,
  readModelSummary,
  tensor,
  toFloat16,
  writeModelFile,
} from './index.ts'

const folder = mkdtempSync(join(tmpdir(), 'ondevice-onnx-writer-'))
afterAll(() => rmSync(folder, { recursive: true, force: true }))

describe('ONNX writer', () => {
  it('writes a graph with symbolic dims, external data and a com.microsoft op that ORT runs', async () => {
    const g = new GraphBuilder('writer_test')
    const x = g.input('x', 'float32', ['batch', 'sequence', 4])
    // 4x300 weights: 4800 bytes, above the external threshold.
    const weights = new Float32Array(4 * 300).map((_, i) => ((i % 7) - 3) / 10)
    const w = g.initializer('w', tensor.float32(weights, [4, 300]))
    const bias = g.initializer('bias', tensor.float32([0.5], [1]))
    const product = g.node('MatMul', [x, w])
    const shifted = g.node('Add', [product, bias])
    // FastGelu is a com.microsoft contrib op: checks the domain import.
    const activated = g.node('FastGelu', [shifted], {}, { domain: 'com.microsoft' })
    const axes = g.initializer('axes', tensor.int64([-1]))
    g.node('ReduceSum', [activated, axes], { keepdims: 0 }, { outputs: ['sum'] })
    g.node('LeakyRelu', [x], { alpha: attribute.float(1) }, { outputs: ['same'] })
    g.output('sum', 'float32', ['batch', 'sequence'])
    g.output('same', 'float32', ['batch', 'sequence', 4])
    const path = join(folder, 'model.onnx')
    const written = writeModelFile(g, path)
    expect(written.dataPath).toBe(`${path}_data`)
    expect(statSync(written.dataPath!).size).toBe(4800)
    expect(written.modelBytes).toBeLessThan(2000)

    const summary = readModelSummary(new Uint8Array(readFileSync(path)))
    expect(summary.opsets).toEqual({ '': 17, 'com.microsoft': 1 })
    expect(summary.inputs[0]).toEqual({ name: 'x', type: 'float32', dims: ['batch', 'sequence', 4] })
    expect(summary.initializers.find((i) => i.name === 'w')?.external).toEqual({
      location: 'model.onnx_data',
      offset: 0,
      length: 4800,
    })
    expect(summary.nodes.map((n) => n.opType)).toEqual([
      'MatMul',
      'Add',
      'FastGelu',
      'ReduceSum',
      'LeakyRelu',
    ])

    const session = await ort.InferenceSession.create(path)
    try {
      const input = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => Math.sin(i))
      const result = await session.run({ x: new ort.Tensor('float32', input, [2, 3, 4]) })
      expect(result.sum!.dims).toEqual([2, 3])
      expect(result.same!.data).toEqual(input)
      const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(0.7978845608 * (v + 0.044715 * v ** 3)))
      for (let row = 0; row < 6; row++) {
        let expected = 0
        for (let col = 0; col < 300; col++) {
          let dot = 0.5
          for (let k = 0; k < 4; k++) dot += input[row * 4 + k]! * weights[k * 300 + col]!
          expected += gelu(dot)
        }
        expect(Math.abs((result.sum!.data as Float32Array)[row]! - expected)).toBeLessThan(1e-3)
      }
    } finally {
      await session.release()
    }
  })

  it('rejects undefined inputs and wrong initializer sizes by name', () => {
    const g = new GraphBuilder()
    expect(() => g.node('Relu', ['missing'])).toThrow(/"missing", which is not defined/)
    expect(() => g.initializer('bad', { type: 'float32', dims: [3], data: new Uint8Array(4) })).toThrow(
      /"bad" has 4 bytes; float32\[3\] needs 12/,
    )
  })

  it('converts to float16 with round-to-nearest-even, the same by hand and natively', () => {
    const values = new Float32Array([
      0,
      -0,
      1,
      1 + 2 ** -11,
      1 + 3 * 2 ** -11,
      65504,
      65520,
      1e-8,
      6e-8,
      -2.5,
      2 ** -24,
      Number.NaN,
    ])
    const random = new Float32Array(2000).map((_, i) => Math.sin(i * 12.9898) * 10 ** ((i % 12) - 8))
    const all = new Float32Array([...values, ...random])
    const converted = toFloat16(all)
    for (let i = 0; i < all.length; i++) expect(converted[i], String(all[i])).toBe(float16Bits(all[i]!))
    expect(float16Bits(1 + 2 ** -11)).toBe(0x3c00) // tie → even
    expect(float16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02)
    expect(float16Bits(65520)).toBe(0x7c00)
    expect(float16ToNumber(float16Bits(-2.5))).toBe(-2.5)
  })
})
