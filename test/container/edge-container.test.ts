// The edge at any size: the repository's Dockerfile built on this machine's Docker (on a base made
// from Debian packages, no registry), `ondevice serve` in it with a package mounted, and the
// Worker under `wrangler dev` (EDGE_RUNTIME = "container") forwarding to it: the same answers as
// `ondevice serve` run directly, token for token; handoff into it; only the Worker's secret gets
// in; a container killed mid-answer gives a retryable error and the next request is answered by
// its restarted instance; a conversation's turns stay on one instance; a short load loses and
// mixes nothing. Two containers on 127.0.0.1 stand for two Cloudflare Container instances.
// Docker is required: without it every test here fails, saying how to fix it.
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  buildEdgeImage,
  type EdgeContainer,
  localBaseImage,
  runEdgeContainer,
  runningContainers,
} from '../../tools/docker/edge-container.ts'
import {
  freePort,
  type LocalServer,
  offlineWranglerEnv,
  repositoryRoot,
  startWranglerDev,
  wranglerCliPath,
} from '../../tools/wrangler-dev.ts'
import { writeWorkerConfig } from '../workerd/worker-config.ts'

const execute = promisify(execFile)
const image = 'ondevice-edge:test'
const modelId = 'tiny-qwen3-5'
const secret = `container-secret-${'0123456789abcdef'.repeat(2)}`
const clientKey = 'client-key-0123456789abcdef'
const cli = join(repositoryRoot, 'cli/bin.js')

let directory: string
let packageDir: string
const containers: EdgeContainer[] = []
let direct: { url: string; child: ChildProcess; output: () => string } | undefined
let worker: LocalServer | undefined
const figures: Record<string, number> = {}

interface Completion {
  readonly choices: { message: { content: string }; finish_reason: string }[]
  readonly ondevice?: { token_ids: number[] }
  readonly usage?: { backend?: string; dtype?: string }
}

function body(content: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: modelId, messages: [{ role: 'user', content }], max_tokens: 12, temperature: 0, ...extra }
}

async function post(
  base: string,
  payload: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${clientKey}`, ...headers },
    body: JSON.stringify(payload),
  })
}

async function complete(
  base: string,
  payload: Record<string, unknown>,
  headers: Record<string, string> = {},
) {
  const response = await post(base, payload, headers)
  const text = await response.text()
  expect(response.status, text).toBe(200)
  return { completion: JSON.parse(text) as Completion, headers: response.headers }
}

/** The data lines of an SSE answer, parsed ([DONE] as the string). */
function events(text: string): unknown[] {
  return text
    .split('\n\n')
    .map((event) => event.trim())
    .filter((event) => event.startsWith('data: '))
    .map((event) => event.slice(6))
    .map((data) => (data === '[DONE]' ? data : (JSON.parse(data) as unknown)))
}

function streamedText(parsed: unknown[]): string {
  let text = ''
  for (const event of parsed) {
    const delta = (event as { choices?: { delta?: { content?: string } }[] }).choices?.[0]?.delta?.content
    if (typeof delta === 'string') text += delta
  }
  return text
}

async function startServeDirectly(): Promise<{ url: string; child: ChildProcess; output: () => string }> {
  const port = await freePort()
  const child = spawn(
    process.execPath,
    [cli, 'serve', '--model', packageDir, '--model-id', modelId, '--port', String(port)],
    {
      env: { ...process.env, API_KEYS: clientKey },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const url = `http://127.0.0.1:${port}`
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (output.includes('Listening on')) {
        clearInterval(timer)
        resolve()
      } else if (child.exitCode !== null) {
        clearInterval(timer)
        reject(new Error(`ondevice serve exited:\n${output}`))
      }
    }, 100)
  })
  return { url, child, output: () => output }
}

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'ondevice-container-'))
  packageDir = join(directory, 'package')
  await execute(
    process.execPath,
    [cli, 'fixture', '--arch', 'qwen3_5', '--dtype', 'q4', '--out', packageDir],
    {
      timeout: 120_000,
    },
  )
  // The image first (base once per machine, then cached layers): its figures go in the report.
  const built = await buildEdgeImage({ tag: image })
  figures['image build s'] = Math.round(built.buildMs / 100) / 10
  figures['image MB'] = Math.round(built.sizeBytes / 1e6)
  const environment = { API_KEYS: secret, MODEL_ID: modelId, MAX_CONCURRENT: '2', MAX_QUEUE: '2' }
  const [first, second, served] = await Promise.all([
    runEdgeContainer({ image, modelDir: packageDir, env: environment }),
    runEdgeContainer({ image, modelDir: packageDir, env: environment }),
    startServeDirectly(),
  ])
  containers.push(first, second)
  direct = served
  figures['docker run -> /healthz 200 ms'] = first.startMs
  const configPath = await writeWorkerConfig({
    directory,
    assetsDirectory: packageDir,
    vars: {
      EDGE_RUNTIME: 'container',
      CONTAINER_URLS: containers.map((container) => container.url).join(','),
      CONTAINER_START_TIMEOUT_MS: '60000',
      MODEL_ID: modelId,
    },
  })
  // Secrets as wrangler reads them locally (never printed with the bindings, unlike vars).
  await writeFile(join(directory, '.dev.vars'), `CONTAINER_SECRET=${secret}\nAPI_KEYS=${clientKey}\n`)
  worker = await startWranglerDev({
    configPath,
    stateDir: join(directory, 'state'),
    keepOutputChars: 200_000,
  })
}, 900_000)

