// Writes an encoded model to disk: `<name>.onnx` plus, when weights go external, `<name>.onnx_data`
// written tensor by tensor (lazy tensors are materialized one at a time, so a multi-GB model never
// sits in memory as one buffer).

import { closeSync, openSync, writeSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import type { GraphBuilder } from './graph.ts'
import { encodeModel, externalTensorBytes, type ModelOptions } from './model-proto.ts'

export interface WrittenModel {
  readonly modelPath: string
  /** Undefined when every initializer stayed inline. */
  readonly dataPath: string | undefined
  readonly modelBytes: number
  readonly dataBytes: number
}

export interface WriteModelOptions extends Omit<ModelOptions, 'externalData'> {
  /** Keep weights inline instead of `<file>_data` (tiny models only). Default false. */
  readonly inline?: boolean
  /** Initializers at least this large go to the data file (default 1024 bytes). */
  readonly externalThresholdBytes?: number
}

/** Writes `path` (an .onnx file) and its `path + '_data'` external-data file. */
export function writeModelFile(
  graph: GraphBuilder,
  path: string,
  options: WriteModelOptions = {},
): WrittenModel {
  const location = `${basename(path)}_data`
  const encoded = encodeModel(graph, {
    ...options,
    ...(options.inline
      ? {}
      : { externalData: { location, thresholdBytes: options.externalThresholdBytes ?? 1024 } }),
  })
  let dataPath: string | undefined
  if (encoded.external.length > 0) {
    dataPath = join(dirname(path), location)
    const fd = openSync(dataPath, 'w')
    try {
      for (const entry of encoded.external)
        writeSync(fd, externalTensorBytes(entry), 0, entry.length, entry.offset)
    } finally {
      closeSync(fd)
    }
  }
  const fd = openSync(path, 'w')
  try {
    writeSync(fd, encoded.model)
  } finally {
    closeSync(fd)
  }
  return { modelPath: path, dataPath, modelBytes: encoded.model.byteLength, dataBytes: encoded.externalBytes }
}

/** The model and its external data as in-memory buffers (for tests and in-memory sessions). */
export function encodeModelToBuffers(
  graph: GraphBuilder,
  location: string,
  options: Omit<ModelOptions, 'externalData'> = {},
): { model: Uint8Array; externalData: Uint8Array } {
  const encoded = encodeModel(graph, { ...options, externalData: { location } })
  const data = new Uint8Array(encoded.externalBytes)
  for (const entry of encoded.external) data.set(externalTensorBytes(entry), entry.offset)
  return { model: encoded.model, externalData: data }
}
