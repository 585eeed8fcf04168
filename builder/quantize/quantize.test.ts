import { describe, expect, it } from 'vitest'
import { seededRandom } from '../architectures/random-weights.ts'
import { matrix } from '../architectures/weights.ts'
import { dequantizeBlockwise4, quantizeBlockwise4, quantizeColumnwiseInt8 } from './quantize.ts'

function randomMatrix(rows: number, cols: number, seed: number) {
  const random = seededRandom(seed)
  return matrix(
    rows,
    cols,
    Float32Array.from({ length: rows * cols }, () => random() * 2 - 1.3),
  )
}

describe('quantizers', () => {
  it('q4 block-32 with zero points reconstructs within half a step, K not a multiple of the block', () => {
    const w = randomMatrix(5, 70, 3)
    const q = quantizeBlockwise4(w)
    expect(q.blocks).toBe(3)
    expect(q.data.length).toBe(5 * 3 * 16)
    expect(q.zeroPoints.length).toBe(5 * 2)
    const back = dequantizeBlockwise4(q, 5, 70)
    for (let r = 0; r < 5; r++)
      for (let c = 0; c < 70; c++) {
        const scale = q.scales[r * 3 + Math.floor(c / 32)]!
        expect(Math.abs(back[r * 70 + c]! - w.data[r * 70 + c]!)).toBeLessThanOrEqual(scale / 2 + 1e-7)
      }
  })

  it('q8 is symmetric per output column and transposed to K × N', () => {
    const w = randomMatrix(4, 9, 5)
    const q = quantizeColumnwiseInt8(w)
    for (let r = 0; r < 4; r++) {
      let maxAbs = 0
      for (let c = 0; c < 9; c++) maxAbs = Math.max(maxAbs, Math.abs(w.data[r * 9 + c]!))
      expect(q.scales[r]).toBeCloseTo(maxAbs / 127, 6)
      for (let c = 0; c < 9; c++)
        expect(Math.abs(q.data[c * 4 + r]! * q.scales[r]! - w.data[r * 9 + c]!)).toBeLessThanOrEqual(
          q.scales[r]! / 2 + 1e-7,
        )
    }
  })
})
