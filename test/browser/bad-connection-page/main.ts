// The page test/browser/bad-connection.test.ts drives: the SDK as an app builds it, with the
// runtime's device host (ondevice's WebAssembly engine, the package in OPFS) in this page, over a
// package and an "edge" that the test's server misbehaves with. Faults in the device are injected
// through the host's own session hook. Results go back to Node as plain JSON.
import { createRuntimeDeviceHost } from '../../../client-runtime/device-host/runtime-host.ts'
import { createBrowserStore } from '../../../client-runtime/store/browser-store.ts'
import type { ModelSession } from '../../../core/model-session.ts'
import { createClient } from '../../../sdk/client.ts'
import type { ChatRequest, ClientOptions } from '../../../sdk/options.ts'
import { isDecodeStep, watchAppends } from '../../support/watch-appends.ts'

export interface ScenarioRequest {
  readonly client: Pick<ClientOptions, 'policy' | 'edge' | 'thresholds'>
  readonly prompt: string
  readonly maxTokens: number
  /** The device throws at this decode step (like a lost WebGPU device). */
  readonly failAtToken?: number
  /** From this decode step on, each step waits this long (a device that slows). */
  readonly slow?: { readonly afterCalls: number; readonly delayMs: number }
  /** A request over the context as well (refused before anything runs). */
  readonly alsoTooLong?: boolean
  /** Calls prepare() first (download, verify, load) and reports its progress. */
  readonly prepare?: boolean
  /** The engine's threads on the device (default the runtime's: one here, 2 cores but one). */
  readonly threads?: number
  /** The package's URL path on the page's origin (default /pkg/). */
  readonly model?: string
  /** More of the request: sampling other than the page's defaults (temperature 0.8, seed 3), a thinking switch. */
  readonly options?: Pick<ChatRequest, 'temperature' | 'seed' | 'logitBias' | 'enableThinking'>
}

export interface ScenarioResult {
  readonly parts: readonly { readonly type: string; readonly route?: string; readonly reason?: string }[]
  readonly text: string
  /** The reasoning-delta parts' text, joined. */
  readonly reasoning: string
  /** The finish's token ids and counts (absent without a finish). */
  readonly tokenIds: readonly number[] | undefined
  readonly usage:
    | { readonly promptTokens: number; readonly completionTokens: number; readonly reasoningTokens?: number }
    | undefined
  readonly route: string | undefined
  readonly routeReason: string | undefined
  readonly error:
    | { readonly code: string; readonly isRetryable: boolean; readonly message: string }
    | undefined
  readonly tooLong: { readonly code: string; readonly message: string } | undefined
  readonly progress: readonly {
    loadedBytes: number
    totalBytes: number | undefined
    fileLoadedBytes: number
  }[]
  readonly milliseconds: number
}

function faulty(request: ScenarioRequest): ((session: ModelSession) => ModelSession) | undefined {
  if (request.failAtToken === undefined && request.slow === undefined) return undefined
  return (session) => {
    let probing = true
    let calls = 0
    return watchAppends(
      session,
      async (tokenIds, options) => {
        if (probing) return
        if (isDecodeStep(tokenIds, options)) calls++
        if (request.slow && calls >= request.slow.afterCalls)
          await new Promise((resolve) => setTimeout(resolve, request.slow?.delayMs))
        if (request.failAtToken !== undefined && calls >= request.failAtToken) {
          const { BackendError } = await import('../../../core/errors.ts')
          throw new BackendError('backend_failed', 'The page failed the device on purpose.', {
            isRetryable: true,
          })
        }
      },
      { onReset: () => (probing = false) },
    )
  }
}

async function runScenario(request: ScenarioRequest): Promise<ScenarioResult> {
  const started = performance.now()
  const wrapSession = faulty(request)
  const deviceHost = createRuntimeDeviceHost({
    store: createBrowserStore({
      name: 'bad-connection',
      idleTimeoutMs: 10_000,
      manifestRefreshTimeoutMs: 300,
      downloadRetryDelayMs: 50,
      onWarning: () => undefined,
    }),
    contextLength: 256,
    ...(request.threads === undefined ? {} : { numThreads: request.threads }),
    ...(wrapSession ? { wrapSession } : {}),
  })
  const client = createClient(
    {
      model: new URL(request.model ?? '/pkg/', location.href).href,
      backend: 'wasm',
      dtype: 'q8',
      defaults: { temperature: 0.8, seed: 3 },
      ...request.client,
    },
    { deviceHost },
  )
  const progress: ScenarioResult['progress'][number][] = []
  const parts: ScenarioResult['parts'][number][] = []
  let text = ''
  let reasoning = ''
  let tokenIds: ScenarioResult['tokenIds']
  let usage: ScenarioResult['usage']
  let route: string | undefined
  let routeReason: string | undefined
  let error: ScenarioResult['error']
  let tooLong: ScenarioResult['tooLong']
  try {
    if (request.prepare)
      await client.prepare({
        onProgress: (event) =>
          progress.push({
            loadedBytes: event.loadedBytes,
            totalBytes: event.totalBytes,
            fileLoadedBytes: event.fileLoadedBytes,
          }),
      })
    for await (const part of client.stream({
      messages: [{ role: 'user', content: request.prompt }],
      maxTokens: request.maxTokens,
      ...request.options,
    })) {
      parts.push({
        type: part.type,
        ...(part.type === 'route' ? { route: part.route, reason: part.reason } : {}),
        ...(part.type === 'handoff' ? { reason: part.reason } : {}),
      })
      if (part.type === 'text-delta') text += part.text
      if (part.type === 'reasoning-delta') reasoning += part.text
      if (part.type === 'finish') {
        route = part.usage.route
        routeReason = part.usage.routeReason
        tokenIds = part.tokenIds
        usage = {
          promptTokens: part.usage.promptTokens,
          completionTokens: part.usage.completionTokens,
          reasoningTokens: part.usage.reasoningTokens,
        }
      }
      if (part.type === 'error')
        error = { code: part.error.code, isRetryable: part.error.isRetryable, message: part.error.message }
    }
    if (request.alsoTooLong) {
      await client
        .chat({ messages: [{ role: 'user', content: `${request.prompt} `.repeat(400) }], maxTokens: 200 })
        .catch((caught: { code: string; message: string }) => {
          tooLong = { code: caught.code, message: caught.message }
        })
    }
  } catch (caught) {
    const failure = caught as { code?: string; isRetryable?: boolean; message: string }
    error = {
      code: failure.code ?? 'thrown',
      isRetryable: failure.isRetryable ?? false,
      message: failure.message,
    }
  } finally {
    await client.dispose()
  }
  return {
    parts,
    text,
    reasoning,
    tokenIds,
    usage,
    route,
    routeReason,
    error,
    tooLong,
    progress,
    milliseconds: performance.now() - started,
  }
}

;(globalThis as { runScenario?: typeof runScenario }).runScenario = runScenario
