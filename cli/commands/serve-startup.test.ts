// `ondevice serve` while its model loads, over real HTTP: the port is open from the start, so a
// health check or a client gets an answer (503 "loading", Retry-After, the project's error JSON)
// instead of "connection refused" for the whole load; once loaded it answers; a load that fails
// ends the command with exit code 1 and the reason. The package comes from a local HTTP server
// that holds the weight files until the test lets them go, so the load lasts as long as needed.
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureDefaultPackage } from '../../builder/default-package.ts'
import { ondeviceBin } from '../../test/cli/serve-process.ts'

let workDir: string
let packageDir: string
let files: Server
let filesUrl: string
/** What the file server does with a weight file (under onnx/) for now. */
let weights: 'hold' | 'serve' | 'missing' = 'hold'
const held: (() => void)[] = []

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'ondevice-serve-startup-'))
  packageDir = await ensureDefaultPackage({ cacheDir: join(workDir, 'package') })
  files = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname).replace(/^\/pkg\//, '')
    const send = () => {
      if (path.startsWith('onnx/') && weights === 'missing') {
        response.writeHead(404).end('not here')
        return
      }
      readFile(join(packageDir, path)).then(
        (bytes) => response.writeHead(200, { 'content-length': bytes.byteLength }).end(bytes),
        () => response.writeHead(404).end('not here'),
      )
    }
    if (path.startsWith('onnx/') && weights === 'hold') held.push(send)
    else send()
  })
  await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve))
  filesUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}/pkg/`
}, 120_000)

afterAll(async () => {
  files?.closeAllConnections()
  await new Promise<void>((resolve) => (files ? files.close(() => resolve()) : resolve()))
  await rm(workDir, { recursive: true, force: true })
})

interface Serve {
  readonly child: ChildProcess
  output(): string
  /** Resolves with the first match of `pattern` in the output (stdout and stderr). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>
  readonly exited: Promise<number | null>
}

function serve(cacheName: string, env: Record<string, string> = {}, args: readonly string[] = []): Serve {
  let output = ''
  const child = spawn(process.execPath, [ondeviceBin, 'serve', '--model', filesUrl, '--port', '0', ...args], {
    env: { ...process.env, ONDEVICE_CACHE_DIR: join(workDir, cacheName), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const listeners = new Set<() => void>()
  const onData = (data: Buffer) => {
    output += data.toString()
    for (const listener of listeners) listener()
  }
  child.stdout?.on('data', onData)
  child.stderr?.on('data', onData)
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return {
    child,
    output: () => output,
    exited,
    waitFor: (pattern, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(output)
          if (!match) return
          listeners.delete(check)
          clearTimeout(timer)
          resolve(match)
        }
        const timer = setTimeout(() => {
          listeners.delete(check)
          reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${output}`))
        }, timeoutMs)
        listeners.add(check)
        void exited.then(() => setTimeout(check, 10))
        check()
      }),
  }
}

async function stop(server: Serve): Promise<void> {
  if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGTERM')
  await server.exited
}

const chat = (url: string, stream = false, maxTokens = 3) =>
  fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'pkg',
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: maxTokens,
      stream,
    }),
  })

/** The URL once the server listens (after its start-up load). */
async function listening(server: Serve): Promise<string> {
  const [, url] = (await server.waitFor(/Listening on (http:\/\/127\.0\.0\.1:\d+)/)) as unknown as [
    string,
    string,
  ]
  return url
}

