// The structured-output part of `npm run bench:core`: the per-step mask on a 248,320-token
// vocabulary (Qwen3.5's size), ondevice's grammar engine next to @mlc-ai/web-xgrammar (XGrammar
// compiled to WebAssembly) on the same vocabulary, schema and token sequence, and next to the
// unconstrained sampler's step. A script that prints figures, not a test.
//
// The vocabulary: Qwen3's 151,669 real tokens, then 96,651 made-up ones (pairs of real tokens
// glued together) up to 248,320, since Qwen3.5's tokenizer files are not in this repository.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { Sampler } from '../../core/sampling/index.ts'
import {
  applyMask,
  cachedScanBytes,
  compileJsonSchema,
  Grammar,
  GrammarMatcher,
  prepareStrings,
  TokenVocabulary,
} from '../../core/structured/index.ts'
import { qwen3Tokenizer } from '../support/qwen3-tokenizer.ts'

const targetSize = 248_320

function percentile(values: readonly number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!
}

export const schema = {
  type: 'object',
  properties: {
    id: { type: 'string', format: 'uuid' },
    name: { type: 'string', maxLength: 80 },
    email: { type: 'string', format: 'email' },
    age: { type: 'integer', minimum: 0, maximum: 150 },
    score: { type: 'number', minimum: 0, maximum: 1 },
    active: { type: 'boolean' },
    role: { enum: ['admin', 'editor', 'viewer'] },
    address: {
      type: 'object',
      properties: {
        street: { type: 'string' },
        city: { type: 'string' },
        zip: { type: 'string', pattern: '^[0-9]{5}$' },
      },
      required: ['street', 'city'],
      additionalProperties: false,
    },
    tags: { type: 'array', items: { type: 'string' }, maxItems: 8 },
    notes: { type: 'string' },
  },
  required: ['id', 'name', 'email', 'age', 'active', 'role', 'address', 'tags', 'notes'],
  additionalProperties: false,
}

export const documents = [
  {
    id: '3f2b8c1e-9a4d-4e6f-8b1a-2c3d4e5f6a7b',
    name: 'Ada Lovelace',
    email: 'ada.lovelace@example.org',
    age: 36,
    score: 0.875,
    active: true,
    role: 'admin',
    address: { street: "12 St James's Square", city: 'London', zip: '10001' },
    tags: ['mathematics', 'analytical engine', 'poetry'],
    notes:
      "Wrote the first published algorithm intended for a machine; translated Menabrea's article and added notes longer than the article itself. 她的笔记比原文更长。",
  },
  {
    id: '00000000-1111-4222-8333-444455556666',
    name: 'Grace Hopper',
    email: 'grace@navy.example.com',
    age: 85,
    active: false,
    role: 'editor',
    address: { street: '1 Navy Yard', city: 'Arlington' },
    tags: ['compilers', 'COBOL', '"bugs"'],
    notes:
      'Popularised the term "debugging" after a moth was found in a relay; led the team behind the first compiler, A-0.\nLater: COBOL.',
  },
]

