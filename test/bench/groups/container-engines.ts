// Group 8: what the container loses (or gains) running ondevice's WebAssembly engine instead of
// onnxruntime-node. One container from the repository's image serves the Qwen3.5-0.8B-shape q4
// package on both (`ondevice serve --backend native,wasm`); requests alternate between them by
// naming the backend (`ondevice_format`), so both see the same load on this shared machine and
// only their ratio means anything. Per request: time to first token as the client sees it (the
// first streamed content, request sent to chunk read) and the server's decode rate
// (usage.decode_tokens_per_second). Threads: each backend's default (the engine one, onnxruntime-node
// its pool), or ENGINE_THREADS for both (`serve --threads`); ENGINE_ROUNDS sets the rounds
// (default 3). Docker is required (`bash scripts/setup-system.sh`).
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { buildEdgeImage, type EdgeContainer, runEdgeContainer } from '../../../tools/docker/edge-container.ts'
import type { BenchContext, GroupResult } from '../support/context.ts'
import { ensurePackage } from '../support/packages.ts'
import { formatNumber, formatRatio, median } from '../support/stats.ts'

const execute = promisify(execFile)
const apiKey = 'bench-engines-key-0123456789abcdef'
const modelId = 'qwen3_5-0.8b'
const backends = ['native', 'wasm'] as const
type BenchBackend = (typeof backends)[number]

// 82 prompt tokens with the chat template: a short first turn.
const prompt =
  'Once upon a time, in a small town by the sea, there lived a girl named Lily who loved to build boats. ' +
  'Every morning she walked to the harbour with her dog Max, and they watched the fishermen mend their nets. ' +
  'One day a storm came, and the little boats were tossed about like leaves, so Lily ran to help. ' +
  'Tell me what happened next.'

interface Sample {
  readonly backend: string
  readonly dtype: string
  readonly timeToFirstTokenMs: number
  readonly serverTimeToFirstTokenMs: number
  readonly decodeTokensPerSecond: number
  readonly promptTokens: number
  readonly completionTokens: number
}

/** One streamed answer in `backend`, timed from the request to the first content chunk. */
async function timedAnswer(url: string, backend: BenchBackend, maxTokens: number): Promise<Sample> {
  const started = performance.now()
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({
      model: modelId,
      messages: [{ role: 'user', content: prompt }],
      max_tokens: maxTokens,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
      ondevice_format: { dtype: 'q4', backend },
    }),
  })
  if (!response.ok || response.body === null)
    throw new Error(`${backend}: HTTP ${response.status} ${await response.text()}`)
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  let firstContentAt: number | undefined
  let usage: Record<string, unknown> | undefined
  for (;;) {
    const next = await reader.read()
    if (next.done) break
    buffer += next.value
    const events = buffer.split('\n\n')
    buffer = events.pop() ?? ''
    for (const event of events) {
      const data = event.trim().replace(/^data: /, '')
      if (data === '' || data === '[DONE]') continue
      const chunk = JSON.parse(data) as {
        choices?: { delta?: { content?: string } }[]
        usage?: Record<string, unknown> | null
        error?: { message: string }
      }
      if (chunk.error) throw new Error(`${backend}: ${chunk.error.message}`)
      if (firstContentAt === undefined && (chunk.choices?.[0]?.delta?.content ?? '') !== '')
        firstContentAt = performance.now()
      if (chunk.usage) usage = chunk.usage
    }
  }
  if (!usage) throw new Error(`${backend}: the stream had no usage chunk`)
  return {
    backend: String(usage['backend']),
    dtype: String(usage['dtype']),
    timeToFirstTokenMs: (firstContentAt ?? performance.now()) - started,
    serverTimeToFirstTokenMs: Number(usage['time_to_first_token_ms']),
    decodeTokensPerSecond: Number(usage['decode_tokens_per_second']),
    promptTokens: Number(usage['prompt_tokens']),
    completionTokens: Number(usage['completion_tokens']),
  }
}

