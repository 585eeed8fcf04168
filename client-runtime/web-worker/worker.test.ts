// The Web Worker protocol across a real thread (node:worker_threads with a transferred
// MessagePort): load with progress, chat encoding, streamed generation equal to the same model
// in this thread, abort, and errors that keep their class and code.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MessageChannel, Worker } from 'node:worker_threads'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeQwen35Package } from '../../builder/architectures/qwen3-5-package.ts'
import { randomQwen35Weights, tinyQwen35Config } from '../../builder/architectures/qwen3-5-weights.ts'
import { encodeChatTurns } from '../../core/chat-turns.ts'
import { BackendError, ModelError } from '../../core/errors.ts'
import { generateText } from '../../core/generate.ts'
import type { FinishPart, GenerationPart } from '../../core/stream-parts.ts'
import { qwen3TokenizerFiles } from '../../test/support/qwen3-tokenizer.ts'
import { loadModel } from '../index.ts'
import { createNodeStore } from '../store/node-store.ts'
import type { DownloadProgress } from '../store/types.ts'
import type { MessageEndpoint, WorkerResponse } from './protocol.ts'
import { createModelWorkerProxy, type ModelWorkerProxy } from './proxy.ts'

let folder: string
let packageDir: string
let worker: Worker
let proxy: ModelWorkerProxy
let channelPort: MessageEndpoint

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-worker-'))
  packageDir = join(folder, 'pkg')
  const config = tinyQwen35Config(300)
  const tokenizer = qwen3TokenizerFiles()
  await writeQwen35Package({
    outDir: packageDir,
    config,
    weights: randomQwen35Weights(config, 9),
    dtypes: ['fp32'],
    tokenizer: {
      tokenizerJson: tokenizer.tokenizerJson as string,
      tokenizerConfigJson: tokenizer.tokenizerConfigJson as string,
    },
  })
  const { port1, port2 } = new MessageChannel()
  channelPort = port1 as unknown as MessageEndpoint
  worker = new Worker(new URL('../../test/client-runtime/node-test-worker.ts', import.meta.url), {
    workerData: { port: port2 },
    transferList: [port2],
    env: { ...process.env, ONDEVICE_CACHE_DIR: join(folder, 'cache') },
  })
  port1.start()
  proxy = createModelWorkerProxy(port1 as unknown as MessageEndpoint)
})
afterAll(async () => {
  proxy?.close()
  await worker?.terminate()
  await rm(folder, { recursive: true, force: true })
})

describe('model worker host + proxy', () => {
  it('errors keep their class and code across the thread', async () => {
    const early = proxy.encode('hi')
    await expect(early).rejects.toBeInstanceOf(BackendError)
    await expect(early).rejects.toMatchObject({ code: 'backend_unavailable' })
    const missing = proxy.load({ model: join(folder, 'missing'), backend: 'native' })
    await expect(missing).rejects.toBeInstanceOf(ModelError)
    await expect(missing).rejects.toMatchObject({ code: 'model_not_found' })
  })

  it('loads with progress, streams the same tokens as this thread, and aborts', async () => {
    const progress: DownloadProgress[] = []
    const info = await proxy.load(
      { model: packageDir, backend: 'native' },
      { onProgress: (event) => progress.push(event) },
    )
    expect(info).toMatchObject({
      backend: 'native',
      dtype: 'fp32',
      vocabularySize: 300,
      hasChatTemplate: true,
    })
    expect(progress.at(-1)?.loaded).toBe(progress.at(-1)?.total)

    // Token ids under 300 (the tiny model's vocabulary), so the prompt is raw ids, not the template.
    const promptTokenIds = [12, 40, 7, 199, 3]
    const parts: GenerationPart[] = []
    for await (const part of proxy.generate({ promptTokenIds, maxTokens: 6, sampling: { temperature: 0 } }))
      parts.push(part)
    const finish = parts.at(-1)
    expect(finish?.type).toBe('finish')
    const local = await loadModel({
      model: packageDir,
      backend: 'native',
      store: createNodeStore({ cacheDir: join(folder, 'local-cache') }),
    })
    const expected = await generateText(local.session, local.tokenizer, {
      promptTokenIds,
      maxTokens: 6,
      sampling: { temperature: 0 },
    })
    await local.dispose()
    expect(finish?.type === 'finish' && finish.tokenIds).toEqual(expected.tokenIds)
    expect(
      parts
        .filter((part) => part.type === 'text-delta')
        .flatMap((part) => (part.type === 'text-delta' ? part.tokenIds : [])),
    ).toEqual(expected.tokenIds)
    expect(await proxy.encodeChat([{ role: 'user', content: 'Hello' }])).toEqual(
      local.tokenizer.encodeChat([{ role: 'user', content: 'Hello' }], { addGenerationPrompt: true }),
    )
    const conversation = [
      { role: 'system' as const, content: 'You answer questions about gardens in two sentences or fewer.' },
      { role: 'user' as const, content: 'Hello' },
    ]
    const turns = await proxy.encodeChatTurns(conversation)
    expect(turns).toEqual(encodeChatTurns(local.tokenizer, conversation, { addGenerationPrompt: true }))
    expect(turns.turnBoundaries.length).toBeGreaterThan(0)

    const controller = new AbortController()
    let seen = 0
    let last: GenerationPart | undefined
    for await (const part of proxy.generate(
      { promptTokenIds, maxTokens: 250, sampling: { temperature: 0 } },
      { signal: controller.signal },
    )) {
      if (part.type === 'text-delta' && ++seen === 2) controller.abort()
      last = part
    }
    expect(last).toMatchObject({ type: 'finish', finishReason: 'abort' })
    expect(last?.type === 'finish' && last.tokenIds.length).toBeLessThan(250)

    const speed = await proxy.measureDecodeSpeed(4)
    expect(speed.tokensPerSecond).toBeGreaterThan(0)
    await proxy.unload()
  })

  it('an abort or a reader that leaves the loop stops the worker within a few tokens', async () => {
    await proxy.load({ model: packageDir, backend: 'native' })
    // The worker's own messages, seen on the real port: what it produced, not what the proxy showed.
    const workerFinishes: FinishPart[] = []
    const spy = (event: { readonly data: unknown }) => {
      const message = event.data as WorkerResponse
      if (message.type === 'part' && message.part.type === 'finish') workerFinishes.push(message.part)
    }
    channelPort.addEventListener('message', spy)
    try {
      const promptTokenIds = [12, 40, 7, 199, 3]
      // Far more than the test can wait for if the worker kept going (the context holds 4096).
      const maxTokens = 4000

      const controller = new AbortController()
      const seen: number[] = []
      const parts: GenerationPart[] = []
      for await (const part of proxy.generate(
        { promptTokenIds, maxTokens, sampling: { temperature: 0 } },
        { signal: controller.signal },
      )) {
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

      // break: return() tells the worker; the next request on the same proxy runs right after.
      workerFinishes.length = 0
      const broken: number[] = []
      for await (const part of proxy.generate({ promptTokenIds, maxTokens, sampling: { temperature: 0 } })) {
        if (part.type === 'text-delta') broken.push(...part.tokenIds)
        if (broken.length >= 2) break
      }
      const started = performance.now()
      const next: GenerationPart[] = []
      for await (const part of proxy.generate({ promptTokenIds, maxTokens: 3, sampling: { temperature: 0 } }))
        next.push(part)
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
      await proxy.unload()
    }
  })
})
