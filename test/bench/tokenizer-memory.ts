// `npm run bench:memory:tokenizer`: what building the real Qwen3 tokenizer (tokenizer.json: 11 MB,
// 151,643 pieces + 151,387 merges; every Qwen3 / Qwen3.5 package carries it) costs a JavaScript
// heap, ours (core/tokenizer.ts) against @huggingface/tokenizers' Tokenizer on the parsed JSON (what
// core used before its compact BPE), and how fast each encodes. A Worker isolate has 128 MB for
// all of this plus the model, so these are the figures docs/worker.md's isolate budget uses.
//
// Each memory figure is a fresh Node process (--expose-gc) that reads tokenizer.json's bytes (as a
// Worker holds them after the manifest check) and then builds the tokenizer:
//   retained     heap + external (ArrayBuffers included) after a full GC, less the same before the
//                file was read, with the file's bytes released
//   peak (RSS)   how far the process's peak resident memory (VmHWM, reset before the build) rose
//                above where it stood before: the parse's transient peak as the OS sees it
//   smallest heap  (--heap) the smallest --max-old-space-size (MiB) the build succeeds in, found by
//                bisection: what V8 needed to hold at once
// Encode speed: one process, both tokenizers, the same long mixed-language text, alternating
// rounds; the ids must be equal. Ratios only mean anything within one run (a shared machine).
//   npm run bench:memory:tokenizer
//   npm run bench:memory:tokenizer -- --heap           also bisect the smallest heap (slower)
//   npm run bench:memory:tokenizer -- --rounds 20      encode rounds per side (default 10)
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Tokenizer as HuggingFaceTokenizer } from '@huggingface/tokenizers'
import { Tokenizer } from '../../core/tokenizer.ts'
import { qwen3TokenizerDirectory } from '../support/qwen3-tokenizer.ts'
import { markdownTable } from './support/stats.ts'

type Implementation = 'ours' | 'library'
const implementations: readonly Implementation[] = ['library', 'ours']
const labels: Record<Implementation, string> = {
  library: '@huggingface/tokenizers on JSON.parse (before)',
  ours: 'core Tokenizer, compact BPE (now)',
}

interface ProbeResult {
  readonly retainedBytes: number
  readonly peakRssBytes: number
  readonly buildMs: number
  readonly ok: boolean
}

const samples = [
  'Once upon a time, in a small town by the sea, there lived a girl named Lily who loved to build boats.',
  'function fibonacci(n) {\n\treturn n < 2 ? n : fibonacci(n - 1) + fibonacci(n - 2) // slow\n}',
  '日本語のテキストと한국어 문장, 中文标点：“引号”。你好世界',
  'Emoji 😀 and ZWJ families 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵, café, naïve, Ångström, ﬁ',
  'Arabic مرحبا بالعالم and Hebrew שלום עולם, Thai สวัสดีชาวโลก, Devanagari नमस्ते दुनिया',
  '{"name": "ondevice", "version": "0.1.0", "scores": [1.5, 2.25, 1e-7], "ok": true}',
]

const directory = qwen3TokenizerDirectory()
const tokenizerConfigJson = readFileSync(join(directory, 'tokenizer_config.json'), 'utf8')

function residentPeak(): number {
  const status = readFileSync('/proc/self/status', 'utf8')
  const match = /VmHWM:\s+(\d+) kB/.exec(status)
  return match ? Number(match[1]) * 1024 : Number.NaN
}

function resetResidentPeak(): void {
  // Linux: writing 5 to clear_refs resets VmHWM to the current resident size.
  try {
    writeFileSync('/proc/self/clear_refs', '5')
  } catch {
    // Not Linux or not allowed: the peak then includes the process's start.
  }
}

function build(implementation: Implementation, bytes: Uint8Array): unknown {
  if (implementation === 'ours') return Tokenizer.fromFiles({ tokenizerJson: bytes, tokenizerConfigJson })
  // What core did before: the file as text, JSON.parse, the library's Tokenizer on the objects.
  const text = new TextDecoder().decode(bytes)
  return new HuggingFaceTokenizer(JSON.parse(text), JSON.parse(tokenizerConfigJson))
}

/** The child: build once and print the figures as one JSON line. */
function probe(implementation: Implementation): void {
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) throw new Error('run the probe with --expose-gc')
  gc()
  gc()
  const before = process.memoryUsage()
  let bytes: Uint8Array | undefined = readFileSync(join(directory, 'tokenizer.json'))
  const withBytes = process.memoryUsage()
  resetResidentPeak()
  const started = performance.now()
  const built = build(implementation, bytes)
  const buildMs = performance.now() - started
  const peakRssBytes = residentPeak() - withBytes.rss
  bytes = undefined
  gc()
  gc()
  const after = process.memoryUsage()
  const retainedBytes = after.heapUsed + after.external - (before.heapUsed + before.external)
  // Keeps the tokenizer alive until after the measurement.
  if (built === undefined) throw new Error('nothing built')
  const result: ProbeResult = { retainedBytes, peakRssBytes, buildMs, ok: true }
  console.log(JSON.stringify(result))
}

