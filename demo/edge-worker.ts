// Runs the edge worker locally with `wrangler dev` (workerd, offline) on 127.0.0.1, reading the
// model package from a URL (the demo's static server), for `npm start` and the browser tests.
// The launcher itself is tools/wrangler-dev.ts (shared with the workerd tests and benchmarks).
import { type LocalServer, startWranglerDev } from '../tools/wrangler-dev.ts'

export interface EdgeWorkerOptions {
  /** URL prefix of the model package the worker serves (it fetches config.json, onnx/... under it). */
  readonly modelUrl: string
  /** Browser origins allowed to call it (the demo page's origin). */
  readonly allowedOrigins: readonly string[]
  /** Model id clients send (default 'ondevice-default'). */
  readonly modelId?: string
  /** More worker variables (wrangler.toml [vars]), e.g. { MODEL_DTYPE: 'q4' }. */
  readonly variables?: Readonly<Record<string, string>>
  /** Secrets for the worker (NAME=VALUE lines; wrangler's --env-file). */
  readonly envFile?: string
  /** 0 or absent: a free port. */
  readonly port?: number
  /** How long to wait for wrangler to listen and /healthz to answer. Default 90 s. */
  readonly startTimeoutMs?: number
  /** Where wrangler keeps local state (default: a fresh temporary folder, removed at stop). */
  readonly persistTo?: string
  /** Receives wrangler's output lines (default: kept for error messages only). */
  readonly onOutput?: (line: string) => void
}

export type EdgeWorker = LocalServer

/** The repository's worker (wrangler.toml) reading its package from `modelUrl`. */
export async function startEdgeWorker(options: EdgeWorkerOptions): Promise<EdgeWorker> {
  return startWranglerDev({
    vars: {
      MODEL_SOURCE: 'url',
      MODEL_URL: options.modelUrl,
      MODEL_ID: options.modelId ?? 'ondevice-default',
      ALLOWED_ORIGINS: options.allowedOrigins.join(','),
      // The isolate answers (wrangler dev runs no [[containers]] here: tools/wrangler-dev.ts);
      // `ondevice edge --runtime container` passes "container" with CONTAINER_URLS.
      EDGE_RUNTIME: 'isolate',
      ...options.variables,
    },
    logLevel: 'info',
    timeoutMs: options.startTimeoutMs ?? 90_000,
    // npm start runs for hours: keep the recent output only (for failure messages).
    keepOutputChars: 64_000,
    ...(options.port === undefined ? {} : { port: options.port }),
    ...(options.envFile === undefined ? {} : { envFile: options.envFile }),
    ...(options.persistTo === undefined ? {} : { stateDir: options.persistTo }),
    ...(options.onOutput ? { onOutput: options.onOutput } : {}),
  })
}

/**
 * Makes the worker load its model now (a one-token chat completion) so the first real answer
 * does not wait for it: a cold isolate fetches, verifies and compiles the package first.
 * Returns how long that took.
 */
export async function warmEdgeWorker(
  url: string,
  options: { modelId?: string; timeoutMs?: number; apiKey?: string } = {},
): Promise<number> {
  const startedAt = Date.now()
  const deadline = startedAt + (options.timeoutMs ?? 180_000)
  // wrangler dev rebuilds and restarts the worker when a source file changes under it (503,
  // "restarted mid-request"): try again then, as a person reloading the page would.
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
      },
      body: JSON.stringify({
        model: options.modelId ?? 'ondevice-default',
        messages: [{ role: 'user', content: 'Hi' }],
        max_tokens: 1,
        temperature: 0,
      }),
      signal: AbortSignal.timeout(Math.max(1000, deadline - Date.now())),
    })
    const body = await response.text()
    if (response.ok) return Date.now() - startedAt
    if (response.status !== 503 || attempt >= 3 || Date.now() >= deadline) {
      throw new Error(`The edge worker at ${url} could not answer (HTTP ${response.status}): ${body}`)
    }
  }
}
