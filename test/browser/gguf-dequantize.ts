// The weights llama.cpp computes with when it loads a quantized GGUF, in the builder's layout, so
// the builder's TypeScript reference can run on exactly them (test/browser/gguf-wllama.test.ts).
// Every tensor the file holds in a block type (Q8_0, Q4_0, Q4_1, or F16 where a row is not whole
// blocks) is decoded the way ggml's dequantize_row_* does (decodeGgmlTensor) and put back where
// the exporter took it from. Where that is comes from the file format alone, not from the
// exporter's layout code: two F32 exports of the same model, one with every source array filled
// with its own number and one with every element holding its own index, name for each element of
// each file tensor the source array and element it is. A matrix's export may only move elements
// (row and column orders); that is checked, so a tensor the exporter changed in value (1 + w, -exp)
// cannot be mistaken for one it only moved.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  decodeGgmlTensor,
  GgmlType,
  type GgmlTypeName,
  type GgufHeader,
  type GgufSourceWeights,
  ggmlTensorBytes,
  readGgufHeader,
  writeGguf,
} from '../../builder/gguf/index.ts'

/** A deep copy of `value` with every Float32Array replaced; an array met twice is replaced once, so what was shared stays shared. */
function mapArrays<T>(
  value: T,
  replace: (array: Float32Array) => Float32Array,
  done = new Map<Float32Array, Float32Array>(),
): T {
  if (value instanceof Float32Array) {
    let replaced = done.get(value)
    if (!replaced) {
      replaced = replace(value)
      done.set(value, replaced)
    }
    return replaced as T
  }
  if (value instanceof Map)
    return new Map([...value].map(([key, item]) => [key, mapArrays(item, replace, done)])) as T
  if (Array.isArray(value)) return value.map((item) => mapArrays(item, replace, done)) as T
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, mapArrays(item, replace, done)]),
    ) as T
  return value
}

const typeName = (type: number): GgmlTypeName =>
  (Object.keys(GgmlType) as GgmlTypeName[]).find((name) => GgmlType[name] === type)!

interface GgufFile {
  readonly bytes: Uint8Array
  readonly header: GgufHeader
}

function readGguf(path: string): GgufFile {
  const bytes = new Uint8Array(readFileSync(path))
  return { bytes, header: readGgufHeader(bytes) }
}

/** A tensor's values, decoded from its ggml type. */
function tensorValues(file: GgufFile, name: string): Float32Array {
  const tensor = file.header.tensors.find((t) => t.name === name)
  if (!tensor) throw new Error(`the GGUF file has no tensor ${name}`)
  const type = typeName(tensor.type)
  const elements = tensor.dims.reduce((product, dim) => product * dim, 1)
  const bytes = ggmlTensorBytes({ name, dims: tensor.dims, type })
  return decodeGgmlTensor(file.bytes.subarray(tensor.offset, tensor.offset + bytes), type, elements)
}

/** For each tensor of a GGUF export of `source`: the source array it holds, and which element each of its elements is. */
export interface SourcePositions {
  readonly source: GgufSourceWeights
  readonly tensors: ReadonlyMap<string, { readonly array: Float32Array; readonly where: Float32Array }>
}

/** Finds SourcePositions by two F32 exports of `source` into the folder `scratch` (see the top of the file). */
export async function sourcePositions(source: GgufSourceWeights, scratch: string): Promise<SourcePositions> {
  const arrays: Float32Array[] = []
  const exportF32 = async (weights: GgufSourceWeights, file: string): Promise<GgufFile> => {
    const out = join(scratch, file)
    await writeGguf({ weights, tokenizer: new Map(), dtype: 'f32', outPath: out, overwrite: true })
    return readGguf(out)
  }
  const numbered = await exportF32(
    mapArrays(source, (array) => {
      arrays.push(array)
      return new Float32Array(array.length).fill(arrays.length - 1)
    }),
    'numbered.gguf',
  )
  const indexed = await exportF32(
    mapArrays(source, (array) => {
      if (array.length > 2 ** 24)
        throw new Error(`an array of ${array.length} values: float32 cannot count its indices`)
      return Float32Array.from({ length: array.length }, (_, i) => i)
    }),
    'indexed.gguf',
  )
  const tensors = new Map<string, { array: Float32Array; where: Float32Array }>()
  for (const { name } of numbered.header.tensors) {
    const which = tensorValues(numbered, name)
    const array = arrays[which[0]!]
    // A tensor that is not one source array's elements moved (a norm stored as 1 + w, ssm_a as
    // -exp(A_log)) has no positions: it can only be F32, which needs none.
    if (!array || which.some((value) => value !== which[0])) continue
    const where = tensorValues(indexed, name)
    const seen = new Uint8Array(array.length)
    let moved = where.length === array.length
    for (const index of where) {
      if (!moved) break
      if (!Number.isInteger(index) || index < 0 || index >= array.length || seen[index]) moved = false
      else seen[index] = 1
    }
    if (moved) tensors.set(name, { array, where })
  }
  return { source, tensors }
}

export interface DequantizedWeights {
  readonly weights: GgufSourceWeights
  /** The file's tensors in a block type, each with its type (what was decoded). */
  readonly decoded: ReadonlyMap<string, GgmlTypeName>
}

/**
 * The source with every tensor the GGUF at `path` (written from it by writeGguf) holds in a
 * block type replaced by its decoded values.
 */
export function dequantizedWeights(positions: SourcePositions, path: string): DequantizedWeights {
  const quantized = readGguf(path)
  const replaced = new Map<Float32Array, Float32Array>()
  const decoded = new Map<string, GgmlTypeName>()
  for (const tensor of quantized.header.tensors) {
    const type = typeName(tensor.type)
    if (type === 'F32') continue
    const position = positions.tensors.get(tensor.name)
    if (!position)
      throw new Error(
        `${tensor.name} is ${type}, but the export does not only move one source array's elements into it`,
      )
    const values = tensorValues(quantized, tensor.name)
    const out = new Float32Array(position.array.length)
    position.where.forEach((index, i) => {
      out[index] = values[i]!
    })
    replaced.set(position.array, out)
    decoded.set(tensor.name, type)
  }
  return { weights: mapArrays(positions.source, (array) => replaced.get(array) ?? array), decoded }
}