describe('ondevice serve while its model loads', () => {
  it('listens at once: /healthz 503 "loading" and chats 503 + Retry-After until the model is loaded, then answers', async () => {
    weights = 'hold'
    const server = serve('cache-hold')
    try {
      const [, url] = (await server.waitFor(/Bound to (http:\/\/127\.0\.0\.1:\d+)/)) as unknown as [
        string,
        string,
      ]
      // The load is under way and cannot finish: the weight files are held.
      await expect.poll(() => held.length, { timeout: 60_000 }).toBeGreaterThan(0)

      const health = await fetch(`${url}/healthz`)
      expect(health.status).toBe(503)
      expect(health.headers.get('retry-after')).toBe('5')
      expect(await health.json()).toMatchObject({ status: 'loading', state: 'loading', loaded: false })

      for (const stream of [false, true]) {
        const refused = await chat(url, stream)
        expect(refused.status).toBe(503)
        expect(refused.headers.get('retry-after')).toBe('5')
        const body = (await refused.json()) as { error: { code: string; type: string; message: string } }
        expect(body.error).toMatchObject({ code: 'edge_starting', type: 'server_error' })
        expect(body.error.message).toMatch(/still loading on this server .* Retry in 5 s/)
      }
      // What needs no model answers meanwhile.
      expect((await fetch(`${url}/v1/models`)).status).toBe(200)
      expect(server.output()).not.toMatch(/Listening on/)

      weights = 'serve'
      for (const send of held.splice(0)) send()
      await server.waitFor(/Listening on http:\/\/127\.0\.0\.1:\d+ \(model pkg\)/)
      const answer = await chat(url)
      expect(answer.status).toBe(200)
      expect(
        ((await answer.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens,
      ).toBe(3)
      const ready = await fetch(`${url}/healthz`)
      expect(ready.status).toBe(200)
      expect(await ready.json()).toMatchObject({ status: 'ok', state: 'ready', loaded: true })
    } finally {
      await stop(server)
    }
  }, 120_000)

  it('SIGTERM while the model loads ends the process at once with exit code 0 (PID 1 in a container gets no default handler)', async () => {
    weights = 'hold'
    const server = serve('cache-term-loading')
    try {
      await server.waitFor(/Bound to http/)
      await expect.poll(() => held.length, { timeout: 60_000 }).toBeGreaterThan(0)
      server.child.kill('SIGTERM')
      expect(await server.exited).toBe(0)
      expect(server.output()).toMatch(/Stopped while the model was loading/)
    } finally {
      weights = 'serve'
      for (const send of held.splice(0)) send()
      await stop(server)
    }
  }, 120_000)

  it('SIGTERM while a request loads the model (--no-preload) exits 0 after the grace, not once the download ends (it waited on the load: docker stop ended in SIGKILL)', async () => {
    weights = 'hold'
    const server = serve('cache-term-lazy', { SHUTDOWN_TIMEOUT_MS: '300' }, ['--no-preload'])
    try {
      const url = await listening(server)
      const answer = chat(url, false, 4).catch((error: unknown) => error)
      await expect.poll(() => held.length, { timeout: 60_000 }).toBeGreaterThan(0)
      server.child.kill('SIGTERM')
      const code = await Promise.race([
        server.exited,
        new Promise((resolve) => setTimeout(resolve, 15_000, 'still running')),
      ])
      expect(code).toBe(0)
      expect(server.output()).toMatch(/Stopped while a model was still loading/)
      await answer
    } finally {
      weights = 'serve'
      for (const send of held.splice(0)) send()
      await stop(server)
    }
  }, 120_000)

  it('SIGTERM with a stream open: the stream finishes with [DONE], new connections are refused, exit code 0', async () => {
    weights = 'serve'
    const server = serve('cache-term-stream')
    try {
      const url = await listening(server)
      const response = await chat(url, true, 48)
      expect(response.status).toBe(200)
      const reader = (response.body as ReadableStream<Uint8Array>).getReader()
      const decoder = new TextDecoder()
      let text = decoder.decode((await reader.read()).value)
      server.child.kill('SIGTERM')
      await server.waitFor(/Stopping: running requests have up to 8000 ms/)
      // Old code cut every connection here: the stream ended without [DONE].
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        text += decoder.decode(value, { stream: true })
      }
      expect(text).toContain('data: [DONE]')
      expect(text).toMatch(/"finish_reason":"length"/)
      await expect(fetch(`${url}/healthz`)).rejects.toThrow()
      expect(await server.exited).toBe(0)
    } finally {
      await stop(server)
    }
  }, 120_000)

  it('SIGTERM with a stream still running at SHUTDOWN_TIMEOUT_MS: an edge_unavailable error event, then the end; exit code 0', async () => {
    weights = 'serve'
    const server = serve('cache-term-stream', { SHUTDOWN_TIMEOUT_MS: '300' })
    try {
      const url = await listening(server)
      // 2,000 tokens: seconds of generation even on a fast machine (~11 s on a loaded 2-core one),
      // so it is still running when the 300 ms grace ends.
      const response = await chat(url, true, 2000)
      expect(response.status).toBe(200)
      const reader = (response.body as ReadableStream<Uint8Array>).getReader()
      const decoder = new TextDecoder()
      let text = ''
      // A token in: the answer is generating.
      while (!text.includes('"token_ids"')) {
        const { done, value } = await reader.read()
        if (done) throw new Error(`the stream ended early: ${text}`)
        text += decoder.decode(value, { stream: true })
      }
      server.child.kill('SIGTERM')
      // Old code cut the connection here: the stream ended without a word.
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        text += decoder.decode(value, { stream: true })
      }
      const events = text.split('\n\n').filter((event) => event.trim() !== '')
      const last = events.at(-1)?.trim() ?? ''
      expect(last, text.slice(-2000)).toMatch(/^data: \{"error"/)
      expect(JSON.parse(last.slice('data: '.length))).toMatchObject({
        error: { code: 'edge_unavailable', type: 'server_error' },
      })
      expect(text).not.toContain('data: [DONE]')
      expect(await server.exited).toBe(0)
      expect(server.output()).toMatch(/Stopping: running requests have up to 300 ms/)
    } finally {
      await stop(server)
    }
  }, 120_000)

  it('a model that fails to load: the command ends with exit code 1 and the reason', async () => {
    weights = 'missing'
    const server = serve('cache-missing')
    try {
      await server.waitFor(/Bound to http/)
      expect(await server.exited).toBe(1)
      expect(server.output()).toMatch(
        /ondevice serve: The model could not be loaded on this server: .*onnx\//,
      )
      expect(server.output()).not.toMatch(/Listening on/)
    } finally {
      await stop(server)
    }
  }, 120_000)

  it('bad settings (API_KEYS, MEMORY_BUDGET_MB, --no-preload with --bind-after-load) are named and refused before anything loads; MODEL_URL, which serve does not read, is named', async () => {
    const run = (env: Record<string, string>) =>
      new Promise<{ code: number | null; output: string }>((resolve) => {
        let output = ''
        const child = spawn(process.execPath, [ondeviceBin, 'serve', '--port', '0'], {
          env: { ...process.env, ONDEVICE_CACHE_DIR: join(workDir, 'cache-settings'), ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        })
        child.stdout?.on('data', (data: Buffer) => (output += data.toString()))
        child.stderr?.on('data', (data: Buffer) => (output += data.toString()))
        child.once('exit', (code) => resolve({ code, output }))
      })
    const keys = await run({ API_KEYS: 'serve-test-key-0123456789,short' })
    expect(keys.code).toBe(2)
    expect(keys.output).toContain(
      'API key 2 of 2 (API_KEYS, or the apiKeys option) has 5 characters: each key must be a string of at least 16 characters',
    )
    expect(keys.output).not.toMatch(/short|No --model/)
    const both = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [ondeviceBin, 'serve', '--no-preload', '--bind-after-load'],
        (error, _stdout, stderr) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stderr }),
      )
    })
    expect(both.code).toBe(2)
    expect(both.stderr).toMatch(/--bind-after-load waits for the load at start, which --no-preload skips/)
    // MODEL_URL is the Worker's: given to serve (a container run with -e MODEL_URL), it says so.
    const url = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [ondeviceBin, 'serve', '--port', '0', '--model', join(workDir, 'not-mounted')],
        { env: { ...process.env, MODEL_URL: 'https://models.example.com/pkg/' } },
        (error, _stdout, stderr) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stderr }),
      )
    })
    expect(url.code).toBe(1)
    expect(url.stderr).toMatch(
      /MODEL_URL is set, but ondevice serve does not read it .*Pass the package's URL as --model/,
    )
    expect(url.stderr).toMatch(/No model package at .*not-mounted/)
    const budget = await run({ MEMORY_BUDGET_MB: 'lots' })
    expect(budget.code).toBe(2)
    expect(budget.output).toContain("MEMORY_BUDGET_MB must be an integer from 0 to 16777216, got 'lots'.")
  }, 60_000)

  it('MODEL_CONTEXT_LENGTH and MODEL_THREADS (what a Worker passes its container) apply when the flags are not given; a bad MODEL_THREADS is named', async () => {
    let output = ''
    const child = spawn(
      process.execPath,
      [ondeviceBin, 'serve', '--model', packageDir, '--port', '0', '--backend', 'wasm'],
      {
        env: {
          ...process.env,
          ONDEVICE_CACHE_DIR: join(workDir, 'cache-env'),
          MODEL_CONTEXT_LENGTH: '64',
          MODEL_THREADS: '2',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not listening within 60 s:\n${output}`)), 60_000)
        const onData = (data: Buffer) => {
          output += data.toString()
          const match = /Listening on (http:\/\/\S+)/.exec(output)
          if (match) {
            clearTimeout(timer)
            resolve(match[1] as string)
          }
        }
        child.stdout?.on('data', onData)
        child.stderr?.on('data', onData)
      })
      await expect
        .poll(async () => (await (await fetch(`${url}/healthz`)).json()).state, { timeout: 60_000 })
        .toBe('ready')
      const health = await (await fetch(`${url}/healthz`)).json()
      expect(health).toMatchObject({ backend: 'wasm', context_length: 64 })
      const answer = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: health.model,
          messages: [{ role: 'user', content: 'Hi' }],
          max_tokens: 3,
        }),
      })
      expect(answer.status, await answer.clone().text()).toBe(200)
      expect(output).toMatch(/on wasm, context 64\)/)
    } finally {
      child.kill('SIGTERM')
      await exited
    }
    const bad = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [ondeviceBin, 'serve', '--model', packageDir],
        { env: { ...process.env, MODEL_THREADS: '0' } },
        (error, _stdout, stderr) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stderr }),
      )
    })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain("MODEL_THREADS must be an integer from 1 to 64, got '0'.")
  }, 120_000)
})

describe('ondevice serve LOG_FORMAT=json', () => {
  // The request log is one JSON object a line; with LOG_FORMAT=json the start-up, shutdown and
  // failure lines are too, so a log collector reading both streams gets no plain-text line.
  const parsed = (output: string) =>
    output
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        let value: unknown
        expect(() => (value = JSON.parse(line)), `not one JSON object: ${line}`).not.toThrow()
        expect(value, line).toMatchObject({
          level: expect.any(String),
          message: expect.any(String),
          time: expect.any(String),
        })
        return value as { level: string; message: string; time: string; event?: string } & Record<
          string,
          unknown
        >
      })

  it('every line on stdout and stderr is one JSON object: bound, loaded, listening, the request, stopping', async () => {
    weights = 'serve'
    const server = serve('cache-json', { LOG_FORMAT: 'json', SHUTDOWN_TIMEOUT_MS: '1000' }, [
      '--model-id',
      'pkg',
    ])
    try {
      const url = await listening(server)
      const answer = await chat(url)
      expect(answer.status, await answer.clone().text()).toBe(200)
      await answer.text()
      server.child.kill('SIGTERM')
      expect(await server.exited).toBe(0)
      const lines = parsed(server.output())
      expect(lines.map((line) => line.event ?? line.message)).toEqual([
        'open-api',
        'bound',
        'loaded',
        'listening',
        'request',
        'stopping',
      ])
      // The same human sentence as the text format, and its parts as fields.
      const listen = lines.find((line) => line.event === 'listening')
      expect(listen).toMatchObject({ level: 'info', url, model: 'pkg' })
      expect(listen?.message).toBe(`Listening on ${url} (model pkg)`)
      expect(lines.find((line) => line.event === 'loaded')).toMatchObject({
        model: 'pkg',
        dtype: expect.any(String),
        backend: expect.any(String),
        contextLength: expect.any(Number),
      })
      expect(lines.find((line) => line.event === 'stopping')).toMatchObject({ graceMs: 1000 })
      expect(lines.find((line) => line.event === 'open-api')?.level).toBe('warn')
    } finally {
      await stop(server)
    }
  }, 120_000)

  it("a package's load warning (no manifest.json) is one JSON line, not also a plain 'ondevice:' line", async () => {
    // The store's own warning went to console.warn as text beside the load's JSON warning line:
    // the same sentence twice, once unparseable.
    const folder = join(workDir, 'no-manifest')
    await cp(packageDir, folder, { recursive: true })
    await rm(join(folder, 'manifest.json'))
    const server = serve('cache-json-no-manifest', { LOG_FORMAT: 'json' }, ['--model', folder])
    try {
      await listening(server)
      server.child.kill('SIGTERM')
      expect(await server.exited).toBe(0)
      const lines = parsed(server.output())
      const warnings = lines.filter((line) => line.message.includes('has no manifest.json'))
      expect(warnings).toHaveLength(1)
      expect(warnings[0]?.level).toBe('warn')
    } finally {
      await stop(server)
    }
  }, 120_000)

  it('a model that fails to load: exit code 1, the reason as a JSON error line', async () => {
    weights = 'missing'
    const server = serve('cache-json-missing', { LOG_FORMAT: 'json' })
    try {
      expect(await server.exited).toBe(1)
      const lines = parsed(server.output())
      const last = lines.at(-1)
      expect(last).toMatchObject({ level: 'error', event: 'failed', code: 'edge_unavailable' })
      expect(last?.message).toMatch(/The model could not be loaded on this server: .*onnx\//)
    } finally {
      await stop(server)
    }
  }, 120_000)

  it('an unknown flag under LOG_FORMAT=json is refused as one JSON line too (exit code 2)', async () => {
    // The flags' own refusal was the one plain-text line left ("Unknown option ... Run ... --help").
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [ondeviceBin, 'serve', '--port', '0', '--bogus'],
        { env: { ...process.env, LOG_FORMAT: 'json' }, timeout: 30_000 },
        (error, _stdout, stderr) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stderr }),
      )
    })
    expect(result.code).toBe(2)
    const [line, ...rest] = parsed(result.stderr)
    expect(rest).toEqual([])
    expect(line).toMatchObject({ level: 'error', event: 'failed', code: 'invalid_argument' })
    expect(line?.message).toMatch(/Unknown option '--bogus'.*ondevice serve --help/)
  }, 60_000)

  it('LOG_FORMAT other than text or json is named and refused (exit code 2)', async () => {
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [ondeviceBin, 'serve', '--port', '0'],
        // Without the check the server would start and run: the timeout ends it.
        { env: { ...process.env, LOG_FORMAT: 'JSONL' }, timeout: 30_000 },
        (error, _stdout, stderr) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stderr }),
      )
    })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain("LOG_FORMAT must be text (the default) or json, got 'JSONL'.")
  }, 60_000)
})
