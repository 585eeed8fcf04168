// The graph-builder API: declare inputs, initializers and nodes by name; the builder keeps names
// unique and checks that every node input exists, so a typo fails here rather than as an opaque
// ONNX Runtime session error.

import { byteLengthOf, type ElementType, type TensorData } from './tensor.ts'

/** A dimension: a fixed size, or a symbolic name written as `dim_param` (e.g. 'batch_size'). */
export type Dim = number | string

export interface ValueInfo {
  readonly name: string
  readonly type: ElementType
  /** Undefined when the rank is unknown (no shape written). */
  readonly dims: readonly Dim[] | undefined
}

/** Forces an attribute's ONNX type where a JavaScript value is ambiguous (1.0 vs 1). */
export interface TypedAttribute {
  readonly attributeType: 'float' | 'int' | 'floats' | 'ints'
  readonly value: number | readonly number[]
}

export type AttributeValue =
  | number // integer → INT, otherwise FLOAT (use attribute.float(1) for a float that is whole)
  | string
  | readonly string[]
  | readonly number[] // all integers → INTS, otherwise FLOATS
  | TypedAttribute
  | TensorData
  | GraphBuilder

export const attribute = {
  float: (value: number): TypedAttribute => ({ attributeType: 'float', value }),
  int: (value: number): TypedAttribute => ({ attributeType: 'int', value }),
  floats: (value: readonly number[]): TypedAttribute => ({ attributeType: 'floats', value }),
  ints: (value: readonly number[]): TypedAttribute => ({ attributeType: 'ints', value }),
}

export interface NodeSpec {
  readonly opType: string
  readonly domain: string
  readonly name: string
  readonly inputs: readonly string[]
  readonly outputs: readonly string[]
  readonly attributes: Readonly<Record<string, AttributeValue>>
}

export interface Initializer {
  readonly name: string
  readonly tensor: TensorData
}

export interface NodeOptions {
  /** Operator domain: '' (default ONNX domain) or 'com.microsoft', etc. */
  readonly domain?: string
  /** Node name (made unique automatically). */
  readonly name?: string
  /** Output names to use instead of generated ones (for graph outputs such as `logits`). */
  readonly outputs?: readonly string[]
}

export class GraphBuilder {
  readonly name: string
  readonly inputs: ValueInfo[] = []
  readonly outputs: ValueInfo[] = []
  readonly valueInfos: ValueInfo[] = []
  readonly nodes: NodeSpec[] = []
  readonly initializers: Initializer[] = []
  /** Names that already exist in this graph (inputs, initializers, node outputs). */
  readonly #defined = new Set<string>()
  readonly #counters = new Map<string, number>()
  /** Names visible from an enclosing graph (for subgraphs of If / Loop / Scan). */
  readonly #outer: GraphBuilder | undefined

  constructor(name = 'main', outer?: GraphBuilder) {
    this.name = name
    this.#outer = outer
  }

  /** A subgraph (If/Loop/Scan body) that may read this graph's names. */
  subgraph(name: string): GraphBuilder {
    return new GraphBuilder(name, this)
  }

  /** A fresh name starting with `prefix`, unique in this graph. */
  uniqueName(prefix: string): string {
    let n = this.#counters.get(prefix) ?? 0
    let candidate = n === 0 ? prefix : `${prefix}_${n}`
    while (this.has(candidate)) {
      n++
      candidate = `${prefix}_${n}`
    }
    this.#counters.set(prefix, n + 1)
    return candidate
  }

  has(name: string): boolean {
    return this.#defined.has(name) || (this.#outer?.has(name) ?? false)
  }

  #define(name: string): void {
    if (name === '') throw new Error('ONNX graph: an empty name cannot be defined')
    if (this.#defined.has(name)) throw new Error(`ONNX graph "${this.name}": "${name}" is defined twice`)
    this.#defined.add(name)
  }

  /** Declares a graph input; returns its name. */
  input(name: string, type: ElementType, dims: readonly Dim[] | undefined): string {
    this.#define(name)
    this.inputs.push({ name, type, dims })
    return name
  }

  /** Declares a graph output (a name some node produces or an input/initializer). */
  output(name: string, type: ElementType, dims: readonly Dim[] | undefined): string {
    if (!this.#defined.has(name))
      throw new Error(`ONNX graph "${this.name}": output "${name}" is never produced`)
    this.outputs.push({ name, type, dims })
    return name
  }

  /** Records the type/shape of an intermediate value (optional; helps readers and shape inference). */
  valueInfo(name: string, type: ElementType, dims: readonly Dim[] | undefined): void {
    this.valueInfos.push({ name, type, dims })
  }

  /** Adds a constant tensor (weights and small constants); returns its name (made unique). */
  initializer(name: string, value: TensorData): string {
    const unique = this.has(name) ? this.uniqueName(name) : name
    if (!(value.data instanceof Function)) {
      const expected = byteLengthOf(value.type, value.dims)
      if (value.data.byteLength !== expected)
        throw new Error(
          `ONNX graph: initializer "${name}" has ${value.data.byteLength} bytes; ${value.type}[${value.dims.join(',')}] needs ${expected}`,
        )
    }
    this.#define(unique)
    this.initializers.push({ name: unique, tensor: value })
    return unique
  }

  /** Adds a node with one output; returns the output name. */
  node(
    opType: string,
    inputs: readonly string[],
    attributes: Readonly<Record<string, AttributeValue>> = {},
    options: NodeOptions = {},
  ): string {
    return this.nodeOutputs(opType, inputs, 1, attributes, options)[0]!
  }

  /** Adds a node with `outputCount` outputs (or the names in options.outputs); returns them. */
  nodeOutputs(
    opType: string,
    inputs: readonly string[],
    outputCount: number,
    attributes: Readonly<Record<string, AttributeValue>> = {},
    options: NodeOptions = {},
  ): string[] {
    for (const input of inputs)
      if (input !== '' && !this.has(input))
        throw new Error(`ONNX graph "${this.name}": ${opType} reads "${input}", which is not defined yet`)
    const base = options.name ?? opType
    const name = this.uniqueName(`/${base}`)
    const outputs =
      options.outputs ?? Array.from({ length: outputCount }, (_, i) => this.uniqueName(`${name}_output_${i}`))
    for (const output of outputs) this.#define(output)
    this.nodes.push({ opType, domain: options.domain ?? '', name, inputs, outputs, attributes })
    return [...outputs]
  }
}
