// A dependency-free ONNX model writer.
//
//   const g = new GraphBuilder('main')
//   const ids = g.input('input_ids', 'int64', ['batch_size', 'sequence_length'])  // string dims → dim_param
//   const w = g.initializer('embed.weight', tensor.float32(values, [vocab, hidden])) // or { type, dims, data: () => bytes } (lazy)
//   const x = g.node('Gather', [w, ids])                                   // returns the output name
//   const [a, b] = g.nodeOutputs('Split', [x], 2, { axis: -1 })            // several outputs
//   g.node('MatMulNBits', [x, q, scales, zp], { K: 64, N: 64, bits: 4, block_size: 32 }, { domain: 'com.microsoft' })
//   g.node('Softmax', [s], { axis: -1 }, { outputs: ['logits'] })          // fixed output names
//   g.output('logits', 'float32', ['batch_size', 'sequence_length', vocab])
//   writeModelFile(g, 'out/onnx/model.onnx', { opsets: { '': 17, 'com.microsoft': 1 } }) // + model.onnx_data
//   encodeModel(g, options) / encodeModelToBuffers(g, 'model.onnx_data') for in-memory use;
//   readModelSummary(bytes) reads I/O, nodes, initializer headers back.
//
// Attributes: integer numbers → INT, other numbers → FLOAT, number[] → INTS (all integers) or
// FLOATS, string(s) → STRING(S), a TensorData → TENSOR, a GraphBuilder (g.subgraph('body')) →
// GRAPH. Force a type with attribute.float(1) / attribute.ints([...]). Node inputs are checked
// to exist; '' marks an omitted optional input.

export {
  type AttributeValue,
  attribute,
  type Dim,
  GraphBuilder,
  type NodeOptions,
  type ValueInfo,
} from './graph.ts'
export {
  encodeModelToBuffers,
  type WriteModelOptions,
  type WrittenModel,
  writeModelFile,
} from './model-file.ts'
export {
  defaultIrVersion,
  type EncodedModel,
  type ExternalTensor,
  encodeModel,
  type ModelOptions,
} from './model-proto.ts'
export { type ModelSummary, readModelSummary } from './model-reader.ts'
export {
  byteLengthOf,
  bytesOf,
  type ElementType,
  elementBytes,
  float16Bits,
  float16ToNumber,
  fromBfloat16,
  fromFloat16,
  onnxDataTypes,
  type TensorData,
  tensor,
  toFloat16,
} from './tensor.ts'
