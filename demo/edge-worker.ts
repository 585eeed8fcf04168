// Runs the edge worker locally with `wrangler dev` (workerd, offline) on 127.0.0.1, reading the
// model package from a URL (the demo's static server), for `npm start` and the browser tests.
// Stopped by the PID of the process group it started.
import { type ChildProcess, spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'

const repositoryRoot = fileURLToPath(new URL('..', import.meta.url))
const wranglerBin = fileURLToPath(new URL('../node_modules/wrangler/bin/wrangler.js', import.meta.url))

/** Keeps wrangler off the network: no metrics, no error reports, no Cloudflare fetches (DESIGN.md §6). */
export const offlineWranglerEnvironment: Readonly<Record<string, string>> = {
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  WRANGLER_SEND_ERROR_REPORTS: 'false',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
}

export interface EdgeWorkerOptions {
  /** URL prefix of the model package the worker serves (it fetches config.json, onnx/... under it). */
  readonly modelUrl: string
  /** Browser origins allowed to call it (the demo page's origin). */
  readonly allowedOrigins: readonly string[]
  /** Model id clients send (default 'ondevice-default'). */
  readonly modelId?: string
  /** More worker variables (wrangler.toml [vars]), e.g. { MODEL_DTYPE: 'q4' }. */
  readonly variables?: Readonly<Record<string, string>>
  /** 0 or absent: a free port. */
  readonly port?: number
  /** How long to wait for wrangler to listen and /healthz to answer. Default 90 s. */
  readonly startTimeoutMs?: number
  /** Where wrangler keeps local state (default: .wrangler/state in the repository). */
  readonly persistTo?: string
  /** Receives wrangler's output lines (default: kept for error messages only). */
  readonly onOutput?: (line: string) => void
}

export interface EdgeWorker {
  /** Base URL, e.g. http://127.0.0.1:8787 */
  readonly url: string
  readonly pid: number
  /** wrangler's recent output, for failure messages. */
  output(): string
  stop(): Promise<void>
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, rejectPort) => {
    const server = createServer()
    server.once('error', rejectPort)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolvePort(port))
    })
  })
}

export async function startEdgeWorker(options: EdgeWorkerOptions): Promise<EdgeWorker> {
  const port = options.port !== undefined && options.port !== 0 ? options.port : await freePort()
  const inspectorPort = await freePort()
  const variables: Record<string, string> = {
    MODEL_SOURCE: 'url',
    MODEL_URL: options.modelUrl,
    MODEL_ID: options.modelId ?? 'ondevice-default',
    ALLOWED_ORIGINS: options.allowedOrigins.join(','),
    ...options.variables,
  }
  const args = [
    wranglerBin,
    'dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--inspector-port',
    String(inspectorPort),
    '--local',
    '--show-interactive-dev-session=false',
    '--log-level',
    'info',
    ...(options.persistTo === undefined ? [] : ['--persist-to', options.persistTo]),
    ...Object.entries(variables).flatMap(([name, value]) => ['--var', `${name}:${value}`]),
  ]
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: repositoryRoot,
    env: { ...process.env, ...offlineWranglerEnvironment, CI: 'true', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so stopping it also stops the workerd it starts.
    detached: true,
  })
  const lines: string[] = []
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue
      lines.push(line)
      if (lines.length > 200) lines.shift()
      options.onOutput?.(line)
    }
  }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  let exited = false
  const exit = new Promise<void>((resolveExit) =>
    child.once('exit', () => {
      exited = true
      resolveExit()
    }),
  )
  const pid = child.pid
  if (pid === undefined) throw new Error('Could not start wrangler dev (no process id).')

  const stop = async () => {
    if (exited) return
    try {
      process.kill(-pid, 'SIGTERM')
    } catch {
      return
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-pid, 'SIGKILL')
      } catch {
        // Already gone.
      }
    }, 5000)
    await exit
    clearTimeout(timer)
  }

  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + (options.startTimeoutMs ?? 90_000)
  while (true) {
    if (exited) {
      throw new Error(`wrangler dev exited before it served ${url}:\n${lines.join('\n')}`)
    }
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`wrangler dev did not answer ${url}/healthz in time:\n${lines.join('\n')}`)
    }
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) })
      if (response.ok) break
    } catch {
      // Not listening yet.
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 300))
  }
  return { url, pid, output: () => lines.join('\n'), stop }
}

/**
 * Makes the worker load its model now (a one-token chat completion) so the first real answer
 * does not wait for it: a cold isolate fetches, verifies and compiles the package first.
 * Returns how long that took.
 */
export async function warmEdgeWorker(
  url: string,
  options: { modelId?: string; timeoutMs?: number } = {},
): Promise<number> {
  const startedAt = Date.now()
  const deadline = startedAt + (options.timeoutMs ?? 180_000)
  // wrangler dev rebuilds and restarts the worker when a source file changes under it (503,
  // "restarted mid-request"): try again then, as a person reloading the page would.
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
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
