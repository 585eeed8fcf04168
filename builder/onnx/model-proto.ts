// Encodes a GraphBuilder as an ONNX ModelProto (field numbers from onnx/onnx.proto). Initializers at
// or above a size threshold go to an external-data file (`.onnx_data`): ORT's wasm heap grows to
// ~1.1× the stored bytes that way, against 2-2.6× with weights inline (docs/builder.md, "External data").

import { type AttributeValue, GraphBuilder, type TypedAttribute, type ValueInfo } from './graph.ts'
import { MessageWriter } from './protobuf.ts'
import { byteLengthOf, onnxDataTypes, type TensorData } from './tensor.ts'

export interface OpsetImports {
  /** Default ONNX domain version (17 or later). */
  readonly ''?: number
  readonly [domain: string]: number | undefined
}

export interface ModelOptions {
  /** Opset per domain; default `{ '': 17, 'com.microsoft': 1 }`. */
  readonly opsets?: OpsetImports
  /** IR version; default 8 for opset 17-18, 9 for 19-20, 10 for 21-22, 11 from 23. */
  readonly irVersion?: number
  readonly producerName?: string
  readonly producerVersion?: string
  readonly docString?: string
  /** Free-form key/value metadata (ModelProto.metadata_props). */
  readonly metadata?: Readonly<Record<string, string>>
  /**
   * Where large initializers go. Omit to keep everything inline (only for small models: protobuf
   * caps a message at 2 GiB).
   */
  readonly externalData?: {
    /** File name relative to the .onnx file, e.g. 'model_q4.onnx_data'. */
    readonly location: string
    /** Initializers with at least this many bytes go external (default 1024). */
    readonly thresholdBytes?: number
    /** Offset alignment inside the data file (default 64). */
    readonly alignment?: number
  }
}

/** One external tensor: where its bytes go in the data file. */
export interface ExternalTensor {
  readonly name: string
  readonly offset: number
  readonly length: number
  readonly tensor: TensorData
}

export interface EncodedModel {
  /** The .onnx file's bytes. */
  readonly model: Uint8Array
  /** Tensors to write into the external-data file, in offset order (empty when all inline). */
  readonly external: readonly ExternalTensor[]
  /** Total size of the external-data file. */
  readonly externalBytes: number
}

export function defaultIrVersion(defaultOpset: number): number {
  if (defaultOpset >= 23) return 11
  if (defaultOpset >= 21) return 10
  if (defaultOpset >= 19) return 9
  return 8
}

function materialize(tensor: TensorData): Uint8Array {
  return tensor.data instanceof Function ? tensor.data() : tensor.data
}

function encodeTensorHeader(name: string, tensor: TensorData): MessageWriter {
  const message = new MessageWriter()
  for (const d of tensor.dims) message.int(1, d)
  message.int(2, onnxDataTypes[tensor.type])
  message.string(8, name)
  return message
}

function encodeTensor(name: string, tensor: TensorData): MessageWriter {
  const message = encodeTensorHeader(name, tensor)
  const data = materialize(tensor)
  const expected = byteLengthOf(tensor.type, tensor.dims)
  if (data.byteLength !== expected)
    throw new Error(`ONNX tensor "${name}": ${data.byteLength} bytes, expected ${expected}`)
  message.bytes(9, data)
  return message
}

function encodeExternalTensor(entry: ExternalTensor, location: string): MessageWriter {
  const message = encodeTensorHeader(entry.name, entry.tensor)
  const pair = (key: string, value: string) => new MessageWriter().string(1, key).string(2, value)
  message.message(13, pair('location', location))
  message.message(13, pair('offset', String(entry.offset)))
  message.message(13, pair('length', String(entry.length)))
  message.int(14, 1) // data_location = EXTERNAL
  return message
}

function encodeValueInfo(info: ValueInfo): MessageWriter {
  const tensorType = new MessageWriter().int(1, onnxDataTypes[info.type])
  if (info.dims !== undefined) {
    const shape = new MessageWriter()
    for (const d of info.dims) {
      const dim = new MessageWriter()
      if (typeof d === 'number') dim.int(1, d)
      else dim.string(2, d)
      shape.message(1, dim)
    }
    tensorType.message(2, shape)
  }
  const type = new MessageWriter().message(1, tensorType)
  return new MessageWriter().string(1, info.name).message(2, type)
}

function isTyped(value: AttributeValue): value is TypedAttribute {
  return typeof value === 'object' && value !== null && 'attributeType' in value
}

function isTensor(value: AttributeValue): value is TensorData {
  return typeof value === 'object' && value !== null && 'dims' in value && 'data' in value
}

