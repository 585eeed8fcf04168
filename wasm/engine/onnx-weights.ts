// Reads a package's ONNX file the way the engine needs it: the graph's nodes (op type, inputs,
// outputs, attributes) and its initializers' headers (name, element type, dims, where the bytes
// are), without decoding weights into JS. Weight bytes are then copied straight from the file (or
// its external `.onnx_data`) into the engine's linear memory by the caller, through a
// WeightFileReader, so a model never sits in JS memory as a second full copy.
//
// A small protobuf walker of our own (ModelProto → GraphProto → NodeProto / TensorProto); wasm/
// must not depend on builder/. Every initializer is checked before any weight is read: its byte
// length must match its type and dims, and external ranges must lie inside their file.
import { ModelError } from '../../core/errors.ts'

/** Where the engine reads package files from. */
export interface WeightFileReader {
  /** The whole file (used for the .onnx graph itself, which is small when weights are external). */
  readAll(path: string): Promise<Uint8Array>
  /** Size in bytes, or undefined when the file does not exist. */
  size(path: string): Promise<number | undefined>
  /** Fills `target` with the file's bytes from `offset` on (throws when the file is shorter). */
  readInto(path: string, offset: number, target: Uint8Array): Promise<void>
  /** Releases open files once the model is loaded (optional). */
  close?(): Promise<void>
}

export type ElementType = 'float32' | 'uint8' | 'int8' | 'int32' | 'int64' | 'float16' | 'bool' | 'float64'

const elementTypes: Record<number, { type: ElementType; bytes: number }> = {
  1: { type: 'float32', bytes: 4 },
  2: { type: 'uint8', bytes: 1 },
  3: { type: 'int8', bytes: 1 },
  6: { type: 'int32', bytes: 4 },
  7: { type: 'int64', bytes: 8 },
  9: { type: 'bool', bytes: 1 },
  10: { type: 'float16', bytes: 2 },
  11: { type: 'float64', bytes: 8 },
}

export interface Initializer {
  readonly name: string
  readonly type: ElementType
  readonly dims: readonly number[]
  readonly elements: number
  readonly byteLength: number
  /** Inline bytes (a view into the .onnx file's buffer), or a range of an external data file. */
  readonly data:
    | { readonly kind: 'inline'; readonly bytes: Uint8Array }
    | { readonly kind: 'external'; readonly path: string; readonly offset: number }
}

export type AttributeValue = number | string | readonly number[]

export interface GraphNode {
  readonly opType: string
  readonly domain: string
  readonly name: string
  readonly inputs: readonly string[]
  readonly outputs: readonly string[]
  readonly attributes: Readonly<Record<string, AttributeValue>>
}

// --- protobuf wire format -------------------------------------------------------------------

interface Field {
  readonly field: number
  readonly wire: number
  /** Varint / fixed value (wire 0, 1, 5). */
  readonly value: number
  /** Start and end of a length-delimited payload (wire 2) in the buffer. */
  readonly start: number
  readonly end: number
}

function* fields(buffer: Uint8Array, start: number, end: number, what: string): Generator<Field> {
  let offset = start
  const varint = (): number => {
    let result = 0
    let scale = 1
    for (let i = 0; i < 10; i++) {
      if (offset >= end) throw truncated(what)
      const byte = buffer[offset++]!
      result += (byte & 0x7f) * scale
      if ((byte & 0x80) === 0) return result
      scale *= 128
    }
    throw truncated(what)
  }
  while (offset < end) {
    const key = varint()
    const field = Math.floor(key / 8)
    const wire = key % 8
    if (wire === 0) yield { field, wire, value: varint(), start: 0, end: 0 }
    else if (wire === 2) {
      const length = varint()
      if (offset + length > end) throw truncated(what)
      yield { field, wire, value: length, start: offset, end: offset + length }
      offset += length
    } else if (wire === 5) {
      if (offset + 4 > end) throw truncated(what)
      const view = new DataView(buffer.buffer, buffer.byteOffset + offset, 4)
      yield { field, wire, value: view.getUint32(0, true), start: offset, end: offset + 4 }
      offset += 4
    } else if (wire === 1) {
      if (offset + 8 > end) throw truncated(what)
      yield { field, wire, value: 0, start: offset, end: offset + 8 }
      offset += 8
    } else
      throw new ModelError('model_invalid', `${what} is not a valid ONNX file (protobuf wire type ${wire}).`)
  }
}

function truncated(what: string): ModelError {
  return new ModelError('model_invalid', `${what} is cut short or corrupt (protobuf field past the end).`)
}

const decoder = new TextDecoder()
const text = (buffer: Uint8Array, f: Field) => decoder.decode(buffer.subarray(f.start, f.end))

/** Varint-encoded int64 as a signed number (two's complement for negatives). */
function signed(value: number): number {
  return value >= 2 ** 63 ? value - 2 ** 64 : value
}

