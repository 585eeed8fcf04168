// The DeviceHost served by a real thread (node:worker_threads with a transferred MessagePort) and
// driven through the proxy, itself a DeviceHost: load with progress, a chat answered with the
// same parts as the same model in this thread, abort, the probe, errors that keep their class and
// code, and the load's warnings (what the app's `ready` event and status() report).
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MessageChannel, Worker } from 'node:worker_threads'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../../builder/fixtures/fixture.ts'
import type { ChatMessage } from '../../core/chat-template.ts'
import { encodeChatTurns } from '../../core/chat-turns.ts'
import { BackendError, InvalidArgumentError, ModelError } from '../../core/errors.ts'
import type { FinishPart } from '../../core/stream-parts.ts'
import { createDeviceModel } from '../device-host/device-model.ts'
import type { DeviceModel, DevicePart } from '../device-host/types.ts'
import { loadModel } from '../index.ts'
import { createNodeStore } from '../store/node-store.ts'
import type { DownloadProgress } from '../store/types.ts'
import type { MessageEndpoint, WorkerResponse } from './protocol.ts'
import { createWorkerDeviceHost, type WorkerDeviceHost } from './proxy.ts'

let folder: string
let packageDir: string
let worker: Worker
let host: WorkerDeviceHost
let channelPort: MessageEndpoint

/** The worker's download retry pause: far longer than any pause a loaded machine makes. */
const retryPauseMs = 60_000

const conversation: readonly ChatMessage[] = [
  { role: 'system', content: 'You answer questions about gardens in two sentences or fewer.' },
  { role: 'user', content: 'Hello' },
]

async function collect(parts: AsyncIterable<DevicePart>): Promise<DevicePart[]> {
  const collected: DevicePart[] = []
  for await (const part of parts) collected.push(part)
  return collected
}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-worker-'))
  packageDir = join(folder, 'qwen3-tiny')
  // The builder's seeded fixture: random weights, the real Qwen3 tokenizer, so chats encode.
  await writeFixture({ arch: 'qwen3', outDir: packageDir, dtype: 'fp32' })
  const { port1, port2 } = new MessageChannel()
  channelPort = port1 as unknown as MessageEndpoint
  worker = new Worker(new URL('../../test/client-runtime/node-test-worker.ts', import.meta.url), {
    workerData: { port: port2, downloadRetryDelayMs: retryPauseMs },
    transferList: [port2],
    env: { ...process.env, ONDEVICE_CACHE_DIR: join(folder, 'cache') },
  })
  port1.start()
  host = createWorkerDeviceHost(channelPort)
})
afterAll(async () => {
  host?.close()
  await worker?.terminate()
  await rm(folder, { recursive: true, force: true })
})

