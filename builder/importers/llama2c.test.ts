import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, describe, expect, it } from 'vitest'
import { Tokenizer } from '../../core/tokenizer.ts'
import { architectureFor } from '../architectures/decoder-graph.ts'
import { writeModelFile } from '../onnx/index.ts'
import { ReferenceModel } from '../reference/reference-model.ts'
import { argmax, OrtDecoder } from '../testing/ort-decoder.ts'
import {
  type Llama2cVocabulary,
  readLlama2cCheckpoint,
  readLlama2cHeader,
  readLlama2cTokenizer,
} from './llama2c.ts'
import { convertLlama2cTokenizer } from './llama2c-tokenizer.ts'

const modelFolder = join(import.meta.dirname, '../../../shared/models/stories260K')
const present = existsSync(join(modelFolder, 'stories260K.bin'))
const GOLDEN =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.'

/**
 * llama2.c's encoder (run.c `encode`), written here from the format's rules and kept apart from
 * the converter: a space prefix, code points looked up whole (else their UTF-8 bytes as ids
 * byte+3), then merge the adjacent pair whose concatenation is the best-scoring piece (leftmost
 * on ties) until none is.
 */
function llama2cEncode(vocabulary: Llama2cVocabulary, text: string): number[] {
  const decoder = new TextDecoder()
  const lookup = new Map<string, number>()
  vocabulary.pieces.forEach((bytes, id) => {
    const piece = decoder.decode(bytes)
    if (!lookup.has(piece)) lookup.set(piece, id)
  })
  const ids: number[] = []
  if (text.length > 0) ids.push(lookup.get(' ')!)
  for (const point of text) {
    const id = lookup.get(point)
    if (id !== undefined) ids.push(id)
    else for (const byte of new TextEncoder().encode(point)) ids.push(byte + 3)
  }
  const piece = (id: number) => decoder.decode(vocabulary.pieces[id]!)
  for (;;) {
    let bestScore = -1e10
    let bestId = -1
    let bestIndex = -1
    for (let i = 0; i + 1 < ids.length; i++) {
      const id = lookup.get(piece(ids[i]!) + piece(ids[i + 1]!))
      if (id !== undefined && vocabulary.scores[id]! > bestScore) {
        bestScore = vocabulary.scores[id]!
        bestId = id
        bestIndex = i
      }
    }
    if (bestIndex < 0) return ids
    ids.splice(bestIndex, 2, bestId)
  }
}

const prompts = [
  'Once upon a time',
  'Lily and Tom went to the park.',
  'hello world',
  ' leading space',
  'two  spaces and a trailing one ',
  'The big, red ball!',
  'numbers 12345 and symbols #@&*',
  'Üñíçødé ☃ and 日本語',
  'emoji 🙂 bytes',
  'new\nline\ttab',
  'She said, "Let\'s go!"',
  'a',
  'xyzzy qwerty zxcvbnm',
]

describe.skipIf(!present)('llama2.c importer on stories260K', () => {
  const folder = mkdtempSync(join(tmpdir(), 'ondevice-llama2c-'))
  afterAll(() => rmSync(folder, { recursive: true, force: true }))
  const checkpoint = present
    ? new Uint8Array(readFileSync(join(modelFolder, 'stories260K.bin')))
    : new Uint8Array()
  const tokenizerBytes = present
    ? new Uint8Array(readFileSync(join(modelFolder, 'tok512.bin')))
    : new Uint8Array()

  it('reads the header', () => {
    expect(readLlama2cHeader(checkpoint)).toEqual({
      dim: 64,
      hiddenDim: 172,
      layers: 5,
      heads: 8,
      kvHeads: 4,
      vocabSize: 512,
      tiedClassifier: true,
      seqLen: 512,
    })
  })

  it('converts tok512 to a tokenizer.json that encodes a dozen prompts as llama2.c does', () => {
    const vocabulary = readLlama2cTokenizer(tokenizerBytes, 512)
    const converted = convertLlama2cTokenizer(vocabulary)
    const tokenizer = Tokenizer.fromFiles({
      tokenizerJson: converted.tokenizerJson,
      tokenizerConfigJson: converted.tokenizerConfigJson,
    })
    for (const prompt of prompts) {
      const expected = llama2cEncode(vocabulary, prompt)
      expect(tokenizer.encode(prompt, { addSpecialTokens: false }), prompt).toEqual(expected)
      expect(tokenizer.encode(prompt), prompt).toEqual([1, ...expected])
      expect(tokenizer.decode([1, ...expected], { skipSpecialTokens: true }), prompt).toBe(prompt)
    }
  })

  it('greedy decoding from BOS reproduces the golden text (reference and ONNX fp32)', async () => {
    const weights = readLlama2cCheckpoint(checkpoint)
    const converted = convertLlama2cTokenizer(readLlama2cTokenizer(tokenizerBytes, 512))
    const tokenizer = Tokenizer.fromFiles({
      tokenizerJson: converted.tokenizerJson,
      tokenizerConfigJson: converted.tokenizerConfigJson,
    })
    const path = join(folder, 'model.onnx')
    writeModelFile(architectureFor(weights).buildGraph('fp32'), path)
    const decoder = await OrtDecoder.create(ort, path, { kvHeads: 4, headDim: 8 })
    const reference = new ReferenceModel(weights)
    const onnxTokens: number[] = []
    const referenceTokens: number[] = []
    try {
      let [logits] = await decoder.append([1])
      let [referenceLogits] = reference.forward([1])
      for (let step = 0; step < 80; step++) {
        onnxTokens.push(argmax(logits!))
        referenceTokens.push(argmax(referenceLogits!))
        ;[logits] = await decoder.append([onnxTokens.at(-1)!])
        ;[referenceLogits] = reference.forward([referenceTokens.at(-1)!])
      }
    } finally {
      await decoder.release()
    }
    expect(onnxTokens).toEqual(referenceTokens)
    expect(tokenizer.decode(onnxTokens, { skipSpecialTokens: true }).slice(0, GOLDEN.length)).toBe(GOLDEN)
  })

  it('rejects a wrong header and a truncated file, naming the file and tensor', () => {
    const wrong = checkpoint.slice()
    new DataView(wrong.buffer).setInt32(0, -5, true)
    expect(() => readLlama2cCheckpoint(wrong, 'bad.bin')).toThrow(/bad\.bin: header field dim = -5/)
    expect(() => readLlama2cCheckpoint(checkpoint.slice(0, 200_000), 'short.bin')).toThrow(
      /short\.bin: is truncated: tensor wq needs/,
    )
    expect(() => readLlama2cTokenizer(tokenizerBytes.slice(0, 3000), 512, 'tok.bin')).toThrow(
      /tok\.bin: is truncated at token/,
    )
  })
})

if (!present)
  console.warn(`stories260K tests skipped: ${modelFolder} is absent (only this workplace has ../shared).`)
