// A minimal protobuf wire-format encoder and decoder: just what ONNX's ModelProto needs. Hand-written
// so the builder has no schema files or code generation, and so large tensors are never copied
// into a growing buffer (messages are lists of chunks, joined once at the end).

export type Chunk = Uint8Array

const textEncoder = new TextEncoder()

/** Accumulates one message as a list of byte chunks. */
export class MessageWriter {
  readonly chunks: Chunk[] = []
  #scratch: number[] = []
  length = 0

  #flushScratch(): void {
    if (this.#scratch.length === 0) return
    const bytes = Uint8Array.from(this.#scratch)
    this.chunks.push(bytes)
    this.length += bytes.length
    this.#scratch = []
  }

  #varint(value: bigint | number): void {
    // int64 fields: negative values are encoded as 10-byte two's complement, as protobuf requires.
    let v = BigInt.asUintN(64, BigInt(value))
    while (v >= 0x80n) {
      this.#scratch.push(Number(v & 0x7fn) | 0x80)
      v >>= 7n
    }
    this.#scratch.push(Number(v))
  }

  #tag(field: number, wireType: number): void {
    this.#varint((field << 3) | wireType)
  }

  int(field: number, value: number | bigint): this {
    this.#tag(field, 0)
    this.#varint(value)
    return this
  }

  float(field: number, value: number): this {
    this.#tag(field, 5)
    const bytes = new Uint8Array(4)
    new DataView(bytes.buffer).setFloat32(0, value, true)
    for (const b of bytes) this.#scratch.push(b)
    return this
  }

  bytes(field: number, value: Uint8Array): this {
    this.#tag(field, 2)
    this.#varint(value.length)
    this.#flushScratch()
    if (value.length > 0) {
      this.chunks.push(value)
      this.length += value.length
    }
    return this
  }

  string(field: number, value: string): this {
    return this.bytes(field, textEncoder.encode(value))
  }

  message(field: number, message: MessageWriter): this {
    message.#flushScratch()
    this.#tag(field, 2)
    this.#varint(message.length)
    this.#flushScratch()
    for (const chunk of message.chunks) this.chunks.push(chunk)
    this.length += message.length
    return this
  }

  /** The finished message as one contiguous buffer. */
  finish(): Uint8Array {
    this.#flushScratch()
    const out = new Uint8Array(this.length)
    let offset = 0
    for (const chunk of this.chunks) {
      out.set(chunk, offset)
      offset += chunk.length
    }
    return out
  }
}

export interface WireField {
  readonly field: number
  readonly wireType: number
  /** Varint value (wire type 0) or the fixed-width bits (1, 5). */
  readonly value?: bigint
  /** Length-delimited payload (wire type 2), a view into the source buffer. */
  readonly bytes?: Uint8Array
}

/** Splits one message into its fields (no schema: the caller interprets them). */
export function readFields(buffer: Uint8Array): WireField[] {
  const fields: WireField[] = []
  let offset = 0
  const readVarint = (): bigint => {
    let result = 0n
    let shift = 0n
    for (;;) {
      if (offset >= buffer.length) throw new RangeError('protobuf: truncated varint')
      const byte = buffer[offset++]!
      result |= BigInt(byte & 0x7f) << shift
      if ((byte & 0x80) === 0) return result
      shift += 7n
      if (shift > 70n) throw new RangeError('protobuf: varint too long')
    }
  }
  while (offset < buffer.length) {
    const key = Number(readVarint())
    const field = key >>> 3
    const wireType = key & 7
    if (wireType === 0) fields.push({ field, wireType, value: readVarint() })
    else if (wireType === 2) {
      const length = Number(readVarint())
      if (offset + length > buffer.length)
        throw new RangeError('protobuf: length-delimited field past the end')
      fields.push({ field, wireType, bytes: buffer.subarray(offset, offset + length) })
      offset += length
    } else if (wireType === 5) {
      const view = new DataView(buffer.buffer, buffer.byteOffset + offset, 4)
      fields.push({ field, wireType, value: BigInt(view.getUint32(0, true)) })
      offset += 4
    } else if (wireType === 1) {
      const view = new DataView(buffer.buffer, buffer.byteOffset + offset, 8)
      fields.push({ field, wireType, value: view.getBigUint64(0, true) })
      offset += 8
    } else throw new RangeError(`protobuf: unsupported wire type ${wireType}`)
  }
  return fields
}

/** A varint field read back as a signed int64 number. */
export function asSignedNumber(value: bigint | undefined): number {
  return Number(BigInt.asIntN(64, value ?? 0n))
}

const textDecoder = new TextDecoder()
export function asString(bytes: Uint8Array | undefined): string {
  return bytes ? textDecoder.decode(bytes) : ''
}
