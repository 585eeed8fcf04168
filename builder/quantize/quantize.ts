// Weight quantization for the two formats that run fast where they are used (docs/builder.md,
// "Why q8 on WASM and q4 elsewhere"):
// - q4: block-wise asymmetric int4 for com.microsoft MatMulNBits (block 32, fp32 scales, packed
//   4-bit zero points): fast on onnxruntime-node and WebGPU.
// - q8: symmetric int8 with one fp32 scale per output column for com.microsoft
//   DynamicQuantizeMatMul: the fastest measured WASM format under ~1.2 bytes per parameter.

import type { Matrix } from '../architectures/weights.ts'

export interface Blockwise4Bit {
  /** N × blocks × (blockSize / 2) bytes; element 2j in the low nibble, 2j+1 in the high one. */
  readonly data: Uint8Array
  /** N × blocks. */
  readonly scales: Float32Array
  /** N × ceil(blocks / 2) bytes, two 4-bit zero points per byte (low nibble first). */
  readonly zeroPoints: Uint8Array
  readonly blocks: number
  readonly blockSize: number
}

/** Quantizes W (N = rows = output features, K = cols) block-wise along K. */
export function quantizeBlockwise4(w: Matrix, blockSize = 32): Blockwise4Bit {
  const n = w.rows
  const k = w.cols
  const blocks = Math.ceil(k / blockSize)
  const blobSize = blockSize / 2
  const zeroPointBytes = Math.ceil(blocks / 2)
  const data = new Uint8Array(n * blocks * blobSize)
  const scales = new Float32Array(n * blocks)
  const zeroPoints = new Uint8Array(n * zeroPointBytes)
  const source = w.data
  for (let row = 0; row < n; row++) {
    const rowBase = row * k
    for (let block = 0; block < blocks; block++) {
      const start = rowBase + block * blockSize
      const end = rowBase + Math.min(k, (block + 1) * blockSize)
      // The range always includes 0 so that zero padding (K not a multiple of the block) is exact.
      let min = 0
      let max = 0
      for (let i = start; i < end; i++) {
        const v = source[i]!
        if (v < min) min = v
        else if (v > max) max = v
      }
      const scale = Math.fround((max - min) / 15)
      let zeroPoint = 8
      let inverse = 0
      if (scale !== 0) {
        zeroPoint = Math.round(-min / scale)
        zeroPoint = zeroPoint < 0 ? 0 : Math.min(zeroPoint, 15)
        inverse = 1 / scale
      }
      const base = (row * blocks + block) * blobSize
      for (let j = 0; j < blobSize; j++) {
        const i0 = start + 2 * j
        let q0 = i0 < end ? Math.round(source[i0]! * inverse) + zeroPoint : zeroPoint
        let q1 = i0 + 1 < end ? Math.round(source[i0 + 1]! * inverse) + zeroPoint : zeroPoint
        q0 = q0 < 0 ? 0 : Math.min(q0, 15)
        q1 = q1 < 0 ? 0 : Math.min(q1, 15)
        data[base + j] = q0 | (q1 << 4)
      }
      scales[row * blocks + block] = scale === 0 ? 1 : scale
      const zpIndex = row * zeroPointBytes + (block >> 1)
      zeroPoints[zpIndex] = zeroPoints[zpIndex]! | (block & 1 ? zeroPoint << 4 : zeroPoint)
    }
  }
  return { data, scales, zeroPoints, blocks, blockSize }
}

/** What MatMulNBits computes with: the dequantized W (N × K), for error checks. */
export function dequantizeBlockwise4(q: Blockwise4Bit, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols)
  const blobSize = q.blockSize / 2
  const zeroPointBytes = Math.ceil(q.blocks / 2)
  for (let row = 0; row < rows; row++)
    for (let c = 0; c < cols; c++) {
      const block = Math.floor(c / q.blockSize)
      const within = c % q.blockSize
      const byte = q.data[(row * q.blocks + block) * blobSize + (within >> 1)]!
      const code = within & 1 ? byte >> 4 : byte & 15
      const zpByte = q.zeroPoints[row * zeroPointBytes + (block >> 1)]!
      const zeroPoint = block & 1 ? zpByte >> 4 : zpByte & 15
      out[row * cols + c] = (code - zeroPoint) * q.scales[row * q.blocks + block]!
    }
  return out
}

export interface ColumnwiseInt8 {
  /** K × N (input features × output features), as DynamicQuantizeMatMul's B. */
  readonly data: Int8Array
  /** N scales, one per output column. */
  readonly scales: Float32Array
}

/** Symmetric int8 per output column; W is N × K (HF layout), the result is transposed to K × N. */
export function quantizeColumnwiseInt8(w: Matrix): ColumnwiseInt8 {
  const n = w.rows
  const k = w.cols
  const data = new Int8Array(k * n)
  const scales = new Float32Array(n)
  for (let row = 0; row < n; row++) {
    let maxAbs = 0
    for (let c = 0; c < k; c++) maxAbs = Math.max(maxAbs, Math.abs(w.data[row * k + c]!))
    scales[row] = maxAbs === 0 ? 1 : Math.fround(maxAbs / 127)
  }
  // Transpose in tiles of 64 rows so both the reads and the writes stay in cache.
  const tile = 64
  for (let start = 0; start < n; start += tile) {
    const end = Math.min(n, start + tile)
    for (let c = 0; c < k; c++)
      for (let row = start; row < end; row++) {
        const q = Math.round(w.data[row * k + c]! / scales[row]!)
        data[c * n + row] = q > 127 ? 127 : Math.max(q, -127)
      }
  }
  return { data, scales }
}

export interface Blockwise8Bit {
  /** N × K codes (uint8, asymmetric). */
  readonly data: Uint8Array
  /** N × blocks. */
  readonly scales: Float32Array
  /** N × blocks, one uint8 zero point per block. */
  readonly zeroPoints: Uint8Array
  readonly blocks: number
}

/** Block-wise asymmetric uint8 along K (for GatherBlockQuantized bits=8 embeddings); K % blockSize == 0. */
export function quantizeBlockwise8(w: Matrix, blockSize = 32): Blockwise8Bit {
  const n = w.rows
  const k = w.cols
  if (k % blockSize !== 0) throw new Error(`quantizeBlockwise8: K ${k} is not a multiple of ${blockSize}`)
  const blocks = k / blockSize
  const data = new Uint8Array(n * k)
  const scales = new Float32Array(n * blocks)
  const zeroPoints = new Uint8Array(n * blocks)
  const source = w.data
  for (let row = 0; row < n; row++)
    for (let block = 0; block < blocks; block++) {
      const start = row * k + block * blockSize
      let min = 0
      let max = 0
      for (let i = start; i < start + blockSize; i++) {
        const v = source[i]!
        if (v < min) min = v
        else if (v > max) max = v
      }
      const scale = Math.fround((max - min) / 255)
      const zeroPoint = scale === 0 ? 128 : Math.min(255, Math.max(0, Math.round(-min / scale)))
      const inverse = scale === 0 ? 0 : 1 / scale
      for (let i = start; i < start + blockSize; i++)
        data[i] = Math.min(255, Math.max(0, Math.round(source[i]! * inverse) + zeroPoint))
      scales[row * blocks + block] = scale === 0 ? 1 : scale
      zeroPoints[row * blocks + block] = zeroPoint
    }
  return { data, scales, zeroPoints, blocks }
}
