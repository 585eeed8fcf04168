// The edge at any size: the repository's Dockerfile built on this machine's Docker (on a base made
// from Debian packages, no registry), `ondevice serve` in it with a package mounted, and the
// Worker under `wrangler dev` (EDGE_RUNTIME = "container") forwarding to it: the same answers as
// `ondevice serve` run directly, token for token; handoff into it; only the Worker's secret gets
// in; a container killed mid-answer gives a retryable error and the next request is answered by
// its restarted instance; a conversation's turns stay on one instance; a short load loses and
// mixes nothing. Two containers on 127.0.0.1 stand for two Cloudflare Container instances.
// Docker is required: without it every test here fails, saying how to fix it.
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRuntimeDeviceHost } from '../../client-runtime/device-host/index.ts'
import { loadPackageTokenizer } from '../../client-runtime/package-tokenizer.ts'
import { createNodeStore } from '../../client-runtime/store/node-store.ts'
import type { ChatMessage } from '../../core/chat-template.ts'
import { createClient } from '../../sdk/client.ts'
import {
  buildEdgeImage,
  type EdgeContainer,
  localBaseImage,
  runEdgeContainer,
} from '../../tools/docker/edge-container.ts'
import {
  freePort,
  type LocalServer,
  offlineWranglerEnv,
  repositoryRoot,
  startWranglerDev,
  wranglerCliPath,
} from '../../tools/wrangler-dev.ts'
import { type Faults, withFaults } from '../sdk/test-device-host.ts'
import { writeWorkerConfig } from '../workerd/worker-config.ts'

const execute = promisify(execFile)
// A tag of this run's own: engineers and CI jobs sharing one Docker daemon build from their own
// trees, and a shared tag could start one run's containers from another's image.
const image = `ondevice-edge:test-${process.pid}`
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
  readonly usage?: {
    backend?: string
    dtype?: string
    prompt_tokens?: number
    prompt_tokens_details?: { cached_tokens: number }
  }
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
  // native (onnxruntime-node) answers by default; ondevice's engine answers what names it (a
  // handoff from a device on the engine), loaded on its first such request.
  const environment = {
    API_KEYS: secret,
    MODEL_ID: modelId,
    MAX_CONCURRENT: '2',
    MAX_QUEUE: '2',
    MODEL_BACKEND: 'native,wasm',
  }
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
  // The tag only: its layers stay cached for the next build.
  await execute('docker', ['rmi', '--no-prune', image]).catch(() => undefined)
  if (directory) await rm(directory, { recursive: true, force: true })
})