export async function structuredOutputBench(): Promise<void> {
  const tokenizer = qwen3Tokenizer()
  let started = performance.now()
  const realBytes = tokenizer.tokenBytes()
  const tokenBytesMs = performance.now() - started
  const bytes: (Uint8Array | undefined)[] = [...realBytes]
  // Made-up tokens: two real text tokens glued, deterministic and unique.
  const seen = new Set<string>()
  for (const piece of realBytes) if (piece !== undefined) seen.add(Buffer.from(piece).toString('latin1'))
  const textIds = realBytes.flatMap((piece, id) => (piece !== undefined && piece.length > 0 ? [id] : []))
  for (let k = 1; bytes.length < targetSize; k++) {
    const a = realBytes[textIds[(k * 7919) % textIds.length]!]!
    const b = realBytes[textIds[(k * 104729 + 13) % textIds.length]!]!
    const glued = new Uint8Array(a.length + b.length)
    glued.set(a)
    glued.set(b, a.length)
    const key = Buffer.from(glued).toString('latin1')
    if (seen.has(key)) continue
    seen.add(key)
    bytes.push(glued)
  }
  const source = { tokenBytes: () => bytes, eosTokenIds: tokenizer.eosTokenIds }
  started = performance.now()
  const vocabulary = new TokenVocabulary(source)
  const trieMs = performance.now() - started
  started = performance.now()
  prepareStrings(vocabulary)
  const stringsMs = performance.now() - started
  const preparedBytes = cachedScanBytes(vocabulary)

  const sequences = documents.map((document) =>
    tokenizer.encode(JSON.stringify(document), { addSpecialTokens: false }),
  )
  // CPU time per step (process.cpuUsage, microseconds): on a shared machine the wall time also
  // counts the waits for a core; both are printed.
  const runOurs = (): { times: number[]; cpu: number[] } => {
    const times: number[] = []
    const cpu: number[] = []
    // One grammar per run, like one request (the compiled-constraint cache is not used here).
    const grammar = new Grammar(compileJsonSchema(schema).root)
    for (const sequence of sequences) {
      const matcher = new GrammarMatcher(grammar, vocabulary)
      const bits = new Uint32Array(matcher.words)
      for (const id of [...sequence, tokenizer.eosTokenIds[0]!]) {
        const cpuStart = process.cpuUsage()
        const start = performance.now()
        matcher.fillMask(bits)
        times.push(performance.now() - start)
        const used = process.cpuUsage(cpuStart)
        cpu.push((used.user + used.system) / 1000)
        if ((bits[id >>> 5]! & (1 << (id & 31))) === 0)
          throw new Error(`the mask refuses token ${id} of a valid document`)
        if (!matcher.accept(id)) throw new Error(`token ${id} refused`)
      }
    }
    return { times, cpu }
  }
  const cold = runOurs()
  const cacheBytes = cachedScanBytes(vocabulary) - preparedBytes
  const warmRuns = [runOurs(), runOurs(), runOurs()]
  const warm = warmRuns.flatMap((run) => run.times)
  const warmCpu = warmRuns.flatMap((run) => run.cpu)
  const steps = cold.times.length

  // The unconstrained sampler's step on the same vocabulary, and the same step after the mask.
  const sampler = new Sampler({ temperature: 0.7, topK: 50, topP: 0.9, seed: 5 })
  const logits = new Float32Array(targetSize)
  for (let id = 0; id < targetSize; id++) logits[id] = Math.sin(id * 12.9898) * 3
  const sampleTimes: number[] = []
  const maskedTimes: number[] = []
  const maskMatcher = new GrammarMatcher(new Grammar(compileJsonSchema(schema).root), vocabulary)
  const bits = new Uint32Array(maskMatcher.words)
  for (const id of sequences[0]!.slice(0, 12)) maskMatcher.accept(id) // inside "name"
  maskMatcher.fillMask(bits)
  for (let step = 0; step < 40; step++) {
    const copy = logits.slice()
    let start = performance.now()
    sampler.sample(copy, [], step)
    sampleTimes.push(performance.now() - start)
    const masked = logits.slice()
    start = performance.now()
    applyMask(masked, bits)
    sampler.sample(masked, [], step)
    maskedTimes.push(performance.now() - start)
  }

  const row = (label: string, times: readonly number[]): string =>
    `  ${label.padEnd(44)} median ${percentile(times, 0.5).toFixed(3)} ms, p99 ${percentile(times, 0.99).toFixed(3)} ms, max ${percentile(times, 1).toFixed(2)} ms`
  console.log(
    `Structured output: token mask per step, ${targetSize.toLocaleString('en-US')}-token vocabulary (Qwen3's 151,669 + made-up pairs), a 10-property schema (uuid, email, pattern, enum, nested object, array), ${documents.length} documents, ${steps} steps`,
  )
  console.log(
    `  one-time preparation per tokenizer: token bytes ${tokenBytesMs.toFixed(0)} ms + byte trie ${trieMs.toFixed(0)} ms (${vocabulary.nodeCount.toLocaleString('en-US')} nodes, ${(vocabulary.memoryBytes / 2 ** 20).toFixed(1)} MiB) + plain-string scans ${stringsMs.toFixed(0)} ms (${(preparedBytes / 2 ** 20).toFixed(1)} MiB); this schema's pattern scans ${(cacheBytes / 2 ** 20).toFixed(1)} MiB (cap 16 MiB)`,
  )
  console.log(row('ondevice, first request of this schema', cold.times))
  console.log(row('  same, CPU time', cold.cpu))
  console.log(row('ondevice, later requests (3 runs)', warm))
  console.log(row('  same, CPU time', warmCpu))
  console.log(row('unconstrained sampling step (top-k 50, top-p 0.9)', sampleTimes))
  console.log(row('masked sampling step (mask applied + sample)', maskedTimes))
  const medianWarm = percentile(warmCpu, 0.5)
  const p99Warm = percentile(warmCpu, 0.99)
  console.log(
    `  targets (median <= 1 ms, p99 <= 3 ms CPU per step, later requests): ${medianWarm <= 1 && p99Warm <= 3 ? 'met' : 'NOT met'}`,
  )

  await xgrammarBench(bytes, sequences, tokenizer.eosTokenIds)
}

