// The GGUF container (version 3, as llama.cpp's ggml/docs/gguf.md defines it): a header with typed
// key/value metadata and tensor descriptions, then the tensors' bytes, each at an offset that is
// a multiple of the file's alignment (32, the default). Little-endian throughout.
//
// The writer takes the metadata and tensor list up front (their sizes fix every offset) and then
// streams each tensor's bytes, produced one at a time, so a 0.6B model is never held twice in
// memory. The reader parses the header back; tests and `ondevice export` use it to check what was
// written.

/** GGUF metadata value types (gguf_type). */
export const GgufValueType = {
  uint8: 0,
  int8: 1,
  uint16: 2,
  int16: 3,
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  int64: 11,
  float64: 12,
} as const

/** The ggml tensor types this writer produces (ggml_type ids). */
export const GgmlType = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 8 } as const
export type GgmlTypeName = keyof typeof GgmlType

/** Elements per block and bytes per block of each type. */
export const ggmlTypeLayout: Readonly<Record<GgmlTypeName, { blockSize: number; blockBytes: number }>> = {
  F32: { blockSize: 1, blockBytes: 4 },
  F16: { blockSize: 1, blockBytes: 2 },
  // fp16 scale + 16 bytes of nibbles.
  Q4_0: { blockSize: 32, blockBytes: 18 },
  // fp16 scale + fp16 minimum + 16 bytes of nibbles.
  Q4_1: { blockSize: 32, blockBytes: 20 },
  // fp16 scale + 32 int8.
  Q8_0: { blockSize: 32, blockBytes: 34 },
}

export type GgufScalarType = Exclude<keyof typeof GgufValueType, 'array'>

/** One metadata value, typed the way GGUF stores it. */
export type GgufValue =
  | { readonly type: Exclude<GgufScalarType, 'string' | 'bool' | 'uint64' | 'int64'>; readonly value: number }
  | { readonly type: 'uint64' | 'int64'; readonly value: bigint }
  | { readonly type: 'bool'; readonly value: boolean }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'array'; readonly itemType: 'string'; readonly value: readonly string[] }
  | {
      readonly type: 'array'
      readonly itemType: 'int32' | 'uint32' | 'float32'
      readonly value: readonly number[] | Int32Array | Uint32Array | Float32Array
    }

