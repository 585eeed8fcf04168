// A small web app as a newcomer writes it from README.md and docs/sdk.md: a "Summarize" button
// streaming from createClient, the model package and ONNX Runtime's files served by the app
// itself, the local edge (`npx ondevice edge`) as the fallback. `window.app` lets the browser test
// drive it; the query string carries what differs per run (the edge's URL, numThreads).
import { createClient, type OndeviceClient, OndeviceError, type StreamPart } from 'ondevice'

const params = new URLSearchParams(location.search)
const edgeUrl = params.get('edge') ?? 'http://127.0.0.1:8787'
const model = '/models/default/'

const ai = createClient({
  model,
  edge: { url: edgeUrl, connectTimeoutMs: 120_000 },
  runtimeUrl: '/ort/',
  // Two WebAssembly threads: the engine's helper Web Worker comes out of the app's build, and the
  // server's COOP/COEP headers make the page cross-origin isolated (shared memory).
  numThreads: Number(params.get('threads') ?? 2),
  // onnxruntime-web's WASM instead of ondevice's engine, when the test asks for it.
  ...(params.get('backend') === 'ort-wasm' ? { backend: 'ort-wasm' as const } : {}),
  // The embedded default model is tiny but a loaded 2-core machine still decodes it slowly.
  thresholds: { minDeviceTokensPerSecond: Number(params.get('minTokensPerSecond') ?? 8) },
})

const events: { name: string; message: string; warnings?: readonly string[] }[] = []
ai.on('load-error', ({ error }) => events.push({ name: 'load-error', message: error.message }))
ai.on('download-error', ({ error }) => events.push({ name: 'download-error', message: error.message }))
ai.on('ready', ({ backend, dtype, warnings }) =>
  events.push({ name: 'ready', message: `${backend} ${dtype}`, warnings }),
)

interface Answer {
  readonly route: string
  readonly reason: string
  readonly text: string
  readonly backend: string | undefined
  readonly error: string | undefined
  readonly tokenIds: readonly number[]
}

async function collect(client: OndeviceClient, text: string): Promise<Answer> {
  let route = ''
  let reason = ''
  let answer = ''
  let backend: string | undefined
  let error: string | undefined
  let tokenIds: readonly number[] = []
  const parts: AsyncIterable<StreamPart> = client.stream({
    messages: [{ role: 'user', content: `Summarize in one sentence: ${text}` }],
    maxTokens: 6,
    temperature: 0,
  })
  for await (const part of parts) {
    if (part.type === 'route') ({ route, reason } = part)
    else if (part.type === 'text-delta') {
      answer += part.text
      document.querySelector('#answer')!.textContent = answer
    } else if (part.type === 'finish')
      ({
        tokenIds,
        usage: { backend },
      } = part)
    else if (part.type === 'error') error = part.error.message
  }
  document.querySelector('#route')!.textContent = route
  return { route, reason, text: answer, backend, error, tokenIds }
}

function summarize(): Promise<Answer> {
  return collect(ai, (document.querySelector('#text') as HTMLTextAreaElement).value)
}

document.querySelector('#summarize')!.addEventListener('click', () => void summarize())

/** What createClient says about options that cannot work in a browser. */
function optionErrors(): { param?: string; message: string }[] {
  const attempts = [{ model, backend: 'native' as const }, { edge: { url: edgeUrl } }]
  return attempts.map((options) => {
    try {
      createClient(options)
      return { message: 'accepted' }
    } catch (error) {
      return { param: (error as { param?: string }).param, message: (error as Error).message }
    }
  })
}

/** The edge alone, as this page's origin sees it. */
function edgeOnly(): Promise<Answer> {
  return collect(
    createClient({ policy: 'edge-only', edge: { url: edgeUrl, connectTimeoutMs: 120_000 } }),
    'Hi',
  )
}

interface StructuredAnswer {
  readonly route?: string
  readonly reason?: string
  readonly text?: string
  readonly error?: {
    readonly name: string
    readonly code: string
    readonly isRetryable: boolean
    readonly param: string | undefined
    readonly message: string
  }
}

/** A JSON answer that follows a schema: the first such request loads the structured-output code. */
async function structuredWith(schema: unknown): Promise<StructuredAnswer> {
  try {
    const answer = await ai.chat({
      messages: [{ role: 'user', content: 'Summarize ondevice as JSON.' }],
      responseFormat: { type: 'json_schema', schema },
      maxTokens: 8,
      temperature: 0,
    })
    return { route: answer.route, reason: answer.routeReason, text: answer.text }
  } catch (error) {
    if (!(error instanceof OndeviceError)) throw error
    const { name, code, isRetryable, param, message } = error
    return { error: { name, code, isRetryable, param, message } }
  }
}

const summarySchema = {
  type: 'object',
  properties: { summary: { type: 'string' } },
  required: ['summary'],
}

Object.assign(window, {
  app: {
    summarize,
    edgeOnly,
    optionErrors,
    events,
    status: () => ai.status(),
    prepare: () => ai.prepare(),
    structured: () => structuredWith(summarySchema),
    // A format the grammar cannot enforce: refused before anything runs.
    structuredRefused: () => structuredWith({ type: 'string', format: 'regex' }),
    // The app's own model worker (docs/sdk.md, createBrowserDeviceHost's `worker`).
    ownWorker: async () => (await import('./own-worker.ts')).ownWorkerAnswer(),
  },
})
