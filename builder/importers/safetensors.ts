// A safetensors reader that reads one tensor at a time from disk (files over 2 GB never sit in
// one buffer) and checks everything the header claims against the file: offsets inside the data,
// byte counts matching dtype × shape, no overlaps. Every error names the file and the tensor.
// Also a small writer, for tests and tools that need a checkpoint.

import { closeSync, fstatSync, openSync, readSync, writeFileSync } from 'node:fs'
import { basename } from 'node:path'
import { ModelError } from '../../core/errors.ts'
import { fromBfloat16, fromFloat16 } from '../onnx/tensor.ts'

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16'
const dtypeBytes: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
}

export interface SafetensorsTensorInfo {
  readonly name: string
  readonly dtype: string
  readonly shape: readonly number[]
  /** Absolute byte offset in the file. */
  readonly offset: number
  readonly length: number
}

function invalid(file: string, message: string): never {
  throw new ModelError('model_invalid', `${basename(file)}: ${message}`)
}

/** An open safetensors file: the validated header, and reads of single tensors. */
export class SafetensorsFile {
  readonly path: string
  readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>
  readonly metadata: Readonly<Record<string, string>>
  readonly #fd: number

  constructor(path: string) {
    this.path = path
    this.#fd = openSync(path, 'r')
    try {
      const size = fstatSync(this.#fd).size
      if (size < 8) invalid(path, `is ${size} bytes, shorter than the 8-byte safetensors header length.`)
      const lengthBytes = Buffer.alloc(8)
      readSync(this.#fd, lengthBytes, 0, 8, 0)
      const headerLength = Number(lengthBytes.readBigUInt64LE(0))
      if (headerLength < 2 || headerLength > 100_000_000 || 8 + headerLength > size)
        invalid(
          path,
          `header length ${headerLength} does not fit the ${size}-byte file: not a safetensors file, or truncated.`,
        )
      const headerBytes = Buffer.alloc(headerLength)
      readSync(this.#fd, headerBytes, 0, headerLength, 8)
      let header: unknown
      try {
        header = JSON.parse(headerBytes.toString('utf8'))
      } catch (error) {
        invalid(path, `header is not valid JSON (${(error as Error).message}).`)
      }
      if (typeof header !== 'object' || header === null || Array.isArray(header))
        invalid(path, 'header is not a JSON object.')
      const dataStart = 8 + headerLength
      const dataLength = size - dataStart
      const tensors = new Map<string, SafetensorsTensorInfo>()
      let metadata: Record<string, string> = {}
      for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
        if (name === '__metadata__') {
          metadata = (value ?? {}) as Record<string, string>
          continue
        }
        const entry = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown }
        if (typeof entry !== 'object' || entry === null)
          invalid(path, `tensor ${name}: header entry is not an object.`)
        const dtype = entry.dtype
        if (typeof dtype !== 'string' || !(dtype in dtypeBytes))
          invalid(path, `tensor ${name}: unknown dtype ${JSON.stringify(dtype)}.`)
        const shape = entry.shape
        if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
          invalid(path, `tensor ${name}: shape ${JSON.stringify(shape)} is not a list of sizes.`)
        const offsets = entry.data_offsets
        if (
          !Array.isArray(offsets) ||
          offsets.length !== 2 ||
          !offsets.every((o) => Number.isInteger(o) && o >= 0)
        )
          invalid(path, `tensor ${name}: data_offsets ${JSON.stringify(offsets)} are not two byte offsets.`)
        const [begin, end] = offsets as [number, number]
        const expected = (shape as number[]).reduce((a, b) => a * b, 1) * dtypeBytes[dtype]!
        if (end < begin || end > dataLength)
          invalid(
            path,
            `tensor ${name}: data_offsets [${begin}, ${end}] lie outside the ${dataLength} data bytes (truncated file or a header that lies).`,
          )
        if (end - begin !== expected)
          invalid(
            path,
            `tensor ${name}: ${end - begin} bytes for ${dtype}[${(shape as number[]).join(', ')}], which needs ${expected}.`,
          )
        tensors.set(name, {
          name,
          dtype,
          shape: shape as number[],
          offset: dataStart + begin,
          length: expected,
        })
      }
      const sorted = [...tensors.values()].sort((a, b) => a.offset - b.offset)
      for (let i = 1; i < sorted.length; i++)
        if (sorted[i]!.offset < sorted[i - 1]!.offset + sorted[i - 1]!.length)
          invalid(
            path,
            `tensors ${sorted[i - 1]!.name} and ${sorted[i]!.name} overlap: the header lies about offsets.`,
          )
      this.tensors = tensors
      this.metadata = metadata
    } catch (error) {
      closeSync(this.#fd)
      throw error
    }
  }

  /** Reads a floating-point tensor as float32 (F32, F16 and BF16 are widened). */
  readFloat32(name: string): Float32Array {
    const info = this.tensors.get(name)
    if (!info) invalid(this.path, `has no tensor ${name}.`)
    const bytes = Buffer.alloc(info.length)
    const read = readSync(this.#fd, bytes, 0, info.length, info.offset)
    if (read !== info.length)
      invalid(this.path, `tensor ${name}: read ${read} of ${info.length} bytes (file truncated).`)
    const aligned = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength).slice()
    switch (info.dtype) {
      case 'F32':
        return new Float32Array(aligned.buffer)
      case 'F16':
        return fromFloat16(new Uint16Array(aligned.buffer))
      case 'BF16':
        return fromBfloat16(new Uint16Array(aligned.buffer))
      default:
        return invalid(
          this.path,
          `tensor ${name}: dtype ${info.dtype} is not a float type (F32, F16 or BF16 expected).`,
        )
    }
  }

  close(): void {
    closeSync(this.#fd)
  }
}

export interface SafetensorsWriteEntry {
  readonly name: string
  readonly dtype: SafetensorsDtype
  readonly shape: readonly number[]
  /** Raw little-endian bytes in that dtype. */
  readonly data: Uint8Array
}

/** Writes a .safetensors file (header padded to 8 bytes, as the reference implementation does). */
export function writeSafetensors(
  path: string,
  entries: readonly SafetensorsWriteEntry[],
  metadata?: Record<string, string>,
): void {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {}
  let offset = 0
  for (const entry of entries) {
    header[entry.name] = {
      dtype: entry.dtype,
      shape: entry.shape,
      data_offsets: [offset, offset + entry.data.byteLength],
    }
    offset += entry.data.byteLength
  }
  const json = new TextEncoder().encode(JSON.stringify(header))
  const headerBytes = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20)
  headerBytes.set(json)
  const out = new Uint8Array(8 + headerBytes.length + offset)
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true)
  out.set(headerBytes, 8)
  let position = 8 + headerBytes.length
  for (const entry of entries) {
    out.set(entry.data, position)
    position += entry.data.byteLength
  }
  writeFileSync(path, out)
}