export const gguf = {
  u32: (value: number): GgufValue => ({ type: 'uint32', value }),
  i32: (value: number): GgufValue => ({ type: 'int32', value }),
  f32: (value: number): GgufValue => ({ type: 'float32', value }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  str: (value: string): GgufValue => ({ type: 'string', value }),
  strings: (value: readonly string[]): GgufValue => ({ type: 'array', itemType: 'string', value }),
  i32s: (value: readonly number[] | Int32Array): GgufValue => ({ type: 'array', itemType: 'int32', value }),
  f32s: (value: readonly number[] | Float32Array): GgufValue => ({
    type: 'array',
    itemType: 'float32',
    value,
  }),
}

export interface GgufTensorInfo {
  readonly name: string
  /** ggml order: dims[0] is the fastest-varying axis (a matrix's columns). */
  readonly dims: readonly number[]
  readonly type: GgmlTypeName
}

/** The transformer shape keys every architecture llama.cpp reads has, under `arch`. */
export function attentionShapeMetadata(
  arch: string,
  config: {
    readonly maxPositionEmbeddings: number
    readonly hiddenSize: number
    readonly numHiddenLayers: number
    readonly intermediateSize: number
    readonly numAttentionHeads: number
    readonly numKeyValueHeads: number
    readonly headDim: number
  },
): [string, GgufValue][] {
  return [
    [`${arch}.context_length`, gguf.u32(config.maxPositionEmbeddings)],
    [`${arch}.embedding_length`, gguf.u32(config.hiddenSize)],
    [`${arch}.block_count`, gguf.u32(config.numHiddenLayers)],
    [`${arch}.feed_forward_length`, gguf.u32(config.intermediateSize)],
    [`${arch}.attention.head_count`, gguf.u32(config.numAttentionHeads)],
    [`${arch}.attention.head_count_kv`, gguf.u32(config.numKeyValueHeads)],
    [`${arch}.attention.key_length`, gguf.u32(config.headDim)],
    [`${arch}.attention.value_length`, gguf.u32(config.headDim)],
  ]
}

export const GGUF_MAGIC = 0x46554747 // "GGUF" read as a little-endian uint32
export const GGUF_VERSION = 3
export const GGUF_DEFAULT_ALIGNMENT = 32

/** Bytes of a tensor's data; throws when a quantized tensor's rows are not whole blocks. */
export function ggmlTensorBytes(info: GgufTensorInfo): number {
  const layout = ggmlTypeLayout[info.type]
  const rowLength = info.dims[0] ?? 1
  if (rowLength % layout.blockSize !== 0)
    throw new RangeError(
      `GGUF tensor ${info.name}: ${info.type} needs rows of whole ${layout.blockSize}-element blocks, but a row has ${rowLength}.`,
    )
  const elements = info.dims.reduce((product, dim) => product * dim, 1)
  return (elements / layout.blockSize) * layout.blockBytes
}

const encoder = new TextEncoder()

/** A growable little-endian byte buffer for the header. */
class ByteWriter {
  #buffer = new Uint8Array(1 << 16)
  #view = new DataView(this.#buffer.buffer)
  length = 0

  #reserve(bytes: number): void {
    if (this.length + bytes <= this.#buffer.length) return
    let size = this.#buffer.length * 2
    while (size < this.length + bytes) size *= 2
    const next = new Uint8Array(size)
    next.set(this.#buffer.subarray(0, this.length))
    this.#buffer = next
    this.#view = new DataView(next.buffer)
  }
  u8(value: number): void {
    this.#reserve(1)
    this.#view.setUint8(this.length, value)
    this.length += 1
  }
  u32(value: number): void {
    this.#reserve(4)
    this.#view.setUint32(this.length, value, true)
    this.length += 4
  }
  i32(value: number): void {
    this.#reserve(4)
    this.#view.setInt32(this.length, value, true)
    this.length += 4
  }
  f32(value: number): void {
    this.#reserve(4)
    this.#view.setFloat32(this.length, value, true)
    this.length += 4
  }
  u64(value: number | bigint): void {
    this.#reserve(8)
    this.#view.setBigUint64(this.length, BigInt(value), true)
    this.length += 8
  }
  i64(value: bigint): void {
    this.#reserve(8)
    this.#view.setBigInt64(this.length, value, true)
    this.length += 8
  }
  bytes(value: Uint8Array): void {
    this.#reserve(value.length)
    this.#buffer.set(value, this.length)
    this.length += value.length
  }
  string(value: string): void {
    const bytes = encoder.encode(value)
    this.u64(bytes.length)
    this.bytes(bytes)
  }
  pad(alignment: number): void {
    const padding = (alignment - (this.length % alignment)) % alignment
    this.#reserve(padding)
    this.#buffer.fill(0, this.length, this.length + padding)
    this.length += padding
  }
  result(): Uint8Array {
    return this.#buffer.slice(0, this.length)
  }
}

function writeScalar(out: ByteWriter, type: GgufScalarType, value: number | bigint | boolean | string): void {
  switch (type) {
    case 'uint8':
    case 'int8':
      out.u8((value as number) & 0xff)
      break
    case 'uint16':
    case 'int16':
      out.u8((value as number) & 0xff)
      out.u8(((value as number) >> 8) & 0xff)
      break
    case 'uint32':
      out.u32(value as number)
      break
    case 'int32':
      out.i32(value as number)
      break
    case 'float32':
      out.f32(value as number)
      break
    case 'bool':
      out.u8(value ? 1 : 0)
      break
    case 'string':
      out.string(value as string)
      break
    case 'uint64':
      out.u64(value as bigint)
      break
    case 'int64':
      out.i64(value as bigint)
      break
    case 'float64': {
      const bytes = new Uint8Array(8)
      new DataView(bytes.buffer).setFloat64(0, value as number, true)
      out.bytes(bytes)
      break
    }
  }
}

export interface GgufLayout {
  /** The header: magic, version, counts, metadata, tensor infos, padding to the alignment. */
  readonly header: Uint8Array
  /** Each tensor's offset from the start of the data section, and its byte length. */
  readonly tensors: readonly {
    readonly info: GgufTensorInfo
    readonly offset: number
    readonly bytes: number
  }[]
  /** Bytes of the data section (the last tensor padded to the alignment). */
  readonly dataBytes: number
  readonly alignment: number
}

/**
 * Lays out a GGUF file: encodes the header and fixes each tensor's offset. `general.alignment`
 * in the metadata, when present, sets the alignment.
 */
export function layoutGguf(
  metadata: ReadonlyMap<string, GgufValue>,
  tensors: readonly GgufTensorInfo[],
): GgufLayout {
  const alignmentValue = metadata.get('general.alignment')
  const alignment = alignmentValue?.type === 'uint32' ? alignmentValue.value : GGUF_DEFAULT_ALIGNMENT
  if (!Number.isInteger(alignment) || alignment < 8 || alignment % 8 !== 0)
    throw new RangeError(`general.alignment must be a multiple of 8 (got ${alignment}).`)
  const names = new Set<string>()
  for (const tensor of tensors) {
    if (names.has(tensor.name)) throw new RangeError(`GGUF tensor ${tensor.name} is listed twice.`)
    names.add(tensor.name)
    if (
      tensor.dims.length < 1 ||
      tensor.dims.length > 4 ||
      tensor.dims.some((d) => !Number.isInteger(d) || d < 1)
    )
      throw new RangeError(
        `GGUF tensor ${tensor.name} has dims [${tensor.dims.join(', ')}]; 1 to 4 positive sizes are allowed.`,
      )
  }
  const out = new ByteWriter()
  out.u32(GGUF_MAGIC)
  out.u32(GGUF_VERSION)
  out.u64(tensors.length)
  out.u64(metadata.size)
  for (const [key, entry] of metadata) {
    out.string(key)
    out.u32(GgufValueType[entry.type])
    if (entry.type === 'array') {
      out.u32(GgufValueType[entry.itemType])
      out.u64(entry.value.length)
      for (const item of entry.value) writeScalar(out, entry.itemType, item)
    } else writeScalar(out, entry.type, entry.value)
  }
  let offset = 0
  const placed = tensors.map((info) => {
    const bytes = ggmlTensorBytes(info)
    const entry = { info, offset, bytes }
    offset += bytes
    offset += (alignment - (offset % alignment)) % alignment
    return entry
  })
  for (const { info, offset: tensorOffset } of placed) {
    out.string(info.name)
    out.u32(info.dims.length)
    for (const dim of info.dims) out.u64(dim)
    out.u32(GgmlType[info.type])
    out.u64(tensorOffset)
  }
  out.pad(alignment)
  return { header: out.result(), tensors: placed, dataBytes: offset, alignment }
}

// --- reading back -------------------------------------------------------------------------------

export type GgufReadValue =
  | number
  | bigint
  | boolean
  | string
  | readonly (number | bigint | boolean | string)[]

export interface GgufHeader {
  readonly version: number
  readonly metadata: ReadonlyMap<string, GgufReadValue>
  readonly tensors: readonly {
    readonly name: string
    readonly dims: readonly number[]
    readonly type: number
    /** Absolute offset in the file. */
    readonly offset: number
  }[]
  /** Absolute offset of the data section. */
  readonly dataOffset: number
  readonly alignment: number
}

/** Parses a GGUF header from the file's first bytes (enough of them to hold the whole header). */
export function readGgufHeader(bytes: Uint8Array): GgufHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const decoder = new TextDecoder('utf-8', { fatal: true })
  let at = 0
  /** Moves past `count` bytes and returns where they start. */
  const take = (count: number): number => {
    if (at + count > bytes.length)
      throw new RangeError(`GGUF header truncated at byte ${at} (needs ${count} more of ${bytes.length}).`)
    at += count
    return at - count
  }
  const u32 = () => view.getUint32(take(4), true)
  const u64 = () => Number(view.getBigUint64(take(8), true))
  const string = () => {
    const length = u64()
    const start = take(length)
    return decoder.decode(bytes.subarray(start, start + length))
  }
  const scalar = (type: number): number | bigint | boolean | string => {
    switch (type) {
      case GgufValueType.uint8:
        return view.getUint8(take(1))
      case GgufValueType.int8:
        return view.getInt8(take(1))
      case GgufValueType.uint16:
        return view.getUint16(take(2), true)
      case GgufValueType.int16:
        return view.getInt16(take(2), true)
      case GgufValueType.uint32:
        return u32()
      case GgufValueType.int32:
        return view.getInt32(take(4), true)
      case GgufValueType.float32:
        return view.getFloat32(take(4), true)
      case GgufValueType.bool:
        return view.getUint8(take(1)) !== 0
      case GgufValueType.string:
        return string()
      case GgufValueType.uint64:
        return view.getBigUint64(take(8), true)
      case GgufValueType.int64:
        return view.getBigInt64(take(8), true)
      case GgufValueType.float64:
        return view.getFloat64(take(8), true)
      default:
        throw new RangeError(`GGUF metadata value type ${type} is unknown.`)
    }
  }
  if (u32() !== GGUF_MAGIC) throw new RangeError('Not a GGUF file: the magic bytes are not "GGUF".')
  const version = u32()
  if (version !== 2 && version !== 3)
    throw new RangeError(`GGUF version ${version} is not supported (2 or 3).`)
  const tensorCount = u64()
  const metadataCount = u64()
  const metadata = new Map<string, GgufReadValue>()
  for (let i = 0; i < metadataCount; i++) {
    const key = string()
    const type = u32()
    if (type === GgufValueType.array) {
      const itemType = u32()
      const length = u64()
      const items: (number | bigint | boolean | string)[] = []
      for (let j = 0; j < length; j++) items.push(scalar(itemType))
      metadata.set(key, items)
    } else metadata.set(key, scalar(type))
  }
  const relative: { name: string; dims: number[]; type: number; offset: number }[] = []
  for (let i = 0; i < tensorCount; i++) {
    const name = string()
    const rank = u32()
    const dims: number[] = []
    for (let d = 0; d < rank; d++) dims.push(u64())
    const type = u32()
    relative.push({ name, dims, type, offset: u64() })
  }
  const alignmentValue = metadata.get('general.alignment')
  const alignment = typeof alignmentValue === 'number' ? alignmentValue : GGUF_DEFAULT_ALIGNMENT
  const dataOffset = at + ((alignment - (at % alignment)) % alignment)
  return {
    version,
    metadata,
    tensors: relative.map((tensor) => ({ ...tensor, offset: dataOffset + tensor.offset })),
    dataOffset,
    alignment,
  }
}
