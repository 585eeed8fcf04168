// ggml's block formats, written the way ggml's reference quantizers (quantize_row_*_ref in
// ggml-quants.c) write them, so a file from `ondevice export` holds what llama.cpp's own tools
// would have made from the same float weights:
// - Q8_0: 32 weights, one fp16 scale d = max|x| / 127, codes round(x / d) (half away from zero).
// - Q4_0: 32 weights, one fp16 scale d = (the signed value of largest magnitude) / -8, codes
//   x / d + 8 in 0..15; weight = (code - 8) · d.
// - Q4_1: 32 weights, fp16 scale d = (max - min) / 15 and fp16 minimum m; weight = code · d + m.
// Nibbles: byte j holds element j (low) and element j + 16 (high), unlike the builder's q4
// (elements 2j and 2j + 1).
import { float16Bits, toFloat16 } from '../onnx/tensor.ts'
import type { GgmlTypeName } from './gguf-file.ts'

/** C's roundf: halves away from zero (Math.round rounds them up). */
function roundAwayFromZero(value: number): number {
  return value < 0 ? -Math.round(-value) : Math.round(value)
}

function writeHalf(out: Uint8Array, at: number, value: number): void {
  const bits = float16Bits(value)
  out[at] = bits & 0xff
  out[at + 1] = bits >> 8
}

function quantizeQ8_0(values: Float32Array): Uint8Array {
  const blocks = values.length / 32
  const out = new Uint8Array(blocks * 34)
  for (let block = 0; block < blocks; block++) {
    const start = block * 32
    let amax = 0
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(values[start + j]!))
    const d = Math.fround(amax / 127)
    const inverse = d === 0 ? 0 : Math.fround(1 / d)
    const base = block * 34
    writeHalf(out, base, d)
    for (let j = 0; j < 32; j++)
      out[base + 2 + j] = roundAwayFromZero(Math.fround(values[start + j]! * inverse)) & 0xff
  }
  return out
}

function quantizeQ4_0(values: Float32Array): Uint8Array {
  const blocks = values.length / 32
  const out = new Uint8Array(blocks * 18)
  for (let block = 0; block < blocks; block++) {
    const start = block * 32
    let amax = 0
    let max = 0
    for (let j = 0; j < 32; j++) {
      const v = values[start + j]!
      if (amax < Math.abs(v)) {
        amax = Math.abs(v)
        max = v
      }
    }
    const d = Math.fround(max / -8)
    const inverse = d === 0 ? 0 : Math.fround(1 / d)
    const base = block * 18
    writeHalf(out, base, d)
    for (let j = 0; j < 16; j++) {
      // (int8_t)(x + 8.5f) truncates; x + 8.5 is never negative here, so truncation is floor.
      const low = Math.min(15, Math.trunc(Math.fround(Math.fround(values[start + j]! * inverse) + 8.5)))
      const high = Math.min(15, Math.trunc(Math.fround(Math.fround(values[start + 16 + j]! * inverse) + 8.5)))
      out[base + 2 + j] = low | (high << 4)
    }
  }
  return out
}

function quantizeQ4_1(values: Float32Array): Uint8Array {
  const blocks = values.length / 32
  const out = new Uint8Array(blocks * 20)
  for (let block = 0; block < blocks; block++) {
    const start = block * 32
    let min = Number.POSITIVE_INFINITY
    let max = Number.NEGATIVE_INFINITY
    for (let j = 0; j < 32; j++) {
      const v = values[start + j]!
      if (v < min) min = v
      if (v > max) max = v
    }
    const d = Math.fround((max - min) / 15)
    const inverse = d === 0 ? 0 : Math.fround(1 / d)
    const base = block * 20
    writeHalf(out, base, d)
    writeHalf(out, base + 2, min)
    for (let j = 0; j < 16; j++) {
      const low = Math.min(
        15,
        Math.trunc(Math.fround(Math.fround((values[start + j]! - min) * inverse) + 0.5)),
      )
      const high = Math.min(
        15,
        Math.trunc(Math.fround(Math.fround((values[start + 16 + j]! - min) * inverse) + 0.5)),
      )
      out[base + 4 + j] = low | (high << 4)
    }
  }
  return out
}

/** The bytes of `values` (whole rows of whole blocks for the block types) in the ggml type. */
export function encodeGgmlTensor(values: Float32Array, type: GgmlTypeName): Uint8Array {
  switch (type) {
    case 'F32':
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
    case 'F16': {
      const half = toFloat16(values)
      return new Uint8Array(half.buffer, half.byteOffset, half.byteLength)
    }
    case 'Q8_0':
    case 'Q4_0':
    case 'Q4_1': {
      if (values.length % 32 !== 0)
        throw new RangeError(`${type} needs whole blocks of 32 values (got ${values.length}).`)
      return type === 'Q8_0'
        ? quantizeQ8_0(values)
        : type === 'Q4_0'
          ? quantizeQ4_0(values)
          : quantizeQ4_1(values)
    }
  }
}

function readHalf(bytes: Uint8Array, at: number): number {
  const bits = bytes[at]! | (bytes[at + 1]! << 8)
  const sign = bits & 0x8000 ? -1 : 1
  const exponent = (bits >> 10) & 0x1f
  const fraction = bits & 0x3ff
  if (exponent === 0) return sign * fraction * 2 ** -24
  if (exponent === 31) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15)
}

/** What ggml's dequantize_row_* gives back (tests compare it with the float weights). */
export function decodeGgmlTensor(bytes: Uint8Array, type: GgmlTypeName, elements: number): Float32Array {
  const out = new Float32Array(elements)
  switch (type) {
    case 'F32':
      out.set(new Float32Array(bytes.slice(0, elements * 4).buffer))
      return out
    case 'F16':
      for (let i = 0; i < elements; i++) out[i] = readHalf(bytes, i * 2)
      return out
    case 'Q8_0':
      for (let block = 0; block < elements / 32; block++) {
        const d = readHalf(bytes, block * 34)
        for (let j = 0; j < 32; j++) out[block * 32 + j] = ((bytes[block * 34 + 2 + j]! << 24) >> 24) * d
      }
      return out
    case 'Q4_0':
      for (let block = 0; block < elements / 32; block++) {
        const d = readHalf(bytes, block * 18)
        for (let j = 0; j < 16; j++) {
          const byte = bytes[block * 18 + 2 + j]!
          out[block * 32 + j] = ((byte & 15) - 8) * d
          out[block * 32 + 16 + j] = ((byte >> 4) - 8) * d
        }
      }
      return out
    case 'Q4_1':
      for (let block = 0; block < elements / 32; block++) {
        const d = readHalf(bytes, block * 20)
        const m = readHalf(bytes, block * 20 + 2)
        for (let j = 0; j < 16; j++) {
          const byte = bytes[block * 20 + 4 + j]!
          out[block * 32 + j] = (byte & 15) * d + m
          out[block * 32 + 16 + j] = (byte >> 4) * d + m
        }
      }
      return out
  }
}