export async function containerEngines(context: BenchContext): Promise<GroupResult> {
  const title = "the container's engines: ondevice's WebAssembly engine vs onnxruntime-node (Docker)"
  const pkg = await ensurePackage('qwen3_5-0.8b', context.cacheFolder, context.log, context.keepPackages)
  const requestedThreads = process.env['ENGINE_THREADS']
  const threads = requestedThreads === undefined ? undefined : Number(requestedThreads)
  const rounds = context.quick ? 1 : Number(process.env['ENGINE_ROUNDS'] ?? 3)
  const maxTokens = context.quick ? 12 : 32
  // A tag of this run's own: other runs on this Docker daemon build from other trees.
  const tag = `ondevice-edge:bench-engines-${process.pid}`
  context.log('building the edge image')
  await buildEdgeImage({ tag })
  let container: EdgeContainer | undefined
  const samples: Sample[] = []
  let engineLoadMs = 0
  try {
    container = await runEdgeContainer({
      image: tag,
      modelDir: pkg.folder,
      env: { API_KEYS: apiKey, MODEL_ID: modelId, MAX_CONCURRENT: '1' },
      serveArgs: [
        '--backend',
        'native,wasm',
        '--dtype',
        'q4',
        ...(threads === undefined ? [] : ['--threads', String(threads)]),
      ],
      timeoutMs: 600_000,
      restart: false,
    })
    context.log(`container up in ${(container.startMs / 1000).toFixed(1)} s (onnxruntime-node loaded)`)
    // The engine loads on the first request that names it: timed apart, not in the samples.
    const loadStarted = performance.now()
    await timedAnswer(container.url, 'wasm', 1)
    engineLoadMs = performance.now() - loadStarted
    await timedAnswer(container.url, 'native', 1)
    for (let round = 0; round < rounds; round++) {
      // Alternating, and in the other order every other round, so neither always runs first.
      const order = round % 2 === 0 ? backends : [...backends].reverse()
      for (const backend of order) {
        const sample = await timedAnswer(container.url, backend, maxTokens)
        if (sample.backend !== backend || sample.dtype !== 'q4')
          throw new Error(`asked for q4 on ${backend}, got ${sample.dtype} on ${sample.backend}`)
        samples.push(sample)
        context.log(
          `${backend}: TTFT ${sample.timeToFirstTokenMs.toFixed(0)} ms, decode ${sample.decodeTokensPerSecond.toFixed(2)} tok/s`,
        )
      }
    }
  } finally {
    await container?.stop()
    await execute('docker', ['rmi', '--no-prune', tag]).catch(() => undefined)
  }
  const of = (backend: BenchBackend) => samples.filter((sample) => sample.backend === backend)
  const figure = (backend: BenchBackend, pick: (sample: Sample) => number) => median(of(backend).map(pick))
  const ttft = (backend: BenchBackend) => figure(backend, (sample) => sample.timeToFirstTokenMs)
  const decode = (backend: BenchBackend) => figure(backend, (sample) => sample.decodeTokensPerSecond)
  const threadLabel = (backend: BenchBackend) =>
    threads !== undefined
      ? `${threads} thread${threads === 1 ? '' : 's'}`
      : backend === 'wasm'
        ? '1 thread'
        : 'its default pool'
  const rows = backends.map((backend) => [
    `${backend === 'wasm' ? "ondevice's engine (wasm" : 'onnxruntime-node (native'}, ${threadLabel(backend)})`,
    formatNumber(ttft(backend)),
    formatNumber(figure(backend, (sample) => sample.serverTimeToFirstTokenMs)),
    formatNumber(decode(backend)),
    String(of(backend).length),
  ])
  // The benchmarks' convention: > 1 means ondevice's engine is better (speed: engine ÷ native;
  // time: native ÷ engine).
  rows.push([
    'engine vs onnxruntime-node (> 1: the engine is better)',
    formatRatio(ttft('native') / ttft('wasm')),
    formatRatio(
      figure('native', (sample) => sample.serverTimeToFirstTokenMs) /
        figure('wasm', (sample) => sample.serverTimeToFirstTokenMs),
    ),
    formatRatio(decode('wasm') / decode('native')),
    '',
  ])
  return {
    group: 8,
    title,
    tables: [
      {
        title: `Qwen3.5-0.8B shape q4 in one container (ondevice serve --backend native,wasm), ${samples[0]?.promptTokens ?? '?'} prompt tokens, ${maxTokens} generated, medians of ${rounds}`,
        columns: [
          'backend',
          'TTFT at the client (ms)',
          'TTFT in the server (ms)',
          'decode (tokens/s)',
          'answers',
        ],
        rows,
        notes: [
          'Requests alternate between the backends in one container, so both share the machine load; only the ratios mean anything on a shared machine.',
          `The engine loaded on its first request in ${(engineLoadMs / 1000).toFixed(1)} s (onnxruntime-node at start, with the container's start).`,
        ],
      },
    ],
    data: { threads, rounds, maxTokens, engineLoadMs, samples },
  }
}
