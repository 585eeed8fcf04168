// A cold container as the clients see it, on the production path: the Worker under `wrangler dev`
// with its [[containers]] entry, each chat going Worker -> OndeviceContainer Durable Object ->
// Docker -> `ondevice serve --bind-after-load` (the same setup as durable-object.test.ts, whose
// header says which two pieces of Cloudflare's local tooling are stood in for). A cold start
// sends no response header until the container's model is loaded, so:
//   - the SDK, which gives up on an edge whose headers take longer than edge.connectTimeoutMs,
//     tells the Worker so (`Prefer: wait=N`, RFC 7240) and gets a retryable 503 `edge_starting`
//     with Retry-After within that time, which its error, its route reason and status().edge name;
//   - a client that says nothing (an OpenAI client) is held until the model is loaded, up to
//     CONTAINER_START_TIMEOUT_MS, and gets its answer.
// The tiny fixture starts in 1.5-4 s here, too fast to be caught cold every time, so the test
// image holds Node's start for startDelayMs (a --require in NODE_OPTIONS): a model of real size
// takes longer (Qwen3.5-0.8B's size in q4, COLD_START_SIZE=0.8b: 10.6 s and 14.6 s here, against
// the SDK's default connectTimeoutMs of 15 s). The SDK's connect timeout is shorter than the start.
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRuntimeDeviceHost } from '../../client-runtime/device-host/index.ts'
import { createNodeStore } from '../../client-runtime/store/node-store.ts'
import type { OndeviceError } from '../../core/errors.ts'
import { createClient } from '../../sdk/client.ts'
import { buildEdgeImage } from '../../tools/docker/edge-container.ts'
import { type LocalServer, repositoryRoot, startWranglerDev } from '../../tools/wrangler-dev.ts'
import {
  buildSidecarImage,
  docker,
  keyFor,
  requireContainerDocker,
  wranglerDevImages,
  writeContainerWorkerConfig,
} from './container-worker.ts'

const execute = promisify(execFile)
const edgeImage = `ondevice-edge:test-cold-${process.pid}`
const sidecarImage = `ondevice-sidecar-stand-in:test-cold-${process.pid}`
const workerName = `ondevice-cold-test-${process.pid}`
const modelId = 'tiny-qwen3-5'
const secret = `container-secret-${'0123456789abcdef'.repeat(2)}`
const clientKey = 'client-key-0123456789abcdef'
/** How long the test image holds Node before `ondevice serve` starts (COLD_START_DELAY_MS). */
const startDelayMs = Number(process.env['COLD_START_DELAY_MS'] ?? 10_000)
/** Below the start (COLD_START_CONNECT_TIMEOUT_MS; the SDK's default is 15 s). */
const connectTimeoutMs = Number(process.env['COLD_START_CONNECT_TIMEOUT_MS'] ?? 3000)
/** The package's size: tiny, or 0.8b (COLD_START_SIZE). */
const packageSize = process.env['COLD_START_SIZE'] ?? 'tiny'

let directory: string
let packageDir: string
let worker: LocalServer | undefined
let imagesBefore: Set<string>
const figures: Record<string, number | string> = {}

async function workerContainers(): Promise<string[]> {
  const names = await docker(['ps', '-a', '--filter', `name=${workerName}`, '--format', '{{.Names}}'])
  return names === '' ? [] : names.split('\n')
}

async function instanceStates(): Promise<string[]> {
  const response = await fetch(`${worker?.url}/healthz`)
  const body = (await response.json()) as { instances?: { state: string }[] }
  return body.instances?.map((instance) => instance.state) ?? []
}

const seconds = (milliseconds: number): number => Math.round(milliseconds / 100) / 10

beforeAll(async () => {
  await requireContainerDocker()
  directory = await mkdtemp(join(tmpdir(), 'ondevice-cold-start-'))
  packageDir = join(directory, 'image', 'package')
  const cli = join(repositoryRoot, 'cli/bin.js')
  await execute(
    process.execPath,
    [cli, 'fixture', '--arch', 'qwen3_5', '--size', packageSize, '--dtype', 'q4', '--out', packageDir],
    { timeout: 600_000 },
  )
  await buildEdgeImage({ tag: edgeImage })
  // Node's start held for startDelayMs: a slower start, everything else as it is.
  await writeFile(
    join(directory, 'image', 'slow-start.cjs'),
    `Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${startDelayMs})\n`,
  )
  await writeFile(
    join(directory, 'image', 'Dockerfile'),
    `FROM ${edgeImage}\nCOPY package /model\nCOPY slow-start.cjs /slow-start.cjs\nENV NODE_OPTIONS="--require /slow-start.cjs"\n`,
  )
  await buildSidecarImage(directory, sidecarImage)
  imagesBefore = await wranglerDevImages()
  const configPath = await writeContainerWorkerConfig({
    directory,
    workerName,
    sidecarImage,
    secret,
    clientKey,
    vars: {
      // The default start bound (60 s) is what a client that says nothing waits at most.
      MODEL_ID: modelId,
    },
  })
  worker = await startWranglerDev({
    configPath,
    stateDir: join(directory, 'state'),
    enableContainers: true,
    timeoutMs: 300_000,
    keepOutputChars: 100_000,
  })
  expect(await instanceStates()).toEqual(['asleep', 'asleep'])
}, 600_000)

