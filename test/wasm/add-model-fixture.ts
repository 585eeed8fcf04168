// A hand-encoded one-node ONNX model (y = x + x, float32 [n]) for testing that ORT loads and runs
// in a host, with no dependency on the builder. Protobuf field numbers are from onnx.proto.
function varint(value: number): number[] {
  const out: number[] = []
  let rest = value
  do {
    let byte = rest & 0x7f
    rest = Math.floor(rest / 128)
    if (rest > 0) byte |= 0x80
    out.push(byte)
  } while (rest > 0)
  return out
}
const lengthDelimited = (field: number, data: readonly number[]): number[] => [
  ...varint((field << 3) | 2),
  ...varint(data.length),
  ...data,
]
const text = (field: number, value: string): number[] =>
  lengthDelimited(field, [...new TextEncoder().encode(value)])
const integer = (field: number, value: number): number[] => [...varint(field << 3), ...varint(value)]

// ValueInfoProto{name, type: TypeProto{tensor_type: {elem_type: FLOAT, shape: [dim_param 'n']}}}
const floatVector = (name: string): number[] => [
  ...text(1, name),
  ...lengthDelimited(
    2,
    lengthDelimited(1, [...integer(1, 1), ...lengthDelimited(2, lengthDelimited(1, text(2, 'n')))]),
  ),
]

const node = [...text(1, 'x'), ...text(1, 'x'), ...text(2, 'y'), ...text(4, 'Add')]
const graph = [
  ...lengthDelimited(1, node),
  ...text(2, 'add'),
  ...lengthDelimited(11, floatVector('x')),
  ...lengthDelimited(12, floatVector('y')),
]

/** ModelProto{ir_version 8, opset_import [{'' 17}], graph}. */
export const addModelBytes: Uint8Array = new Uint8Array([
  ...integer(1, 8),
  ...lengthDelimited(8, integer(2, 17)),
  ...lengthDelimited(7, graph),
])
