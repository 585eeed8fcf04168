// Micro-benchmark: MatMulNBits (4-bit, block 32) at accuracy_level 0 vs 4, M=1 and M=64, K=1024, N=3584.
import * as ortNode from 'onnxruntime-node'
import { encodeModelToBuffers, GraphBuilder, tensor } from '../../builder/onnx/index.ts'
import { quantizeBlockwise4 } from '../../builder/quantize/quantize.ts'
import { loadOrtWebForNode } from '../../wasm/node.ts'

const K = 1024,
  N = 3584
const w = Float32Array.from({ length: N * K }, (_, i) => Math.sin(i * 0.37))
const q = quantizeBlockwise4({ rows: N, cols: K, data: w })
function model(level: number) {
  const g = new GraphBuilder('m')
  const x = g.input('x', 'float32', ['m', K])
  const b = g.initializer('b', { type: 'uint8', dims: [N, K / 32, 16], data: q.data })
  const s = g.initializer('s', tensor.float32(q.scales, [N * (K / 32)]))
  const z = g.initializer('z', { type: 'uint8', dims: [q.zeroPoints.length], data: q.zeroPoints })
  g.node(
    'MatMulNBits',
    [x, b, s, z],
    { K, N, bits: 4, block_size: 32, accuracy_level: level },
    { domain: 'com.microsoft', outputs: ['y'] },
  )
  g.output('y', 'float32', ['m', N])
  return encodeModelToBuffers(g, 'm.onnx_data')
}
for (const [label, ort] of [
  ['node', ortNode],
  ['wasm', (await loadOrtWebForNode({ numThreads: 1 })).ort as unknown as typeof ortNode],
] as const) {
  for (const level of [0, 4]) {
    const { model: bytes, externalData } = model(level)
    const session = await ort.InferenceSession.create(bytes, {
      externalData: [{ path: 'm.onnx_data', data: externalData }],
      ...(label === 'node' ? { intraOpNumThreads: 1 } : {}),
    })
    for (const m of [1, 64]) {
      const x = new ort.Tensor(
        'float32',
        Float32Array.from({ length: m * K }, (_, i) => Math.cos(i)),
        [m, K],
      )
      await session.run({ x })
      const runs = m === 1 ? 50 : 10
      const t = performance.now()
      for (let i = 0; i < runs; i++) await session.run({ x })
      console.log(
        `${label} accuracy_level ${level} M=${m}: ${((performance.now() - t) / runs).toFixed(2)} ms`,
      )
    }
    await session.release()
  }
}
