// ONNX tensor element types and the conversions the builder needs (fp16/bf16 by hand, so the
// output is bit-exact on every Node version, with or without a native Float16Array).

/** ONNX TensorProto.DataType codes. */
export const onnxDataTypes = {
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: 7,
  string: 8,
  bool: 9,
  float16: 10,
  float64: 11,
  uint32: 12,
  uint64: 13,
  bfloat16: 16,
  uint4: 21,
  int4: 22,
} as const

export type ElementType = keyof typeof onnxDataTypes

/** Bytes per element (packed 4-bit types report 0.5). */
export const elementBytes: Record<ElementType, number> = {
  float32: 4,
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  int32: 4,
  int64: 8,
  string: 0,
  bool: 1,
  float16: 2,
  float64: 8,
  uint32: 4,
  uint64: 8,
  bfloat16: 2,
  uint4: 0.5,
  int4: 0.5,
}

export function elementTypeFromCode(code: number): ElementType | undefined {
  for (const [name, value] of Object.entries(onnxDataTypes)) if (value === code) return name as ElementType
  return undefined
}

/** Raw little-endian bytes of a typed array, without copying. */
export function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength)
}

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** IEEE binary16 bits of a number, round to nearest even (what numpy's astype(float16) does). */
export function float16Bits(value: number): number {
  f32[0] = value
  const x = u32[0]!
  const sign = (x >>> 16) & 0x8000
  const exponent = (x >>> 23) & 0xff
  let mantissa = x & 0x7fffff
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0)
  const e = exponent - 127 + 15
  if (e >= 0x1f) return sign | 0x7c00
  if (e <= 0) {
    if (e < -10) return sign
    mantissa |= 0x800000
    const shift = 14 - e
    const half = 1 << (shift - 1)
    let result = mantissa >>> shift
    const rest = mantissa & ((1 << shift) - 1)
    if (rest > half || (rest === half && (result & 1) === 1)) result++
    return sign | result
  }
  let result = (e << 10) | (mantissa >>> 13)
  const rest = mantissa & 0x1fff
  if (rest > 0x1000 || (rest === 0x1000 && (result & 1) === 1)) result++
  return sign | result
}

/** The number a binary16 bit pattern stands for. */
export function float16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1
  const exponent = (bits >>> 10) & 0x1f
  const mantissa = bits & 0x3ff
  if (exponent === 0) return sign * mantissa * 2 ** -24
  if (exponent === 0x1f) return mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15)
}

/** Native Float16Array where the runtime has it (Node 24, recent browsers): same rounding, far faster. */
const NativeFloat16Array = (globalThis as { Float16Array?: new (values: Float32Array) => ArrayBufferView })
  .Float16Array

export function toFloat16(values: Float32Array): Uint16Array {
  if (NativeFloat16Array) {
    const native = new NativeFloat16Array(values)
    return new Uint16Array(native.buffer, native.byteOffset, values.length)
  }
  const out = new Uint16Array(values.length)
  for (let i = 0; i < values.length; i++) out[i] = float16Bits(values[i]!)
  return out
}

export function fromFloat16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length)
  for (let i = 0; i < bits.length; i++) out[i] = float16ToNumber(bits[i]!)
  return out
}

export function fromBfloat16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length)
  const view = new Uint32Array(out.buffer)
  for (let i = 0; i < bits.length; i++) view[i] = bits[i]! << 16
  return out
}

/** A tensor value: element type, shape and raw little-endian bytes (lazy for large weights). */
export interface TensorData {
  readonly type: ElementType
  readonly dims: readonly number[]
  /** The bytes, or a function that makes them when the file is written (so huge models stream). */
  readonly data: Uint8Array | (() => Uint8Array)
}

export function elementCount(dims: readonly number[]): number {
  let n = 1
  for (const d of dims) n *= d
  return n
}

export function byteLengthOf(type: ElementType, dims: readonly number[]): number {
  return Math.ceil(elementCount(dims) * elementBytes[type])
}

export const tensor = {
  float32: (values: Float32Array | readonly number[], dims: readonly number[]): TensorData => ({
    type: 'float32',
    dims,
    data: bytesOf(values instanceof Float32Array ? values : Float32Array.from(values)),
  }),
  float16: (values: Float32Array, dims: readonly number[]): TensorData => ({
    type: 'float16',
    dims,
    data: bytesOf(toFloat16(values)),
  }),
  int64: (values: readonly (number | bigint)[], dims: readonly number[] = [values.length]): TensorData => ({
    type: 'int64',
    dims,
    data: bytesOf(BigInt64Array.from(values, (v) => BigInt(v))),
  }),
  int32: (values: readonly number[], dims: readonly number[] = [values.length]): TensorData => ({
    type: 'int32',
    dims,
    data: bytesOf(Int32Array.from(values)),
  }),
  bool: (values: readonly boolean[], dims: readonly number[] = [values.length]): TensorData => ({
    type: 'bool',
    dims,
    data: Uint8Array.from(values, (v) => (v ? 1 : 0)),
  }),
}