describe('DeviceHost served by a worker + its proxy', () => {
  it("inspect's signal crosses the thread: an abort ends a wait through manifest.json's retry pauses at once", async () => {
    // A first load's manifest.json is retried through pauses of seconds (1, 2, 4 s by default;
    // 60 s in this worker); the router's look at the package could not be stopped, in this
    // thread or across it.
    let requests = 0
    const controller = new AbortController()
    let abortedAt = 0
    const server = createServer((_request, response) => {
      requests++
      response.writeHead(503).end('overloaded')
      // Within the first pause after the first try.
      if (requests === 1)
        setTimeout(() => {
          abortedAt = performance.now()
          controller.abort()
        }, 200)
    })
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/pkg/`
      await expect(
        host.inspect(url, { backend: 'native', dtype: 'fp32', signal: controller.signal }),
      ).rejects.toMatchObject({ name: 'AbortedError' })
      expect(requests).toBe(1)
      // Ended by the abort, not by the pause (60 s): room for a machine that pauses the process.
      expect(performance.now() - abortedAt).toBeLessThan(10_000)
    } finally {
      server.closeAllConnections()
      await new Promise((done) => server.close(done))
    }
  }, 30_000)

  it('errors keep their class, code and param across the thread', async () => {
    const missing = host.load(join(folder, 'missing'), { backend: 'native' })
    await expect(missing).rejects.toBeInstanceOf(ModelError)
    await expect(missing).rejects.toMatchObject({ code: 'model_not_found' })
    const noModel = host.load(undefined, { backend: 'native' })
    await expect(noModel).rejects.toBeInstanceOf(InvalidArgumentError)
    await expect(noModel).rejects.toMatchObject({ code: 'invalid_argument', param: 'model' })
  })

  it('an answer that asks for the session after dispose() fails as a call after dispose()', async () => {
    // It was refused only when it started: one started before dispose() (its prompt part read)
    // that asked for the session after it got it once dispose() was done, ran on the disposed
    // session and failed with onnxruntime's own error (backend_failed), not the disposed model's.
    const local = await loadModel({
      model: packageDir,
      backend: 'native',
      dtype: 'fp32',
      store: createNodeStore({ cacheDir: join(folder, 'waiting-answer-cache') }),
    })
    const here = createDeviceModel({ session: local.session, tokenizer: local.tokenizer })
    const request = { messages: conversation, maxTokens: 6, sampling: { temperature: 0, seed: 1 } }
    const first = here.generate(request)[Symbol.asyncIterator]()
    await first.next() // the prompt part
    await first.next() // the first token: this answer holds the session
    // One answer asks for the session before dispose(), one after: dispose() has its turn between.
    const queued = here.generate(request)[Symbol.asyncIterator]()
    expect(await queued.next()).toMatchObject({ value: { type: 'prompt' } })
    const queuedNext = queued.next()
    const waiting = here.generate(request)[Symbol.asyncIterator]()
    expect(await waiting.next()).toMatchObject({ value: { type: 'prompt' } })
    const disposed = here.dispose()
    const next = waiting.next()
    while (!(await first.next()).done);
    // The one that asked first still answers.
    expect(await queuedNext).toMatchObject({ done: false })
    while (!(await queued.next()).done);
    await expect(next).rejects.toBeInstanceOf(BackendError)
    await expect(next).rejects.toMatchObject({ code: 'backend_unavailable' })
    await disposed
  })

  it("a model's second dispose() returns once the model is disposed, not while an answer holds it", async () => {
    // A second dispose() returned at once: while the first waited for an answer to end, a caller
    // awaiting the second went on with the session (and its memory) still loaded.
    const local = await loadModel({
      model: packageDir,
      backend: 'native',
      dtype: 'fp32',
      store: createNodeStore({ cacheDir: join(folder, 'second-dispose-cache') }),
    })
    let sessionDisposed = false
    const here = createDeviceModel({
      session: local.session,
      tokenizer: local.tokenizer,
      dispose: async () => {
        await local.dispose()
        sessionDisposed = true
      },
    })
    const answer = here
      .generate({ messages: conversation, maxTokens: 6, sampling: { temperature: 0, seed: 1 } })
      [Symbol.asyncIterator]()
    await answer.next() // the prompt part
    await answer.next() // the first token: the answer holds the session
    const first = here.dispose()
    const rest = (async () => {
      while (!(await answer.next()).done);
    })()
    await here.dispose()
    expect(sessionDisposed).toBe(true)
    await Promise.all([first, rest])
  })

  it('loads with progress and answers a chat with the same parts as this thread; abort; probe; dispose', async () => {
    const capabilities = await host.capabilities()
    expect(capabilities).toMatchObject({ host: 'node', wasm: true, native: true })
    const info = await host.inspect(packageDir, { backend: 'native', dtype: 'fp32' })
    expect(info).toMatchObject({ dtype: 'fp32', backend: 'native', cached: true })
    expect(info.files).toContain('config.json')

    const progress: DownloadProgress[] = []
    const model = await host.load(packageDir, {
      backend: 'native',
      dtype: 'fp32',
      onProgress: (event) => progress.push(event),
    })
    expect(model).toMatchObject({ backend: 'native', dtype: 'fp32' })
    // The manifest's name is the id; where it was loaded from (what a handoff asks an edge for) crosses too.
    expect(model.modelId).toMatch(/^qwen3-.*seed/)
    expect(model.sourceModelId).toBe('qwen3-tiny')
    expect(progress.length).toBeGreaterThan(0)
    expect(progress.at(-1)?.loadedBytes).toBe(progress.at(-1)?.totalBytes)

    const request = { messages: conversation, maxTokens: 6, sampling: { temperature: 0, seed: 1 } }
    const parts = await collect(model.generate(request))
    const local = await loadModel({
      model: packageDir,
      backend: 'native',
      dtype: 'fp32',
      store: createNodeStore({ cacheDir: join(folder, 'local-cache') }),
    })
    let expected: DevicePart[]
    let promptTokens: number
    try {
      const here: DeviceModel = createDeviceModel({ session: local.session, tokenizer: local.tokenizer })
      expected = await collect(here.generate(request))
      // After dispose() a call fails in this thread as it does across the thread (below): the
      // same class and code (here it was onnxruntime's BackendError backend_failed).
      await here.dispose()
      const hereGone = collect(here.generate(request))
      await expect(hereGone).rejects.toBeInstanceOf(BackendError)
      await expect(hereGone).rejects.toMatchObject({ code: 'backend_unavailable' })
      await expect(here.probe()).rejects.toMatchObject({ name: 'BackendError', code: 'backend_unavailable' })
      const prompt = encodeChatTurns(local.tokenizer, conversation, { addGenerationPrompt: true })
      expect(prompt.turnBoundaries.length).toBeGreaterThan(0)
      promptTokens = prompt.tokenIds.length
    } finally {
      await local.dispose()
    }
    // The prompt crossed as messages and was encoded in the worker exactly as here (boundaries included).
    expect(parts[0]).toEqual({ type: 'prompt', promptTokens })
    const withoutTimings = (list: DevicePart[]) =>
      list.map((part) =>
        part.type === 'finish' ? { ...part, usage: { promptTokens: part.usage.promptTokens } } : part,
      )
    expect(withoutTimings(parts)).toEqual(withoutTimings(expected))
    const finish = parts.at(-1) as FinishPart
    expect(finish).toMatchObject({ type: 'finish', finishReason: 'length' })
    expect(finish.tokenIds).toHaveLength(6)
    expect(parts.flatMap((part) => (part.type === 'text-delta' ? part.tokenIds : []))).toEqual(
      finish.tokenIds,
    )

    const controller = new AbortController()
    let seen = 0
    let last: DevicePart | undefined
    for await (const part of model.generate({ ...request, maxTokens: 250, signal: controller.signal })) {
      if (part.type === 'text-delta' && ++seen === 2) controller.abort()
      last = part
    }
    expect(last).toMatchObject({ type: 'finish', finishReason: 'abort' })
    expect(last?.type === 'finish' && last.tokenIds.length).toBeLessThan(250)

    expect(await model.probe()).toBeGreaterThan(0)

    const bad = collect(model.generate({ ...request, maxTokens: 0 }))
    await expect(bad).rejects.toBeInstanceOf(InvalidArgumentError)
    await expect(bad).rejects.toMatchObject({ param: 'maxTokens' })

    await model.dispose()
    const gone = collect(model.generate(request))
    await expect(gone).rejects.toBeInstanceOf(BackendError)
    await expect(gone).rejects.toMatchObject({ code: 'backend_unavailable' })
    await expect(model.probe()).rejects.toMatchObject({ name: 'BackendError', code: 'backend_unavailable' })
  })

  it("across the thread too, a model's second dispose() returns once the model is disposed", async () => {
    // The worker forgot the model at the first dispose (which waits for a running answer to end),
    // so a second answered at once: its caller went on with the model still loaded there.
    const model = await host.load(packageDir, { backend: 'native', dtype: 'fp32' })
    const answer = model
      .generate({ messages: conversation, maxTokens: 200, sampling: { temperature: 0, seed: 1 } })
      [Symbol.asyncIterator]()
    await answer.next() // the prompt part
    await answer.next() // the first token: the answer holds the session
    let firstDone = false
    const first = model.dispose().then(() => {
      firstDone = true
    })
    const second = model.dispose()
    const rest = (async () => {
      while (!(await answer.next()).done);
    })()
    await second
    expect(firstDone).toBe(true)
    await Promise.all([first, rest])
  })

  it("the load's warnings cross the thread with the model (a package without manifest.json)", async () => {
    const model = await host.load(packageDir, { backend: 'native', dtype: 'fp32' })
    try {
      expect(model.warnings).toEqual([])
    } finally {
      await model.dispose()
    }
    const unlisted = join(folder, 'qwen3-tiny-no-manifest')
    await cp(packageDir, unlisted, {
      recursive: true,
      filter: (source) => !source.endsWith('manifest.json'),
    })
    const unchecked = await host.load(unlisted, { backend: 'native', dtype: 'fp32' })
    try {
      expect(unchecked.warnings).toEqual([
        `${unlisted} has no manifest.json: its files are used without an integrity check.`,
      ])
    } finally {
      await unchecked.dispose()
    }
  })

  it('an aborted thinking answer keeps the reasoning and tokens this reader saw', async () => {
    const model = await host.load(packageDir, { backend: 'native', dtype: 'fp32' })
    // Qwen3's `<think>` (151667) at +100: the first opens the reasoning, the next ones are its text.
    const sampling = { temperature: 0, logitBias: { 151667: 100 } }
    const controller = new AbortController()
    const seen: number[] = []
    const parts: DevicePart[] = []
    for await (const part of model.generate({
      messages: conversation,
      maxTokens: 1500,
      sampling,
      signal: controller.signal,
    })) {
      parts.push(part)
      if (part.type === 'reasoning-delta') {
        seen.push(...part.tokenIds)
        if (seen.length === 3) controller.abort()
      }
    }
    expect(parts.some((part) => part.type === 'text-delta')).toBe(false)
    expect(parts.at(-1)).toMatchObject({
      type: 'finish',
      finishReason: 'abort',
      tokenIds: [151667, 151667, 151667],
      text: '',
      reasoning: '<think><think>',
      nextStep: 3,
      // The worker generated more before it saw the abort: the usage counts what this reader saw.
      usage: { completionTokens: 3, reasoningTokens: 3 },
    })
  })

  it('an abort or a reader that leaves the loop stops the worker within a few tokens', async () => {
    const model = await host.load(packageDir, { backend: 'native', dtype: 'fp32' })
    // The worker's own messages, seen on the real port: what it produced, not what the proxy showed.
    const workerFinishes: FinishPart[] = []
    const spy = (event: { readonly data: unknown }) => {
      const message = event.data as WorkerResponse
      if (message.type === 'part' && message.part.type === 'finish') workerFinishes.push(message.part)
    }
    channelPort.addEventListener('message', spy)
    try {
      // Far more than the test can wait for if the worker kept going.
      const request = { messages: conversation, maxTokens: 1500, sampling: { temperature: 0 } }

      const controller = new AbortController()
      const seen: number[] = []
      const parts: DevicePart[] = []
      for await (const part of model.generate({ ...request, signal: controller.signal })) {
        parts.push(part)
        if (part.type === 'text-delta') {
          seen.push(...part.tokenIds)
          if (seen.length === 2) controller.abort()
        }
      }
      const finish = parts.at(-1)
      // Like core: nothing after the abort but the finish, holding exactly the tokens shown.
      expect(parts.filter((part) => part.type === 'text-delta')).toHaveLength(2)
      expect(finish).toMatchObject({ type: 'finish', finishReason: 'abort', tokenIds: seen, nextStep: 2 })
      expect(finish?.type === 'finish' && finish.text).toBe(
        parts.map((part) => (part.type === 'text-delta' ? part.text : '')).join(''),
      )
      const aborted = workerFinishes.at(-1)
      expect(aborted?.finishReason).toBe('abort')
      expect(aborted?.tokenIds.length).toBeLessThan(50)

      // break: return() tells the worker; the next request on the same model runs right after.
      workerFinishes.length = 0
      const broken: number[] = []
      for await (const part of model.generate(request)) {
        if (part.type === 'text-delta') broken.push(...part.tokenIds)
        if (broken.length >= 2) break
      }
      const started = performance.now()
      const next = await collect(model.generate({ ...request, maxTokens: 3 }))
      const waited = performance.now() - started
      expect(workerFinishes[0]?.finishReason).toBe('abort')
      expect(workerFinishes[0]?.tokenIds.length).toBeLessThan(50)
      // The session was freed and reused: the same greedy answer starts with the same tokens.
      const nextFinish = next.at(-1)
      expect(nextFinish).toMatchObject({ type: 'finish', finishReason: 'length' })
      expect(nextFinish?.type === 'finish' && nextFinish.tokenIds.slice(0, 2)).toEqual(broken.slice(0, 2))
      expect(waited).toBeLessThan(5000)
    } finally {
      channelPort.removeEventListener('message', spy)
      await model.dispose()
    }
  })
})