/** The same workload through @mlc-ai/web-xgrammar, loaded as CommonJS (its package says ESM but ships UMD). */
async function xgrammarBench(
  bytes: readonly (Uint8Array | undefined)[],
  sequences: readonly number[][],
  eos: readonly number[],
): Promise<void> {
  // biome-ignore lint/suspicious/noExplicitAny: a third-party UMD module without usable types here
  let xgrammar: any
  try {
    // Its package.json says "type": "module" but lib/index.js is UMD, so Node's ESM loader refuses
    // it (ERR_AMBIGUOUS_MODULE_SYNTAX / require is not defined); compiled as CommonJS it works.
    const require = createRequire(import.meta.url)
    const file = require.resolve('@mlc-ai/web-xgrammar')
    const NodeModule = require('node:module') as {
      new (
        id: string,
      ): { _compile(code: string, file: string): void; exports: unknown; filename: string; paths: string[] }
      _nodeModulePaths(dir: string): string[]
    }
    const module = new NodeModule(file)
    module.filename = file
    module.paths = NodeModule._nodeModulePaths(dirname(file))
    module._compile(readFileSync(file, 'utf8'), file)
    xgrammar = module.exports
  } catch (error) {
    console.log(
      `  @mlc-ai/web-xgrammar: could not be loaded (${error instanceof Error ? error.message : String(error)})`,
    )
    return
  }
  const { TokenizerInfo, GrammarCompiler, GrammarMatcher: XMatcher } = xgrammar.default ?? xgrammar
  // Byte-level pieces (GPT-2's byte-to-character table), as XGrammar's BYTE_LEVEL vocabularies are.
  const table: string[] = []
  let extra = 0
  for (let byte = 0; byte < 256; byte++) {
    const printable =
      (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174 && byte <= 255)
    table.push(String.fromCharCode(printable ? byte : 256 + extra++))
  }
  const pieces = bytes.map((piece) =>
    piece === undefined ? '' : Array.from(piece, (byte) => table[byte]).join(''),
  )
  let started = performance.now()
  const info = await TokenizerInfo.createTokenizerInfo(pieces, 'byte_level', false, pieces.length, [...eos])
  const infoMs = performance.now() - started
  started = performance.now()
  const compiler = await GrammarCompiler.createGrammarCompiler(info)
  const compiled = await compiler.compileJSONSchema(JSON.stringify(schema), false, -1, [',', ':'], true)
  const compileMs = performance.now() - started
  const run = async (): Promise<{ times: number[]; cpu: number[] }> => {
    const times: number[] = []
    const cpu: number[] = []
    for (const sequence of sequences) {
      const matcher = await XMatcher.createGrammarMatcher(compiled)
      for (const id of [...sequence, eos[0]!]) {
        const cpuStart = process.cpuUsage()
        const start = performance.now()
        const mask: Int32Array = await matcher.getNextTokenBitmask()
        times.push(performance.now() - start)
        const used = process.cpuUsage(cpuStart)
        cpu.push((used.user + used.system) / 1000)
        if ((mask[id >>> 5]! & (1 << (id & 31))) === 0)
          throw new Error(
            `XGrammar's mask refuses token ${id} (${JSON.stringify(pieces[id])}) at step ${times.length} of a valid document`,
          )
        if (!matcher.acceptToken(id)) throw new Error(`XGrammar refused token ${id}`)
      }
      matcher.dispose?.()
    }
    return { times, cpu }
  }
  const cold = await run()
  const warmRuns = [await run(), await run(), await run()]
  const warm = warmRuns.flatMap((one) => one.times)
  const warmCpu = warmRuns.flatMap((one) => one.cpu)
  const row = (label: string, times: readonly number[]): string =>
    `  ${label.padEnd(44)} median ${percentile(times, 0.5).toFixed(3)} ms, p99 ${percentile(times, 0.99).toFixed(3)} ms, max ${percentile(times, 1).toFixed(2)} ms`
  console.log(
    `  @mlc-ai/web-xgrammar (WebAssembly): TokenizerInfo ${infoMs.toFixed(0)} ms, compile schema ${compileMs.toFixed(0)} ms`,
  )
  console.log(row('XGrammar, first request', cold.times))
  console.log(row('  same, CPU time', cold.cpu))
  console.log(row('XGrammar, later requests (3 runs)', warm))
  console.log(row('  same, CPU time', warmCpu))
  // The package's size as shipped (its glue carries the WebAssembly as base64).
  const require = createRequire(import.meta.url)
  const file = require.resolve('@mlc-ai/web-xgrammar')
  console.log(`  @mlc-ai/web-xgrammar lib/index.js: ${(readFileSync(file).length / 2 ** 20).toFixed(2)} MiB`)
}
