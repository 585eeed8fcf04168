// `ondevice serve` (onnxruntime-node) with MAX_CONCURRENT 1 and 4, serving a package under 4
// concurrent streaming requests: the server process's peak resident memory (VmHWM) and each
// request's decode speed. With `--before path/to/other/checkout/cli/bin.js` it runs that CLI too,
// beside this checkout's, the two taking turns round by round, so both share the machine's load:
// the figures to compare are the two sides' in the same run.
//
//   npm run bench:serve-slots -- [--before BIN] [--rounds 2] [--package qwen3_5-0.8b]
//     [--dtype q4] [--tokens 32] [--slots 1,4]
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { ondeviceBin, startServeProcess } from '../cli/serve-process.ts'
import { defaultCacheFolder, ensurePackage, type PackageId } from './support/packages.ts'

const { values } = parseArgs({
  options: {
    before: { type: 'string' },
    rounds: { type: 'string', default: '2' },
    package: { type: 'string', default: 'qwen3_5-0.8b' },
    dtype: { type: 'string', default: 'q4' },
    tokens: { type: 'string', default: '32' },
    slots: { type: 'string', default: '1,4' },
  },
})
const rounds = Number(values.rounds)
const maxTokens = Number(values.tokens)
// A complete package is used as it is (never rebuilt here): ONDEVICE_BENCH_CACHE picks the cache.
const pkg = await ensurePackage(values.package as PackageId, defaultCacheFolder(), console.log, true)
const sides = [
  ...(values.before === undefined ? [] : [{ label: 'before', bin: values.before }]),
  { label: 'after', bin: ondeviceBin },
]
const prompts = [
  'Tell me a story about a secret garden.',
  'Why is the sky blue? Explain it to a child.',
  'List three prime numbers and say why each is prime.',
  'Write a short poem about the sea at night.',
]

function peakRss(pid: number): number {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(match?.[1] ?? Number.NaN) * 1024
}

/**
 * CPU time the server process has used (user + system, all threads), in ms: less sensitive than
 * wall time to what else runs on a shared machine (ONNX Runtime's threads spin a little while
 * waiting for work, so it is not free of it).
 */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
  // utime and stime are fields 14 and 15 of the line, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10
}

interface Answer {
  readonly ttftMs: number
  readonly totalMs: number
  readonly tokens: number
  /** The server's own decode speed (usage.decode_tokens_per_second). */
  readonly decodePerSecond: number
}

async function ask(url: string, model: string, content: string): Promise<Answer> {
  const started = performance.now()
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model,
      messages: [{ role: 'user', content }],
      max_tokens: maxTokens,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    }),
  })
  if (!response.ok || !response.body) throw new Error(`${response.status}: ${await response.text()}`)
  let text = ''
  let first = 0
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
  for (let read = await reader.read(); !read.done; read = await reader.read()) {
    if (first === 0 && read.value.includes('"content"')) first = performance.now()
    text += read.value
  }
  const usage = text
    .split('\n\n')
    .filter((block) => block.startsWith('data: {'))
    .map((block) => JSON.parse(block.slice(6)) as { usage?: Record<string, number> })
    .find((event) => event.usage)?.usage
  return {
    ttftMs: first - started,
    totalMs: performance.now() - started,
    tokens: usage?.completion_tokens ?? 0,
    decodePerSecond: usage?.decode_tokens_per_second ?? Number.NaN,
  }
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

// Both sides' servers run at once and take turns: each round sends the 4 concurrent requests to
// one side, then to the other (which goes first alternates), so the two meet the same load on a
// shared machine within seconds of each other. Peak RSS is each server process's own.
const results: Record<
  string,
  { peak: number[]; decode: number[]; total: number[]; ttft: number[]; cpuPerToken: number[] }
> = {}
for (const slots of (values.slots as string).split(',').map(Number)) {
  const servers = []
  try {
    for (const side of sides)
      servers.push({
        side,
        server: await startServeProcess({
          bin: side.bin,
          args: [
            '--model',
            pkg.folder,
            '--backend',
            'native',
            '--dtype',
            values.dtype as string,
            '--port',
            '0',
          ],
          env: {
            MAX_CONCURRENT: String(slots),
            MAX_QUEUE: '16',
            QUEUE_TIMEOUT_MS: '600000',
            ORT_DISABLE_TELEMETRY: '1',
          },
          timeoutMs: 300_000,
          label: `${side.label} serve`,
        }),
      })
    for (const { server } of servers) await ask(server.url, server.model, 'Hi')
    for (let round = 0; round < rounds; round++) {
      for (const { side, server } of round % 2 === 0 ? servers : [...servers].reverse()) {
        const cpuBefore = cpuMs(server.child.pid as number)
        const answers = await Promise.all(prompts.map((prompt) => ask(server.url, server.model, prompt)))
        const cpu = cpuMs(server.child.pid as number) - cpuBefore
        const key = `${side.label} MAX_CONCURRENT=${slots}`
        results[key] ??= { peak: [], decode: [], total: [], ttft: [], cpuPerToken: [] }
        const entry = results[key]
        entry.cpuPerToken.push(cpu / answers.reduce((total, answer) => total + answer.tokens, 0))
        entry.peak.push(peakRss(server.child.pid as number))
        entry.decode.push(median(answers.map((answer) => answer.decodePerSecond)))
        entry.total.push(median(answers.map((answer) => answer.totalMs)))
        entry.ttft.push(median(answers.map((answer) => answer.ttftMs)))
        console.log(
          JSON.stringify({
            round,
            key,
            peakMiB: Math.round((entry.peak.at(-1) as number) / 2 ** 20),
            cpuMsPerToken: Math.round(entry.cpuPerToken.at(-1) as number),
            answers: answers.map((answer) => ({
              tokens: answer.tokens,
              decodePerSecond: Number(answer.decodePerSecond.toFixed(2)),
              ttftMs: Math.round(answer.ttftMs),
              totalMs: Math.round(answer.totalMs),
            })),
          }),
        )
      }
    }
  } finally {
    for (const { server } of servers) await server.stop()
  }
}
console.log('\nmedians over rounds (each round: the median of the 4 concurrent requests)')
for (const [key, entry] of Object.entries(results))
  console.log(
    `${key.padEnd(26)} peak RSS ${String(Math.round(median(entry.peak) / 2 ** 20)).padStart(6)} MiB  decode ${median(entry.decode).toFixed(2)} tok/s per request  TTFT ${Math.round(median(entry.ttft))} ms  answer ${Math.round(median(entry.total))} ms  CPU ${Math.round(median(entry.cpuPerToken))} ms per token (prompts included)`,
  )