afterAll(async () => {
  console.log(`cold start figures: ${JSON.stringify(figures)}`)
  await worker?.stop()
  const left = await workerContainers().catch(() => [])
  if (left.length > 0) await docker(['rm', '--force', ...left]).catch(() => undefined)
  const added = [...(await wranglerDevImages().catch(() => new Set<string>()))].filter(
    (tag) => !imagesBefore?.has(tag),
  )
  if (added.length > 0) await docker(['rmi', ...added]).catch(() => undefined)
  await docker(['rmi', '--no-prune', edgeImage, sidecarImage]).catch(() => undefined)
  if (directory) await rm(directory, { recursive: true, force: true })
})

describe('a cold container, as the SDK and an OpenAI client see it', () => {
  it('the SDK gets a retryable edge_starting within its connect timeout, answers on the device meanwhile with a route reason that says so, and from the edge once it is up', async () => {
    const key = keyFor(0, 'sdk')
    const edge = {
      url: worker?.url ?? '',
      apiKey: clientKey,
      model: modelId,
      connectTimeoutMs,
      headers: { 'x-ondevice-affinity': key },
    }
    const request = { messages: [{ role: 'user' as const, content: 'Hello there.' }], maxTokens: 4 }
    // Edge-only: the error itself.
    const edgeOnly = createClient({ policy: 'edge-only', edge })
    const startedAt = performance.now()
    const error = (await edgeOnly.chat(request).then(
      () => undefined,
      (caught: unknown) => caught,
    )) as OndeviceError | undefined
    figures['SDK edge-only refused after s'] = seconds(performance.now() - startedAt)
    figures['SDK edge-only error'] = `${error?.code}: ${error?.message}`
    await edgeOnly.dispose()
    expect(error, 'the cold instance answered within the connect timeout').toBeDefined()
    expect(error?.code).toBe('edge_starting')
    expect(error?.isRetryable).toBe(true)
    expect(error?.message).toMatch(/The edge is starting/)
    expect(error?.message).not.toMatch(/Could not reach|edge\.url/i)
    expect(error?.retryAfterSeconds).toBeGreaterThanOrEqual(1)
    // Prefer-edge with the package on the device: the device answers while the edge starts.
    const client = createClient(
      {
        policy: 'prefer-edge',
        model: packageDir,
        backend: 'wasm',
        edge,
        // A 2-core box runs even this tiny fixture slowly; the probe must not rule the device out.
        thresholds: { minDeviceTokensPerSecond: 1 },
      },
      {
        deviceHost: createRuntimeDeviceHost({
          store: createNodeStore({ cacheDir: join(directory, 'device') }),
        }),
      },
    )
    const first = await client.chat(request)
    figures['SDK prefer-edge first answer'] =
      `${first.route} after ${seconds(performance.now() - startedAt)} s: ${first.routeReason}`
    expect(first.route).toBe('device')
    expect(first.routeReason).toMatch(/The edge is starting/)
    expect(first.routeReason).not.toMatch(/Could not reach|unreachable/)
    const status = await client.status()
    figures['SDK status while starting'] = `${status.route}: ${status.reason}`
    expect(status.edge).toMatchObject({ configured: true, reachable: false })
    expect(status.edge.leftOut).toMatch(/the edge is starting/)
    expect(status.route).toBe('device')
    expect(status.reason).toMatch(/the edge is starting/)
    expect(status.reason).not.toMatch(/unreachable/)
    const second = await client.chat(request)
    expect(second.route).toBe('device')
    expect(second.routeReason).toMatch(/the edge is starting/)
    // After its Retry-After the SDK asks the edge again: answered there once the start is done.
    let answer: Awaited<ReturnType<typeof client.chat>> | undefined
    for (let attempt = 0; attempt < 60 && answer?.route !== 'edge'; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 1000))
      if ((await client.status()).edge.reachable) answer = await client.chat(request)
    }
    figures['SDK answered from the edge after s'] = seconds(performance.now() - startedAt)
    expect(answer?.route).toBe('edge')
    expect(answer?.finishReason).toBe('length')
    await client.dispose()
  }, 180_000)

  it('a client that says nothing is held until the model is up and answered; one that asks not to wait gets 503 edge_starting with Retry-After at once', async () => {
    const key = keyFor(1, 'openai')
    const body = {
      model: modelId,
      messages: [{ role: 'user', content: 'Hello there.' }],
      max_tokens: 4,
    }
    // Prefer: wait=0: the Worker starts the instance and answers at once.
    const startedAt = performance.now()
    const refused = await fetch(`${worker?.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${clientKey}`,
        'x-ondevice-affinity': key,
        prefer: 'wait=0',
      },
      body: JSON.stringify(body),
    })
    const refusal = (await refused.json()) as { error: { code: string; message: string } }
    figures['Prefer wait=0 answered after s'] = seconds(performance.now() - startedAt)
    figures['Prefer wait=0 answer'] =
      `${refused.status} ${refusal.error?.code} Retry-After ${refused.headers.get('retry-after')}: ${refusal.error?.message}`
    expect(refused.status).toBe(503)
    expect(refusal.error.code).toBe('edge_starting')
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    // The OpenAI client, no retries: held while the start goes on, then answered.
    const openai = new OpenAI({
      baseURL: `${worker?.url}/v1`,
      apiKey: clientKey,
      maxRetries: 0,
      defaultHeaders: { 'x-ondevice-affinity': key },
    })
    const completion = await openai.chat.completions.create({
      model: modelId,
      messages: [{ role: 'user', content: 'Hello there.' }],
      max_tokens: 4,
    })
    figures['OpenAI client answered after s'] = seconds(performance.now() - startedAt)
    expect(completion.choices[0]?.finish_reason).toBe('length')
    expect(await instanceStates()).toEqual(['ready', 'ready'])
  }, 180_000)
})
