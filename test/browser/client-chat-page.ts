// Runs in a test page (bundled into it by Vite): one chat through createClient as an app writes it,
// device only, greedy and streamed, and what the app saw of it. The pages of
// test/browser/worker-recovery.test.ts and test/browser/other-browsers.test.ts both chat this way.
import { type ClientInternals, createClient, type StreamPart } from '../../sdk/index.ts'

export interface ClientChatRequest {
  /** The package's URL prefix. */
  readonly model: string
  readonly dtype: string
  readonly numThreads?: number
  readonly prompt: string
  readonly maxTokens: number
}

/** null (not undefined: results travel as JSON) where there was none. */
export interface ClientChatResult {
  readonly route: string
  readonly text: string
  /** Text deltas that arrived (streaming: more than one). */
  readonly deltas: number
  readonly tokenIds: readonly number[]
  readonly backend: string | undefined
  readonly error: { readonly name: string; readonly code: string; readonly message: string } | null
  readonly ready: { readonly backend: string; readonly warnings: readonly string[] } | null
  /** The load-error event's error, as `name code: message`. */
  readonly loadError: string | null
  /** The download-error event's error, as `name code: message`. */
  readonly downloadError: string | null
}

/**
 * createClient as an app writes it (device only: no edge, on the engine), one greedy chat
 * streamed; `internals` as createClient's second argument (a device host of the page's own). The
 * client is disposed before this resolves.
 */
export async function chatThroughClient(
  request: ClientChatRequest,
  internals?: ClientInternals,
): Promise<ClientChatResult> {
  const client = createClient(
    {
      model: request.model,
      backend: 'wasm',
      dtype: request.dtype,
      policy: 'device-only',
      ...(request.numThreads === undefined ? {} : { numThreads: request.numThreads }),
      // A shared 2-core machine decodes slowly; speed is not what these pages check.
      thresholds: { minDeviceTokensPerSecond: 0.01 },
    },
    internals,
  )
  let ready: ClientChatResult['ready'] = null
  let loadError: string | null = null
  let downloadError: string | null = null
  client.on('ready', (event) => (ready = { backend: event.backend, warnings: event.warnings }))
  client.on('load-error', ({ error }) => (loadError = `${error.name} ${error.code}: ${error.message}`))
  client.on(
    'download-error',
    ({ error }) => (downloadError = `${error.name} ${error.code}: ${error.message}`),
  )
  let route = ''
  let text = ''
  let deltas = 0
  let tokenIds: readonly number[] = []
  let backend: string | undefined
  let error: ClientChatResult['error'] = null
  try {
    const parts: AsyncIterable<StreamPart> = client.stream({
      messages: [{ role: 'user', content: request.prompt }],
      maxTokens: request.maxTokens,
      temperature: 0,
    })
    for await (const part of parts) {
      if (part.type === 'route') route = part.route
      else if (part.type === 'text-delta') {
        text += part.text
        deltas++
      } else if (part.type === 'finish')
        ({
          tokenIds,
          usage: { backend },
        } = part)
      else if (part.type === 'error')
        error = { name: part.error.name, code: part.error.code, message: part.error.message }
    }
  } catch (thrown) {
    const failure = thrown as { name?: string; code?: string; message?: string }
    error = {
      name: failure.name ?? 'thrown',
      code: failure.code ?? 'thrown',
      message: failure.message ?? String(thrown),
    }
  } finally {
    await client.dispose()
  }
  return { route, text, deltas, tokenIds, backend, error, ready, loadError, downloadError }
}