function encodeAttribute(name: string, value: AttributeValue): MessageWriter {
  const message = new MessageWriter().string(1, name)
  // AttributeProto.type codes: FLOAT 1, INT 2, STRING 3, TENSOR 4, GRAPH 5, FLOATS 6, INTS 7, STRINGS 8.
  if (typeof value === 'number') {
    if (Number.isInteger(value)) message.int(3, value).int(20, 2)
    else message.float(2, value).int(20, 1)
  } else if (typeof value === 'string') message.string(4, value).int(20, 3)
  else if (value instanceof GraphBuilder) message.message(6, encodeGraph(value, undefined)).int(20, 5)
  else if (isTyped(value)) {
    const v = value.value
    if (value.attributeType === 'float') message.float(2, v as number).int(20, 1)
    else if (value.attributeType === 'int') message.int(3, v as number).int(20, 2)
    else if (value.attributeType === 'floats') {
      for (const x of v as readonly number[]) message.float(7, x)
      message.int(20, 6)
    } else {
      for (const x of v as readonly number[]) message.int(8, x)
      message.int(20, 7)
    }
  } else if (isTensor(value)) message.message(5, encodeTensor('', value)).int(20, 4)
  else if (Array.isArray(value)) {
    if (value.every((x) => typeof x === 'string')) {
      for (const x of value as readonly string[]) message.string(9, x)
      message.int(20, 8)
    } else if ((value as readonly number[]).every((x) => Number.isInteger(x))) {
      for (const x of value as readonly number[]) message.int(8, x)
      message.int(20, 7)
    } else {
      for (const x of value as readonly number[]) message.float(7, x)
      message.int(20, 6)
    }
  } else throw new Error(`ONNX attribute "${name}": unsupported value`)
  return message
}

interface ExternalPlan {
  readonly location: string
  readonly byName: Map<string, ExternalTensor>
}

function encodeGraph(graph: GraphBuilder, plan: ExternalPlan | undefined): MessageWriter {
  const message = new MessageWriter()
  for (const node of graph.nodes) {
    const n = new MessageWriter()
    for (const input of node.inputs) n.string(1, input)
    for (const output of node.outputs) n.string(2, output)
    n.string(3, node.name)
    n.string(4, node.opType)
    for (const [key, value] of Object.entries(node.attributes)) n.message(5, encodeAttribute(key, value))
    if (node.domain !== '') n.string(7, node.domain)
    message.message(1, n)
  }
  message.string(2, graph.name)
  for (const init of graph.initializers) {
    const external = plan?.byName.get(init.name)
    message.message(
      5,
      external ? encodeExternalTensor(external, plan!.location) : encodeTensor(init.name, init.tensor),
    )
  }
  for (const input of graph.inputs) message.message(11, encodeValueInfo(input))
  for (const output of graph.outputs) message.message(12, encodeValueInfo(output))
  for (const info of graph.valueInfos) message.message(13, encodeValueInfo(info))
  return message
}

/** Encodes the model; weights above the threshold are laid out for the external-data file. */
export function encodeModel(graph: GraphBuilder, options: ModelOptions = {}): EncodedModel {
  const opsets: Record<string, number> = { '': 17, 'com.microsoft': 1 }
  for (const [domain, version] of Object.entries(options.opsets ?? {}))
    if (version !== undefined) opsets[domain] = version
  const defaultOpset = opsets['']!
  if (defaultOpset < 17) throw new Error(`ONNX model: default opset ${defaultOpset} is below 17`)

  const external: ExternalTensor[] = []
  let plan: ExternalPlan | undefined
  let externalBytes = 0
  if (options.externalData) {
    const threshold = options.externalData.thresholdBytes ?? 1024
    const alignment = options.externalData.alignment ?? 64
    const byName = new Map<string, ExternalTensor>()
    for (const init of graph.initializers) {
      const length = byteLengthOf(init.tensor.type, init.tensor.dims)
      if (length < threshold) continue
      const offset = Math.ceil(externalBytes / alignment) * alignment
      const entry = { name: init.name, offset, length, tensor: init.tensor }
      external.push(entry)
      byName.set(init.name, entry)
      externalBytes = offset + length
    }
    plan = { location: options.externalData.location, byName }
  }

  const model = new MessageWriter()
  model.int(1, options.irVersion ?? defaultIrVersion(defaultOpset))
  model.string(2, options.producerName ?? 'ondevice-builder')
  if (options.producerVersion) model.string(3, options.producerVersion)
  if (options.docString) model.string(6, options.docString)
  model.message(7, encodeGraph(graph, plan))
  for (const [domain, version] of Object.entries(opsets)) {
    const opset = new MessageWriter()
    if (domain !== '') opset.string(1, domain)
    opset.int(2, version)
    model.message(8, opset)
  }
  for (const [key, value] of Object.entries(options.metadata ?? {}))
    model.message(14, new MessageWriter().string(1, key).string(2, value))
  return { model: model.finish(), external, externalBytes }
}

/** Reads an external tensor's bytes (materializing lazy data once). */
export function externalTensorBytes(entry: ExternalTensor): Uint8Array {
  const data = materialize(entry.tensor)
  if (data.byteLength !== entry.length)
    throw new Error(`ONNX tensor "${entry.name}": ${data.byteLength} bytes, expected ${entry.length}`)
  return data
}