afterAll(async () => {
  console.log(`edge container figures: ${JSON.stringify(figures)}`)
  await worker?.stop()
  if (direct && direct.child.exitCode === null) direct.child.kill('SIGTERM')
  await Promise.all(containers.map((container) => container.stop()))
  if (directory) await rm(directory, { recursive: true, force: true })
})

describe('the edge in a container behind the Worker', () => {
  it('lists the model and answers JSON and SSE exactly as ondevice serve does directly', async () => {
    const base = worker?.url ?? ''
    const models = (await (
      await fetch(`${base}/v1/models`, { headers: { authorization: `Bearer ${clientKey}` } })
    ).json()) as { data: { id: string }[] }
    expect(models.data.map((entry) => entry.id)).toEqual([modelId])
    for (const prompt of ['Hello there.', 'Tell me about the sea.']) {
      const reference = (await complete(direct?.url ?? '', body(prompt))).completion
      const forwarded = await complete(base, body(prompt))
      expect(forwarded.completion.ondevice?.token_ids).toEqual(reference.ondevice?.token_ids)
      expect(forwarded.completion.choices[0]?.message.content).toBe(reference.choices[0]?.message.content)
      expect(forwarded.completion.usage?.backend).toBe('native')
      expect(forwarded.headers.get('x-ondevice-instance')).toMatch(/^instance-[01]$/)
      const streamed = await post(
        base,
        body(prompt, { stream: true, stream_options: { include_usage: true } }),
      )
      expect(streamed.headers.get('content-type')).toMatch(/^text\/event-stream/)
      const parsed = events(await streamed.text())
      expect(parsed.at(-1)).toBe('[DONE]')
      expect(streamedText(parsed)).toBe(reference.choices[0]?.message.content)
    }
  })

  it('continues a handoff at k = 1 and a later k as the uninterrupted answer', async () => {
    for (const sampling of [{ temperature: 0 }, { temperature: 1, top_k: 50, seed: 7 }]) {
      const whole = (await complete(worker?.url ?? '', body('Count with me.', sampling))).completion
      const ids = whole.ondevice?.token_ids ?? []
      expect(ids).toHaveLength(12)
      for (const k of [1, 7]) {
        const rest = (
          await complete(
            worker?.url ?? '',
            body('Count with me.', {
              ...sampling,
              max_tokens: 12 - k,
              ondevice_continuation: { token_ids: ids.slice(0, k), step: k },
            }),
          )
        ).completion
        expect([...ids.slice(0, k), ...(rest.ondevice?.token_ids ?? [])], `k=${k}`).toEqual(ids)
      }
    }
  })

  it('lets only the Worker in: a request without its secret straight to a container gets 401, the key never logged', async () => {
    const container = containers[0] as EdgeContainer
    const refused = await fetch(`${container.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${clientKey}` },
      body: JSON.stringify(body('hi')),
    })
    expect(refused.status).toBe(401)
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('unauthorized')
    const logs = await container.logs()
    expect(logs).toMatch(/"status":401/)
    expect(logs).not.toContain(secret)
    expect(logs).not.toContain(clientKey)
    expect(worker?.output()).not.toContain(secret)
    // The Worker's own key check stays in front.
    const noKey = await fetch(`${worker?.url}/v1/chat/completions`, { method: 'POST', body: '{}' })
    expect(noKey.status).toBe(401)
    await noKey.body?.cancel()
  })

  it('keeps a conversation on one instance', async () => {
    const conversation = { 'x-ondevice-affinity': 'conversation-42' }
    const first = await complete(worker?.url ?? '', body('First turn.'), conversation)
    const instance = first.headers.get('x-ondevice-instance')
    const index = Number(instance?.slice('instance-'.length))
    const container = containers[index] as EdgeContainer
    const before = ((await container.logs()).match(/"path":"\/v1\/chat\/completions","status":200/g) ?? [])
      .length
    const second = await complete(
      worker?.url ?? '',
      {
        ...body('First turn.'),
        messages: [
          { role: 'user', content: 'First turn.' },
          { role: 'assistant', content: first.completion.choices[0]?.message.content },
          { role: 'user', content: 'Second turn.' },
        ],
      },
      conversation,
    )
    expect(second.headers.get('x-ondevice-instance')).toBe(instance)
    const after = ((await container.logs()).match(/"path":"\/v1\/chat\/completions","status":200/g) ?? [])
      .length
    expect(after).toBe(before + 1)
  })

  it("stops the container's generation and frees its slot when the client disconnects", async () => {
    const conversation = { 'x-ondevice-affinity': 'hang-up' }
    const controller = new AbortController()
    const response = await fetch(`${worker?.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${clientKey}`, ...conversation },
      body: JSON.stringify(body('Go on and on.', { stream: true, max_tokens: 2000 })),
      signal: controller.signal,
    })
    const container = containers[
      Number(response.headers.get('x-ondevice-instance')?.slice(9))
    ] as EdgeContainer
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    await reader.read()
    const active = async () =>
      ((await (await fetch(`${container.url}/healthz`)).json()) as { generations: { active: number } })
        .generations.active
    expect(await active()).toBe(1)
    controller.abort()
    // Polled, not timed: the slot frees once the container sees its connection close.
    while ((await active()) !== 0) await new Promise((resolve) => setTimeout(resolve, 100))
    const logs = await container.logs()
    expect(logs).toMatch(/"path":"\/v1\/chat\/completions","status":499,.*"errorCode":"aborted"/)
  })

  it('gives a retryable error when the container dies mid-answer, then answers from a new instance', async () => {
    const conversation = { 'x-ondevice-affinity': 'crash-test' }
    const probe = await complete(worker?.url ?? '', body('Probe.', { max_tokens: 1 }), conversation)
    const container = containers[Number(probe.headers.get('x-ondevice-instance')?.slice(9))] as EdgeContainer
    const restartsBefore = await container.restartCount()
    const response = await post(
      worker?.url ?? '',
      body('Go on and on.', { stream: true, max_tokens: 2000 }),
      conversation,
    )
    expect(response.status).toBe(200)
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    const first = await reader.read()
    expect(new TextDecoder().decode(first.value)).toMatch(/^data: /)
    // A crash, not a stop: the server process is killed, and Docker's restart policy brings up a
    // new one (what Cloudflare does for an instance on its next request).
    process.kill(await container.serverPid(), 'SIGKILL')
    let rest = ''
    for (;;) {
      const next = await reader.read()
      if (next.done) break
      rest += new TextDecoder().decode(next.value)
    }
    const last = events(rest).at(-1) as { error?: { code: string; type: string } }
    expect(last.error?.code).toBe('edge_unavailable')
    const again = await complete(worker?.url ?? '', body('After the crash.'), conversation)
    expect(again.completion.choices[0]?.finish_reason).toBe('length')
    expect(await container.restartCount()).toBe(restartsBefore + 1)
  }, 180_000)

  it('under 8 streaming clients for 10 s loses and mixes nothing, refuses with Retry-After when full', async () => {
    const prompts = ['Alpha.', 'Bravo.', 'Charlie.', 'Delta.']
    const expected = new Map<string, string>()
    for (const prompt of prompts)
      expected.set(
        prompt,
        (await complete(direct?.url ?? '', body(prompt))).completion.choices[0]?.message.content ?? '',
      )
    const deadline = Date.now() + 10_000
    const outcomes = { answered: 0, refused: 0 }
    const started = Date.now()
    await Promise.all(
      Array.from({ length: 8 }, async (_, client) => {
        for (let turn = 0; Date.now() < deadline; turn++) {
          const prompt = prompts[(client + turn) % prompts.length] as string
          const response = await post(worker?.url ?? '', body(prompt, { stream: true }))
          if (response.status === 429 || response.status === 503) {
            expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0)
            await response.body?.cancel()
            outcomes.refused++
            await new Promise((resolve) => setTimeout(resolve, 200))
            continue
          }
          expect(response.status).toBe(200)
          const parsed = events(await response.text())
          expect(parsed.at(-1)).toBe('[DONE]')
          expect(streamedText(parsed)).toBe(expected.get(prompt))
          outcomes.answered++
        }
      }),
    )
    figures['load answers/s (8 clients, 2 instances x 2 slots)'] =
      Math.round((outcomes.answered / ((Date.now() - started) / 1000)) * 10) / 10
    figures['load refused'] = outcomes.refused
    expect(outcomes.answered).toBeGreaterThan(0)
  }, 120_000)

  it('passes wrangler deploy --dry-run with the [[containers]] config, building the image from the Dockerfile', async () => {
    // The repository's wrangler.toml as is, but built on the registry-free base and with
    // Docker's legacy builder (tools/docker/legacy-build.sh drops BuildKit-only flags).
    const config = (await readFile(join(repositoryRoot, 'wrangler.toml'), 'utf8')).replace(
      /^image = "\.\/Dockerfile"$/m,
      `image = "./Dockerfile"\nimage_vars = { BASE = "${localBaseImage}" }`,
    )
    expect(config).toContain('image_vars')
    const configPath = join(repositoryRoot, `wrangler.dry-run-${process.pid}.toml`)
    await writeFile(configPath, config)
    try {
      const { stdout, stderr } = await execute(
        process.execPath,
        [wranglerCliPath(), 'deploy', '--dry-run', '-c', configPath, '--outdir', join(directory, 'dry-run')],
        {
          cwd: repositoryRoot,
          env: {
            ...process.env,
            ...offlineWranglerEnv,
            WRANGLER_DOCKER_BIN: join(repositoryRoot, 'tools/docker/legacy-build.sh'),
          },
          timeout: 600_000,
          maxBuffer: 64 * 1024 * 1024,
        },
      )
      const output = stdout + stderr
      expect(output).toMatch(/env\.ONDEVICE_CONTAINER \(OndeviceContainer\)\s+Durable Object/)
      expect(output).toMatch(/ondevice-edge-ondevicecontainer \(.*Dockerfile\)/)
      expect(output).toContain('--dry-run: exiting now.')
    } finally {
      await rm(configPath, { force: true })
    }
  }, 600_000)

  it('leaves nothing running once stopped', async () => {
    await Promise.all(containers.map((container) => container.stop()))
    expect(await runningContainers(image)).toEqual([])
  })
})