function packedVarints(buffer: Uint8Array, f: Field, what: string): number[] {
  const out: number[] = []
  let offset = f.start
  while (offset < f.end) {
    let result = 0
    let scale = 1
    for (;;) {
      if (offset >= f.end) throw truncated(what)
      const byte = buffer[offset++]!
      result += (byte & 0x7f) * scale
      if ((byte & 0x80) === 0) break
      scale *= 128
    }
    out.push(signed(result))
  }
  return out
}

// --- the model -------------------------------------------------------------------------------

export class OnnxWeights {
  /** The .onnx path inside the package (external data paths are relative to its folder). */
  readonly path: string
  readonly nodes: readonly GraphNode[]
  readonly metadata: Readonly<Record<string, string>>
  readonly #initializers: Map<string, Initializer>
  readonly #reader: WeightFileReader
  readonly #producers = new Map<string, GraphNode>()
  readonly #consumers = new Map<string, GraphNode[]>()

  private constructor(
    path: string,
    reader: WeightFileReader,
    nodes: GraphNode[],
    initializers: Map<string, Initializer>,
    metadata: Record<string, string>,
  ) {
    this.path = path
    this.#reader = reader
    this.nodes = nodes
    this.#initializers = initializers
    this.metadata = metadata
    for (const node of nodes) {
      for (const output of node.outputs) this.#producers.set(output, node)
      for (const input of node.inputs) {
        const list = this.#consumers.get(input) ?? []
        list.push(node)
        this.#consumers.set(input, list)
      }
    }
  }

  /** Reads and checks `path` (an .onnx file) and the sizes of its external data files. */
  static async open(reader: WeightFileReader, path: string): Promise<OnnxWeights> {
    const bytes = await reader.readAll(path)
    const folder = path.includes('/') ? path.slice(0, path.lastIndexOf('/') + 1) : ''
    const nodes: GraphNode[] = []
    const initializers = new Map<string, Initializer>()
    const metadata: Record<string, string> = {}
    let sawGraph = false
    for (const f of fields(bytes, 0, bytes.length, path)) {
      if (f.field === 14 && f.wire === 2) {
        let key = ''
        let value = ''
        for (const e of fields(bytes, f.start, f.end, path)) {
          if (e.field === 1) key = text(bytes, e)
          else if (e.field === 2) value = text(bytes, e)
        }
        metadata[key] = value
      } else if (f.field === 7 && f.wire === 2) {
        sawGraph = true
        for (const g of fields(bytes, f.start, f.end, path)) {
          if (g.wire !== 2) continue
          if (g.field === 1) nodes.push(readNode(bytes, g, path))
          else if (g.field === 5) {
            const initializer = readTensor(bytes, g, path, folder)
            initializers.set(initializer.name, initializer)
          }
        }
      }
    }
    if (!sawGraph) throw new ModelError('model_invalid', `${path} is not an ONNX model: it has no graph.`)
    // Every external range must lie inside its file: a truncated .onnx_data fails here, before any compute.
    const sizes = new Map<string, number | undefined>()
    for (const initializer of initializers.values()) {
      if (initializer.data.kind !== 'external') continue
      const file = initializer.data.path
      if (!sizes.has(file)) sizes.set(file, await reader.size(file))
      const size = sizes.get(file)
      if (size === undefined)
        throw new ModelError(
          'model_invalid',
          `${path} keeps "${initializer.name}" in ${file}, which is missing from the package.`,
        )
      if (initializer.data.offset + initializer.byteLength > size)
        throw new ModelError(
          'model_invalid',
          `${file} is too short: "${initializer.name}" needs bytes ${initializer.data.offset}..${initializer.data.offset + initializer.byteLength} but the file has ${size}. The download is incomplete or the package is broken; fetch it again or rebuild it.`,
        )
    }
    return new OnnxWeights(path, reader, nodes, initializers, metadata)
  }

  has(name: string): boolean {
    return this.#initializers.has(name)
  }

  get(name: string): Initializer {
    const found = this.#initializers.get(name)
    if (!found) throw new ModelError('model_invalid', `${this.path} has no initializer "${name}".`)
    return found
  }

  initializers(): IterableIterator<Initializer> {
    return this.#initializers.values()
  }