describe('the edge in a container behind the Worker', () => {
  it('lists the model and answers JSON and SSE exactly as ondevice serve does directly', async () => {
    const base = worker?.url ?? ''
    const models = (await (
      await fetch(`${base}/v1/models`, { headers: { authorization: `Bearer ${clientKey}` } })
    ).json()) as { data: { id: string }[] }
    expect(models.data.map((entry) => entry.id)).toEqual([modelId])
    // /healthz (no key) reports the containers, not the Worker isolate's model (it loads none).
    const health = await fetch(`${base}/healthz`)
    expect(health.status).toBe(200)
    expect(await health.json()).toMatchObject({
      status: 'ok',
      runtime: 'container',
      model: modelId,
      loaded: true,
      state: 'ready',
      backend: 'native',
      dtype: 'q4',
      generations: { active: 0, queued: 0, max_concurrent: 4 },
      instances: [
        { name: 'instance-0', state: 'ready', backend: 'native' },
        { name: 'instance-1', state: 'ready', backend: 'native' },
      ],
    })
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

  it("a device on ondevice's engine fails at token k: the container on the engine continues it, identical at temperature 1 with a seed", async () => {
    const base = worker?.url ?? ''
    // Each container loads the engine on the first request that names it: warm every instance
    // here, so the SDK's 15 s connect timeout below measures routing, not a model load on a busy
    // 2-core machine (the handoff may land on either instance).
    for (const container of containers) {
      await complete(container.url, body('Hi.', { ondevice_format: { dtype: 'q4', backend: 'wasm' } }), {
        authorization: `Bearer ${secret}`,
      })
    }
    // The Worker passes on what the container ran.
    const named = await complete(
      base,
      body('Hello there.', { ondevice_format: { dtype: 'q4', backend: 'wasm' } }),
    )
    expect(named.headers.get('x-ondevice-backend')).toBe('wasm')
    expect(named.headers.get('x-ondevice-dtype')).toBe('q4')
    expect(named.completion.usage).toMatchObject({ backend: 'wasm', dtype: 'q4' })
    const request = {
      messages: [{ role: 'user' as const, content: 'Tell me about the sea.' }],
      temperature: 1,
      seed: 5,
      maxTokens: 16,
    }
    const deviceClient = (faults: Faults) =>
      createClient(
        {
          model: packageDir,
          backend: 'wasm',
          edge: { url: base, apiKey: clientKey },
          // A 2-core CI box runs this tiny fixture slowly; the probe must not send it to the edge.
          thresholds: { minDeviceTokensPerSecond: 1 },
        },
        {
          deviceHost: createRuntimeDeviceHost({
            store: createNodeStore({ cacheDir: join(directory, 'device-cache') }),
            wrapSession: (session) => withFaults(session, faults),
          }),
        },
      )
    const device = deviceClient({})
    const reference = await device.chat(request)
    await device.dispose()
    expect(reference.usage).toMatchObject({
      route: 'device',
      backend: 'wasm',
      dtype: 'q4',
      completionTokens: 16,
    })
    for (const k of [1, 6, 12]) {
      const client = deviceClient({ failAtToken: k })
      const result = await client.chat(request)
      await client.dispose()
      expect(result.handoff?.completedTokens, `k=${k}`).toBe(k)
      expect(result.usage, `k=${k}`).toMatchObject({
        route: 'device+edge',
        backend: 'wasm+wasm',
        dtype: 'q4',
      })
      expect(result.tokenIds, `k=${k}`).toEqual(reference.tokenIds)
      expect(result.text, `k=${k}`).toBe(reference.text)
    }
  }, 180_000)

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

  it("keeps a conversation on one instance, whose second and third turns reuse the earlier turns' tokens", async () => {
    const conversation = { 'x-ondevice-affinity': 'conversation-42' }
    const tokenizer = await loadPackageTokenizer({
      readText: (path) => readFile(join(packageDir, path), 'utf8'),
      readBytes: async (path) => new Uint8Array(await readFile(join(packageDir, path))),
      exists: (path) =>
        access(join(packageDir, path)).then(
          () => true,
          () => false,
        ),
    })
    // What a turn shares with the next: its messages, up to the cut where its answer starts (the
    // turn boundary where Qwen3.5 keeps its recurrent state; the answer itself is re-rendered).
    const history = (messages: ChatMessage[]) =>
      tokenizer.encodeChat(messages, { addGenerationPrompt: false }).length
    const turns: ChatMessage[] = [{ role: 'user', content: 'First turn.' }]
    const first = await complete(worker?.url ?? '', { ...body(''), messages: turns }, conversation)
    const instance = first.headers.get('x-ondevice-instance')
    expect(first.completion.usage?.prompt_tokens_details).toEqual({ cached_tokens: 0 })
    const index = Number(instance?.slice('instance-'.length))
    const container = containers[index] as EdgeContainer
    const answered = async () =>
      ((await container.logs()).match(/"path":"\/v1\/chat\/completions","status":200/g) ?? []).length
    const before = await answered()
    // Turn 2 streamed: the final usage chunk comes through the Worker as the container sent it.
    const reused = history(turns)
    turns.push(
      { role: 'assistant', content: first.completion.choices[0]?.message.content ?? '' },
      { role: 'user', content: 'Second turn.' },
    )
    const streamed = await post(
      worker?.url ?? '',
      { ...body(''), messages: turns, stream: true, stream_options: { include_usage: true } },
      conversation,
    )
    expect(streamed.headers.get('x-ondevice-instance')).toBe(instance)
    const parsed = events(await streamed.text())
    const usage = (parsed.at(-2) as { usage: Completion['usage'] }).usage
    expect(reused).toBeGreaterThan(5)
    expect(usage?.prompt_tokens_details).toEqual({ cached_tokens: reused })
    expect(usage?.prompt_tokens).toBeGreaterThan(reused)
    // Turn 3 as JSON: it reuses turns 1 and 2.
    const reusedAgain = history(turns)
    turns.push({ role: 'assistant', content: streamedText(parsed) }, { role: 'user', content: 'Third turn.' })
    const third = await complete(worker?.url ?? '', { ...body(''), messages: turns }, conversation)
    expect(third.headers.get('x-ondevice-instance')).toBe(instance)
    expect(third.completion.usage?.prompt_tokens_details).toEqual({ cached_tokens: reusedAgain })
    // The same answer as a cold run of the whole conversation (ondevice serve, never saw it).
    const cold = (await complete(direct?.url ?? '', { ...body(''), messages: turns })).completion
    expect(cold.usage?.prompt_tokens_details).toEqual({ cached_tokens: 0 })
    expect(third.completion.ondevice?.token_ids).toEqual(cold.ondevice?.token_ids)
    expect(await answered()).toBe(before + 2)
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

  it('docker stop with a stream open: the answer ends with [DONE] and the container exits 0 (it was cut, and SIGTERM during the load was ignored by PID 1)', async () => {
    const container = await runEdgeContainer({
      image,
      modelDir: packageDir,
      env: { API_KEYS: secret, MODEL_ID: modelId },
    })
    try {
      const response = await post(container.url, body('Go on.', { stream: true, max_tokens: 96 }), {
        authorization: `Bearer ${secret}`,
      })
      expect(response.status).toBe(200)
      const reader = (response.body as ReadableStream<Uint8Array>).getReader()
      const decoder = new TextDecoder()
      let text = decoder.decode((await reader.read()).value)
      const rest = (async () => {
        for (;;) {
          const next = await reader.read()
          if (next.done) return
          text += decoder.decode(next.value, { stream: true })
        }
      })()
      await execute('docker', ['stop', container.id], { timeout: 60_000 })
      await rest
      expect(text).toContain('data: [DONE]')
      const state = await execute('docker', ['inspect', '-f', '{{.State.ExitCode}}', container.id])
      expect(state.stdout.trim()).toBe('0')
      expect(await container.logs()).toMatch(/Stopping: running requests have up to 8000 ms/)
    } finally {
      await container.stop()
    }
  }, 180_000)

  it('under 16 streaming clients for 30 s loses and mixes nothing, refuses with Retry-After when full, and ends idle', async () => {
    // Two instances x (2 slots + 2 queued) hold 8 requests: the other clients are refused and retry.
    const prompts = ['Alpha.', 'Bravo.', 'Charlie.', 'Delta.', 'Echo.', 'Foxtrot.', 'Golf.', 'Hotel.']
    const expected = new Map<string, { text: string; tokenIds: number[] }>()
    for (const prompt of prompts) {
      const { completion } = await complete(direct?.url ?? '', body(prompt))
      expected.set(prompt, {
        text: completion.choices[0]?.message.content ?? '',
        tokenIds: completion.ondevice?.token_ids ?? [],
      })
    }
    // Every answer must differ from every other one, or a mixed-up answer could pass as right.
    expect(new Set([...expected.values()].map((answer) => answer.tokenIds.join())).size).toBe(prompts.length)
    const clients = 16
    const deadline = Date.now() + 30_000
    const outcomes = { sent: 0, answered: 0, refused: 0, refusedWithout: 0 }
    const refusals = new Map<number, number>()
    const started = Date.now()
    await Promise.all(
      Array.from({ length: clients }, async (_, client) => {
        for (let turn = 0; Date.now() < deadline; turn++) {
          const prompt = prompts[(client + turn) % prompts.length] as string
          outcomes.sent++
          const response = await post(worker?.url ?? '', body(prompt, { stream: true }))
          if (response.status === 429 || response.status === 503) {
            refusals.set(response.status, (refusals.get(response.status) ?? 0) + 1)
            const retryAfter = Number(response.headers.get('retry-after'))
            const error = ((await response.json()) as { error?: { code?: string } }).error
            if (!(retryAfter > 0) || typeof error?.code !== 'string') outcomes.refusedWithout++
            outcomes.refused++
            await new Promise((resolve) => setTimeout(resolve, 200))
            continue
          }
          expect(response.status, `client ${client}`).toBe(200)
          const parsed = events(await response.text())
          expect(parsed.at(-1), `client ${client}`).toBe('[DONE]')
          const tokenIds = parsed.flatMap(
            (event) =>
              (event as { choices?: { delta?: { token_ids?: number[] } }[] }).choices?.[0]?.delta
                ?.token_ids ?? [],
          )
          expect(tokenIds, `client ${client}, ${prompt}`).toEqual(expected.get(prompt)?.tokenIds)
          expect(streamedText(parsed), `client ${client}, ${prompt}`).toBe(expected.get(prompt)?.text)
          outcomes.answered++
        }
      }),
    )
    const seconds = (Date.now() - started) / 1000
    figures['load answers/s (16 clients, 2 instances x 2 slots)'] =
      Math.round((outcomes.answered / seconds) * 10) / 10
    figures['load refused (429 / 503)'] = outcomes.refused
    // Nothing lost: every request was answered in full or refused in OpenAI's shape with Retry-After.
    expect(outcomes.answered + outcomes.refused).toBe(outcomes.sent)
    expect(outcomes.refusedWithout).toBe(0)
    expect(outcomes.answered).toBeGreaterThan(clients)
    // 16 clients over 8 places: the full instances said so.
    expect(outcomes.refused).toBeGreaterThan(0)
    // Nothing left running: both instances are idle once the clients are done.
    // (Polled briefly: a slot is given back just after the answer's last byte is sent.)
    for (const container of containers) {
      const generations = async () =>
        (
          (await (await fetch(`${container.url}/healthz`)).json()) as {
            generations: { active: number; queued: number }
          }
        ).generations
      for (let tries = 0; tries < 50 && (await generations()).active > 0; tries++)
        await new Promise((resolve) => setTimeout(resolve, 100))
      expect(await generations()).toMatchObject({ active: 0, queued: 0 })
    }
  }, 180_000)

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
    // Ours by id: another run on this Docker daemon may run the same image (the same tree).
    expect(await execute('docker', ['ps', '--quiet', '--no-trunc']).then(({ stdout }) => stdout)).not.toMatch(
      new RegExp(containers.map((container) => container.id).join('|')),
    )
  })
})