function runProbe(implementation: Implementation, heapMiB?: number): ProbeResult | undefined {
  const script = fileURLToPath(import.meta.url)
  const child = spawnSync(
    process.execPath,
    [
      '--expose-gc',
      '--conditions=ondevice-source',
      ...(heapMiB === undefined ? [] : [`--max-old-space-size=${heapMiB}`, '--max-semi-space-size=1']),
      script,
      '--probe',
      implementation,
    ],
    { encoding: 'utf8', timeout: 120_000 },
  )
  const line = child.stdout.trim().split('\n').at(-1)
  if (child.status !== 0 || !line?.startsWith('{')) return undefined
  return JSON.parse(line) as ProbeResult
}

/** The smallest old-space size (MiB) the build fits in, by bisection over fresh processes. */
function smallestHeap(implementation: Implementation): number {
  let low = 4
  let high = 512
  if (!runProbe(implementation, high)) return Number.NaN
  while (high - low > 2) {
    const middle = Math.floor((low + high) / 2)
    if (runProbe(implementation, middle)) high = middle
    else low = middle
  }
  return high
}

function encodeSpeed(rounds: number): { rows: string[][]; ratio: number; equal: boolean } {
  const bytes = new Uint8Array(readFileSync(join(directory, 'tokenizer.json')))
  const ours = Tokenizer.fromFiles({ tokenizerJson: bytes, tokenizerConfigJson })
  const library = new HuggingFaceTokenizer(
    JSON.parse(new TextDecoder().decode(bytes)),
    JSON.parse(tokenizerConfigJson),
  )
  // A long mixed text (English, code, CJK, emoji, numbers) with a counter and a rotating word so the
  // word caches do not answer everything.
  const parts: string[] = []
  let length = 0
  for (let index = 0; length < 200_000; index++) {
    const part = `${samples[index % samples.length]} ${index} w${(index * 7919) % 10007}\n`
    parts.push(part)
    length += part.length
  }
  const text = parts.join('')
  const time = (encode: () => number[]): { ms: number; ids: number[] } => {
    const started = performance.now()
    const ids = encode()
    return { ms: performance.now() - started, ids }
  }
  const oursMs: number[] = []
  const libraryMs: number[] = []
  let equal = true
  let count = 0
  for (let round = 0; round < rounds; round++) {
    const a = time(() => ours.encode(text, { addSpecialTokens: false }))
    const b = time(() => library.encode(text, { add_special_tokens: false }).ids)
    oursMs.push(a.ms)
    libraryMs.push(b.ms)
    count = a.ids.length
    if (a.ids.length !== b.ids.length || a.ids.some((id, index) => id !== b.ids[index])) equal = false
  }
  const median = (values: number[]) => [...values].sort((x, y) => x - y)[values.length >> 1]!
  const rate = (ms: number) => `${(((text.length / ms) * 1000) / 1e6).toFixed(2)} M chars/s`
  return {
    rows: [
      [labels.library, `${median(libraryMs).toFixed(1)} ms`, rate(median(libraryMs))],
      [labels.ours, `${median(oursMs).toFixed(1)} ms`, rate(median(oursMs))],
    ],
    ratio: median(libraryMs) / median(oursMs),
    equal: equal && count > 0,
  }
}

const { values } = parseArgs({
  options: {
    probe: { type: 'string' },
    heap: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '10' },
    help: { type: 'boolean', short: 'h' },
  },
})
if (values.help) {
  console.log('npm run bench:memory:tokenizer [-- --heap] [--rounds N]')
  process.exit(0)
}
if (values.probe !== undefined) {
  if (!implementations.includes(values.probe as Implementation))
    throw new Error(`--probe takes ${implementations.join(' or ')}`)
  probe(values.probe as Implementation)
} else {
  const rounds = Number(values.rounds)
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be a positive integer')
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`
  const load = loadavg()[0]?.toFixed(1)
  const rows: string[][] = []
  for (const implementation of implementations) {
    const runs = [runProbe(implementation), runProbe(implementation), runProbe(implementation)]
    const done = runs.filter((run): run is ProbeResult => run !== undefined)
    if (done.length === 0) {
      rows.push([labels[implementation], 'failed', '—', '—', '—'])
      continue
    }
    const median = (pick: (run: ProbeResult) => number) =>
      [...done.map(pick)].sort((a, b) => a - b)[done.length >> 1]!
    rows.push([
      labels[implementation],
      mib(median((run) => run.retainedBytes)),
      mib(median((run) => run.peakRssBytes)),
      values.heap ? `${smallestHeap(implementation)} MiB` : '(--heap)',
      `${median((run) => run.buildMs).toFixed(0)} ms`,
    ])
  }
  const speed = encodeSpeed(rounds)
  console.log(
    markdownTable({
      title: 'Qwen3 tokenizer (tokenizer.json 11 MB): memory to build and hold it',
      columns: [
        'tokenizer',
        'retained (heap + external)',
        'peak resident added',
        'smallest old space',
        'build',
      ],
      rows,
      notes: [
        'median of 3 fresh processes each; the bytes of tokenizer.json are in memory before and released after',
        `load average ${load} at the start`,
      ],
    }),
  )
  console.log(
    markdownTable({
      title: `Encode, ${rounds} alternating rounds on ~200k characters of mixed text (median)`,
      columns: ['tokenizer', 'time', 'throughput'],
      rows: speed.rows,
      notes: [
        `ours / library speed: ${speed.ratio.toFixed(2)}x; ids equal: ${speed.equal}`,
        `load average ${loadavg()[0]?.toFixed(1)} at the end`,
      ],
    }),
  )
  if (!speed.equal) process.exitCode = 1
}
