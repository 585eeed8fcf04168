// Reads back the parts of an ONNX ModelProto that tools need (inspect, tests): opsets, I/O with
// symbolic dims, node op types and initializer headers. Weight bytes are not decoded.

import type { Dim, ValueInfo } from './graph.ts'
import { asSignedNumber, asString, readFields } from './protobuf.ts'
import { type ElementType, elementTypeFromCode } from './tensor.ts'

export interface ModelSummary {
  readonly irVersion: number
  readonly producerName: string
  readonly opsets: Readonly<Record<string, number>>
  readonly inputs: readonly ValueInfo[]
  readonly outputs: readonly ValueInfo[]
  readonly nodes: readonly {
    opType: string
    domain: string
    name: string
    inputs: string[]
    outputs: string[]
  }[]
  readonly initializers: readonly {
    name: string
    type: ElementType | undefined
    dims: number[]
    external: { location: string; offset: number; length: number } | undefined
    inlineBytes: number
    /** The raw_data bytes when the tensor is stored inline (a view into the model's bytes). */
    inlineData?: Uint8Array
  }[]
  readonly metadata: Readonly<Record<string, string>>
}

function decodeValueInfo(bytes: Uint8Array): ValueInfo {
  let name = ''
  let type: ElementType = 'float32'
  let dims: Dim[] | undefined
  for (const f of readFields(bytes)) {
    if (f.field === 1) name = asString(f.bytes)
    if (f.field === 2 && f.bytes)
      for (const t of readFields(f.bytes))
        if (t.field === 1 && t.bytes)
          for (const tt of readFields(t.bytes)) {
            if (tt.field === 1) type = elementTypeFromCode(asSignedNumber(tt.value)) ?? 'float32'
            if (tt.field === 2 && tt.bytes) {
              dims = []
              for (const d of readFields(tt.bytes))
                if (d.field === 1 && d.bytes) {
                  const dimFields = readFields(d.bytes)
                  const param = dimFields.find((x) => x.field === 2)
                  const value = dimFields.find((x) => x.field === 1)
                  dims.push(param ? asString(param.bytes) : value ? asSignedNumber(value.value) : '?')
                }
            }
          }
  }
  return { name, type, dims }
}

export function readModelSummary(bytes: Uint8Array): ModelSummary {
  let irVersion = 0
  let producerName = ''
  const opsets: Record<string, number> = {}
  const metadata: Record<string, string> = {}
  const inputs: ValueInfo[] = []
  const outputs: ValueInfo[] = []
  const nodes: { opType: string; domain: string; name: string; inputs: string[]; outputs: string[] }[] = []
  const initializers: {
    name: string
    type: ElementType | undefined
    dims: number[]
    external: { location: string; offset: number; length: number } | undefined
    inlineBytes: number
    inlineData?: Uint8Array
  }[] = []
  for (const f of readFields(bytes)) {
    if (f.field === 1) irVersion = asSignedNumber(f.value)
    else if (f.field === 2) producerName = asString(f.bytes)
    else if (f.field === 8 && f.bytes) {
      let domain = ''
      let version = 0
      for (const o of readFields(f.bytes)) {
        if (o.field === 1) domain = asString(o.bytes)
        if (o.field === 2) version = asSignedNumber(o.value)
      }
      opsets[domain] = version
    } else if (f.field === 14 && f.bytes) {
      const entry = readFields(f.bytes)
      metadata[asString(entry.find((x) => x.field === 1)?.bytes)] = asString(
        entry.find((x) => x.field === 2)?.bytes,
      )
    } else if (f.field === 7 && f.bytes) {
      for (const g of readFields(f.bytes)) {
        if (g.field === 11 && g.bytes) inputs.push(decodeValueInfo(g.bytes))
        else if (g.field === 12 && g.bytes) outputs.push(decodeValueInfo(g.bytes))
        else if (g.field === 1 && g.bytes) {
          const node = { opType: '', domain: '', name: '', inputs: [] as string[], outputs: [] as string[] }
          for (const n of readFields(g.bytes)) {
            if (n.field === 1) node.inputs.push(asString(n.bytes))
            else if (n.field === 2) node.outputs.push(asString(n.bytes))
            else if (n.field === 3) node.name = asString(n.bytes)
            else if (n.field === 4) node.opType = asString(n.bytes)
            else if (n.field === 7) node.domain = asString(n.bytes)
          }
          nodes.push(node)
        } else if (g.field === 5 && g.bytes) {
          let name = ''
          let type: ElementType | undefined
          const dims: number[] = []
          let inlineBytes = 0
          let inlineData: Uint8Array | undefined
          const externalEntries: Record<string, string> = {}
          for (const t of readFields(g.bytes)) {
            if (t.field === 1) dims.push(asSignedNumber(t.value))
            else if (t.field === 2) type = elementTypeFromCode(asSignedNumber(t.value))
            else if (t.field === 8) name = asString(t.bytes)
            else if (t.field === 9) {
              inlineBytes = t.bytes?.length ?? 0
              inlineData = t.bytes
            } else if (t.field === 13 && t.bytes) {
              const entry = readFields(t.bytes)
              externalEntries[asString(entry.find((x) => x.field === 1)?.bytes)] = asString(
                entry.find((x) => x.field === 2)?.bytes,
              )
            }
          }
          const external =
            externalEntries.location === undefined
              ? undefined
              : {
                  location: externalEntries.location,
                  offset: Number(externalEntries.offset ?? 0),
                  length: Number(externalEntries.length ?? 0),
                }
          initializers.push({
            name,
            type,
            dims,
            external,
            inlineBytes,
            ...(inlineData ? { inlineData } : {}),
          })
        }
      }
    }
  }
  return { irVersion, producerName, opsets, inputs, outputs, nodes, initializers, metadata }
}