  /** Total bytes of all initializers (what loading every weight would take). */
  get totalBytes(): number {
    let total = 0
    for (const initializer of this.#initializers.values()) total += initializer.byteLength
    return total
  }

  /** The node that outputs `value`, if any. */
  producer(value: string): GraphNode | undefined {
    return this.#producers.get(value)
  }

  /** The nodes that read `value`. */
  consumers(value: string): readonly GraphNode[] {
    return this.#consumers.get(value) ?? []
  }

  /**
   * Checks that `name` has this type and these dims (undefined matches any size on that axis),
   * with a message that names the tensor and what was expected.
   */
  expect(name: string, type: ElementType, dims: readonly (number | undefined)[]): Initializer {
    const found = this.get(name)
    const ok =
      found.type === type &&
      found.dims.length === dims.length &&
      dims.every((d, i) => d === undefined || d === found.dims[i])
    if (!ok)
      throw new ModelError(
        'model_invalid',
        `${this.path}: "${name}" is ${found.type}[${found.dims.join(', ')}], expected ${type}[${dims.map((d) => d ?? '?').join(', ')}]. The ONNX file does not match its config.json.`,
      )
    return found
  }

  /** Copies bytes [offset, offset + target.length) of the initializer into `target`. */
  async readInto(initializer: Initializer, target: Uint8Array, offset = 0): Promise<void> {
    if (offset + target.length > initializer.byteLength)
      throw new RangeError(`read past the end of "${initializer.name}"`)
    if (initializer.data.kind === 'inline')
      target.set(initializer.data.bytes.subarray(offset, offset + target.length))
    else await this.#reader.readInto(initializer.data.path, initializer.data.offset + offset, target)
  }
}

function readNode(bytes: Uint8Array, f: Field, path: string): GraphNode {
  const inputs: string[] = []
  const outputs: string[] = []
  const attributes: Record<string, AttributeValue> = {}
  let opType = ''
  let domain = ''
  let name = ''
  for (const n of fields(bytes, f.start, f.end, path)) {
    if (n.field === 1) inputs.push(text(bytes, n))
    else if (n.field === 2) outputs.push(text(bytes, n))
    else if (n.field === 3) name = text(bytes, n)
    else if (n.field === 4) opType = text(bytes, n)
    else if (n.field === 7) domain = text(bytes, n)
    else if (n.field === 5 && n.wire === 2) {
      let attributeName = ''
      let value: AttributeValue | undefined
      const ints: number[] = []
      for (const a of fields(bytes, n.start, n.end, path)) {
        if (a.field === 1) attributeName = text(bytes, a)
        else if (a.field === 2 && a.wire === 5)
          value = new DataView(bytes.buffer, bytes.byteOffset + a.start, 4).getFloat32(0, true)
        else if (a.field === 3 && a.wire === 0) value = signed(a.value)
        else if (a.field === 4 && a.wire === 2) value = text(bytes, a)
        else if (a.field === 8 && a.wire === 0) ints.push(signed(a.value))
        else if (a.field === 8 && a.wire === 2) ints.push(...packedVarints(bytes, a, path))
      }
      attributes[attributeName] = value ?? ints
    }
  }
  return { opType, domain, name, inputs, outputs, attributes }
}

function readTensor(bytes: Uint8Array, f: Field, path: string, folder: string): Initializer {
  const dims: number[] = []
  let code = 0
  let name = ''
  let raw: Field | undefined
  let floatData: Field | undefined
  const external: Record<string, string> = {}
  let location = 0
  for (const t of fields(bytes, f.start, f.end, path)) {
    if (t.field === 1 && t.wire === 0) dims.push(signed(t.value))
    else if (t.field === 1 && t.wire === 2) dims.push(...packedVarints(bytes, t, path))
    else if (t.field === 2) code = t.value
    else if (t.field === 8) name = text(bytes, t)
    else if (t.field === 9) raw = t
    else if (t.field === 4 && t.wire === 2) floatData = t
    else if (t.field === 14) location = t.value
    else if (t.field === 13 && t.wire === 2) {
      let key = ''
      let value = ''
      for (const e of fields(bytes, t.start, t.end, path)) {
        if (e.field === 1) key = text(bytes, e)
        else if (e.field === 2) value = text(bytes, e)
      }
      external[key] = value
    }
  }
  const element = elementTypes[code]
  if (!element)
    throw new ModelError(
      'model_invalid',
      `${path}: initializer "${name}" has an unsupported element type (${code}).`,
    )
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0))
    throw new ModelError(
      'model_invalid',
      `${path}: initializer "${name}" has invalid dims [${dims.join(', ')}].`,
    )
  const elements = dims.reduce((a, b) => a * b, 1)
  const byteLength = elements * element.bytes
  const base = { name, type: element.type, dims, elements, byteLength }
  if (location === 1 || external.location !== undefined) {
    const offset = Number(external.offset ?? 0)
    const length = external.length === undefined ? byteLength : Number(external.length)
    const file = external.location ?? ''
    if (
      file === '' ||
      file.includes('..') ||
      file.startsWith('/') ||
      !Number.isSafeInteger(offset) ||
      offset < 0
    )
      throw new ModelError(
        'model_invalid',
        `${path}: initializer "${name}" has an invalid external data location.`,
      )
    if (length !== byteLength)
      throw new ModelError(
        'model_invalid',
        `${path}: initializer "${name}" is ${element.type}[${dims.join(', ')}] (${byteLength} bytes) but its external data holds ${length} bytes.`,
      )
    return { ...base, data: { kind: 'external', path: `${folder}${file}`, offset } }
  }
  const source = raw ?? floatData
  const inline = source ? bytes.subarray(source.start, source.end) : new Uint8Array(0)
  if (inline.length !== byteLength)
    throw new ModelError(
      'model_invalid',
      `${path}: initializer "${name}" is ${element.type}[${dims.join(', ')}] (${byteLength} bytes) but holds ${inline.length} bytes inline.`,
    )
  if (!raw && floatData && element.type !== 'float32')
    throw new ModelError(
      'model_invalid',
      `${path}: initializer "${name}" stores float_data for a ${element.type}.`,
    )
  return { ...base, data: { kind: 'inline', bytes: inline } }
}
