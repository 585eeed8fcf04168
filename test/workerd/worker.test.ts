// The edge worker in real workerd (`wrangler dev`, offline) on a seeded Qwen3 fixture package
// (q8, the WASM weight format), loaded once from local R2 and once from static assets. Proves the
// ORT-in-workerd recipe, the OpenAI API under the official `openai` client, that the greedy
// answer equals the Node runtime's (same file, same WASM backend), exact continuation, the error
// statuses and that a client disconnect frees the generation slot, the fingerprint of the weights
// it runs (x-ondevice-package) as a device computes it, and that the engine's logits
// in workerd equal Node's byte for byte (through a test-only entry that wraps the shipped one),
// with the weights streamed into the engine from R2 and from chunked assets.
// One file on purpose: each worker pays for loading ORT's wasm.
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../../builder/fixtures/fixture.ts'
import { packageFingerprint, parsePackageManifest } from '../../core/model-package.ts'
import type { ChatCompletionResponse } from '../../core/protocol/index.ts'
import { type LocalServer, startWranglerDev } from '../../tools/wrangler-dev.ts'
import { folderWeightReader, loadEngineModule } from '../../wasm/engine/node.ts'
import { createEngineSession } from '../../wasm/engine/session.ts'
import { loadOrtWebForNode } from '../../wasm/node.ts'
import { createApp, type OndeviceApp } from '../../worker/app.ts'
import { loadEdgeModel } from '../../worker/edge-model.ts'
import { createModelHost } from '../../worker/model-host.ts'
import { verifyPackage } from '../../worker/package-sources.ts'
import { prepareAssetsPackage } from '../../worker/prepare-assets.ts'
import { qwen3Tokenizer } from '../support/qwen3-tokenizer.ts'
import { type EngineLogitsRequest, engineLogitsPath } from './engine-logits-route.ts'
import { seedLocalR2, writeWorkerConfig } from './worker-config.ts'

const apiKey = 'workerd-test-key-0123456789'
const messages = [{ role: 'user' as const, content: 'Once upon a time, in a quiet village,' }]
const auth = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }

let folder: string
let packageDir: string
/** Token ids for the logits check (any ids in the 151,936-token vocabulary). */
const logitTokens = Array.from({ length: 44 }, (_, i) => (i * 7919 + 11) % 151_000)
let fromR2: LocalServer
let fromAssets: LocalServer
let nodeApp: OndeviceApp

async function post(base: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify(body),
    ...init,
  })
}

async function complete(base: string, body: Record<string, unknown>): Promise<ChatCompletionResponse> {
  const response = await post(base, { model: 'fixture', messages, ...body })
  expect(response.status, await response.clone().text()).toBe(200)
  return (await response.json()) as ChatCompletionResponse
}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-workerd-'))
  packageDir = join(folder, 'package')
  await writeFixture({ arch: 'qwen3', outDir: packageDir, dtype: 'q8', seed: 1 })
  // The q8 external data is ~30 MB: over the 25 MiB asset limit, so it goes up in chunks.
  const prepared = await prepareAssetsPackage(packageDir, join(folder, 'assets', 'fixture'))
  expect(prepared.chunkedFiles).toContain('onnx/model_quantized.onnx_data')
  const vars = {
    MODEL_PREFIX: 'fixture/',
    MODEL_ID: 'fixture',
    API_KEYS: apiKey,
    MAX_BODY_BYTES: '65536',
    MAX_PROMPT_TOKENS: '512',
    MAX_CONCURRENT: '1',
    MAX_QUEUE: '0',
    STALL_TIMEOUT_MS: '5000',
  }
  const configPath = await writeWorkerConfig({
    directory: folder,
    assetsDirectory: join(folder, 'assets'),
    vars,
    // The shipped entry plus one test-only route that returns the engine's raw logits.
    entry: 'test/workerd/engine-logits-entry.ts',
  })
  const r2State = join(folder, 'state-r2')
  await mkdir(join(folder, 'state-assets'))
  // Seeding R2 and starting the assets worker overlap; each worker is started (and its model
  // loaded by a first request) in parallel, so the two ORT loads share the wall time.
  const warm = async (worker: LocalServer) => {
    try {
      const response = await post(worker.url, { model: 'fixture', messages, max_tokens: 1 })
      expect(response.status, await response.clone().text()).toBe(200)
      await response.body?.cancel()
      return worker
    } catch (error) {
      await worker.stop()
      throw error
    }
  }
  const started = await Promise.allSettled([
    seedLocalR2(configPath, r2State, packageDir, 'fixture/')
      .then(() => startWranglerDev({ configPath, stateDir: r2State, vars: { MODEL_SOURCE: 'r2' } }))
      .then(warm),
    startWranglerDev({
      configPath,
      stateDir: join(folder, 'state-assets'),
      // A container's setting: this isolate says once that it runs one thread.
      vars: { MODEL_SOURCE: 'assets', MODEL_THREADS: '2' },
    }).then(warm),
  ])
  // If one failed to start, the other is stopped too (no wrangler left behind).
  const failed = started.find((result) => result.status === 'rejected')
  if (failed) {
    await Promise.all(
      started.map((result) => (result.status === 'fulfilled' ? result.value.stop() : undefined)),
    )
    throw failed.reason
  }
  ;[fromR2, fromAssets] = started.map((result) => (result as PromiseFulfilledResult<LocalServer>).value) as [
    LocalServer,
    LocalServer,
  ]
  // The same package through the same code on Node's onnxruntime-web (WASM, one thread like workerd).
  const reader = {
    readBytes: async (path: string) => new Uint8Array(await readFile(join(packageDir, path))),
    readText: (path: string) => readFile(join(packageDir, path), 'utf8'),
  }
  const { ort } = await loadOrtWebForNode({ numThreads: 1 })
  nodeApp = createApp({
    log: () => undefined,
    modelHost: createModelHost({
      modelId: 'fixture',
      load: async () => {
        const verified = await verifyPackage(reader, { source: packageDir })
        return loadEdgeModel({
          ort,
          reader: verified.reader,
          modelId: 'fixture',
          backend: 'wasm',
          engine: await loadEngineModule(),
          availableDtypes: verified.manifest?.dtypes,
        })
      },
    }),
  })
}, 240_000)

afterAll(async () => {
  await Promise.all([fromR2?.stop(), fromAssets?.stop()])
  if (folder) await rm(folder, { recursive: true, force: true })
})

describe('edge worker in workerd', () => {
  it('names the weights it runs (x-ondevice-package) as the device computes them from the same manifest, from R2 and from chunked assets', async () => {
    // A device hands an answer over only where this equals its own fingerprint: a workerd edge
    // that said none, or another one for the same package, would refuse every handoff.
    const manifest = parsePackageManifest(await readFile(join(packageDir, 'manifest.json'), 'utf8'))
    const expected = packageFingerprint(manifest.files, 'q8')
    expect(expected).toMatch(/^[0-9a-f]{32}$/)
    for (const base of [fromR2.url, fromAssets.url]) {
      const response = await post(base, { model: 'fixture', messages, max_tokens: 1, temperature: 0 })
      expect(response.status, await response.clone().text()).toBe(200)
      expect(response.headers.get('x-ondevice-package')).toBe(expected)
      await response.body?.cancel()
    }
  })

  it('MODEL_THREADS (a container setting) is said once to run one thread here, not silently ignored', () => {
    const notes = fromAssets.output().match(/MODEL_THREADS=2 applies where the model runs in Node/g) ?? []
    expect(notes).toHaveLength(1)
    expect(fromR2.output()).not.toContain('MODEL_THREADS')
  })

  it('answers from R2 with the same greedy tokens as the Node runtime, JSON and SSE', async () => {
    const request = { model: 'fixture', messages, max_tokens: 24, temperature: 0 }
    const edge = await complete(fromR2.url, request)
    const nodeResponse = await nodeApp.request('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request),
    })
    const node = (await nodeResponse.json()) as ChatCompletionResponse
    expect(edge.ondevice?.token_ids).toHaveLength(24)
    expect(edge.ondevice?.token_ids).toEqual(node.ondevice?.token_ids)
    expect(edge.choices[0]?.message.content).toBe(node.choices[0]?.message.content)
    expect(edge.system_fingerprint).toBe('ondevice-0.1.0:fixture:q8:wasm')
    expect(edge.usage).toMatchObject({ completion_tokens: 24, backend: 'wasm', dtype: 'q8' })
    // The warm-up request asked the same: the engine's logits do not depend on how a prompt is
    // cut, so this one resumed its cache at the longest length it shares (the whole prompt but its
    // last token, which is fed for the logits), and still gives the cold Node run's tokens.
    const resumed = qwen3Tokenizer().encodeChat(messages, { addGenerationPrompt: true }).length - 1
    expect(edge.usage.prompt_tokens_details).toEqual({ cached_tokens: resumed })
    expect(node.usage.prompt_tokens_details).toEqual({ cached_tokens: 0 })

    const streamed = await post(fromR2.url, {
      ...request,
      stream: true,
      stream_options: { include_usage: true },
    })
    expect(streamed.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const events = (await streamed.text()).split('\n\n').filter((block) => block.startsWith('data: '))
    expect(events.at(-1)).toBe('data: [DONE]')
    const chunks = events.slice(0, -1).map(
      (block) =>
        JSON.parse(block.slice(6)) as {
          choices: { delta: { content?: string; token_ids?: number[] } }[]
          usage?: { completion_tokens: number; prompt_tokens_details?: { cached_tokens: number } } | null
        },
    )
    expect(chunks.flatMap((chunk) => chunk.choices[0]?.delta.token_ids ?? [])).toEqual(
      edge.ondevice?.token_ids,
    )
    expect(chunks.at(-1)?.usage?.completion_tokens).toBe(24)
    expect(chunks.at(-1)?.usage?.prompt_tokens_details).toEqual({ cached_tokens: resumed })

    const health = (await (await fetch(`${fromR2.url}/healthz`)).json()) as Record<string, unknown>
    expect(health).toMatchObject({
      status: 'ok',
      loaded: true,
      backend: 'wasm',
      dtype: 'q8',
      model: 'fixture',
    })
  })

  it("the engine's logits in workerd (precompiled engine-relaxed.wasm) equal Node's plain engine.wasm byte for byte", async () => {
    const body: EngineLogitsRequest = {
      dtype: 'q8',
      prompt: logitTokens.slice(0, 40),
      steps: logitTokens.slice(40, 44),
    }
    const response = await fetch(`${fromR2.url}${engineLogitsPath}`, {
      method: 'POST',
      body: JSON.stringify(body),
    })
    expect(response.status, response.status === 200 ? '' : await response.clone().text()).toBe(200)
    const edge = Buffer.from(await response.arrayBuffer())
    // Node runs the plain SIMD128 build here: the other build, on another host, the same bytes.
    const session = await createEngineSession({
      module: await loadEngineModule('plain'),
      files: folderWeightReader(packageDir),
      dtype: 'q8',
    })
    try {
      const rows = [await session.append([...body.prompt])]
      for (const token of body.steps) rows.push(await session.append([token]))
      const node = Buffer.concat(rows.map((row) => Buffer.from(row.buffer, row.byteOffset, row.byteLength)))
      expect(edge.byteLength).toBe(node.byteLength)
      expect(node.byteLength).toBe(5 * 151_936 * 4)
      expect(edge.equals(node)).toBe(true)
    } finally {
      await session.dispose()
    }
  })

  it('serves the same package from static assets (chunked) to the official openai client, streaming and not', async () => {
    const client = new OpenAI({ baseURL: `${fromAssets.url}/v1`, apiKey })
    const greedy = await complete(fromR2.url, { max_tokens: 16, temperature: 0 })
    const stream = await client.chat.completions.create({
      model: 'fixture',
      messages,
      max_tokens: 16,
      temperature: 0,
      stream: true,
    })
    let text = ''
    let finish: string | null = null
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? ''
      finish = chunk.choices[0]?.finish_reason ?? finish
    }
    expect(text).toBe(greedy.choices[0]?.message.content)
    expect(finish).toBe('length')
    const whole = await client.chat.completions.create({
      model: 'fixture',
      messages,
      max_tokens: 16,
      temperature: 0,
    })
    expect(whole.choices[0]?.message.content).toBe(text)
    expect(whole.usage?.completion_tokens).toBe(16)
    const models = await client.models.list()
    expect(models.data.map((model) => model.id)).toEqual(['fixture'])
    // Both workers streamed the weights into the engine (R2: ranged gets; assets: one small chunk
    // at a time, as wrangler dev's binding answers no Range request): no weight file read whole.
    for (const worker of [fromR2, fromAssets])
      expect(worker.output()).not.toMatch(/is read whole while the model loads/)
  })

  it('usage.completion_tokens_details.reasoning_tokens in workerd, JSON and streamed, as in Node', async () => {
    // A random-weight model thinks only when made to: logit_bias makes every token `<think>`
    // (the first opens the block, the rest are inside it), or `</think>` after a continuation
    // that opened it (the first closes it and counts, the rest are reply text).
    const [open, close] = ['<think>', '</think>'].map((tag) => qwen3Tokenizer().tokenToId(tag) as number)
    const cases: [Record<string, unknown>, number][] = [
      [{ max_tokens: 5, logit_bias: { [String(open)]: 100 } }, 5],
      [
        {
          max_tokens: 4,
          logit_bias: { [String(close)]: 100 },
          ondevice_continuation: { token_ids: [open], step: 1 },
        },
        1,
      ],
      [{ max_tokens: 6 }, 0],
    ]
    for (const [fields, reasoningTokens] of cases) {
      const request = { model: 'fixture', messages, temperature: 0, ...fields }
      const edge = await complete(fromR2.url, request)
      const node = (await (
        await nodeApp.request('/v1/chat/completions', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(request),
        })
      ).json()) as ChatCompletionResponse
      const where = JSON.stringify(fields)
      expect(edge.usage.completion_tokens_details, where).toEqual({ reasoning_tokens: reasoningTokens })
      expect(node.usage.completion_tokens_details, where).toEqual({ reasoning_tokens: reasoningTokens })
      const streamed = await (
        await post(fromR2.url, { ...request, stream: true, stream_options: { include_usage: true } })
      ).text()
      const last = streamed
        .split('\n\n')
        .filter((block) => block.startsWith('data: {'))
        .map(
          (block) => JSON.parse(block.slice('data: '.length)) as { usage?: ChatCompletionResponse['usage'] },
        )
        .at(-1)
      expect(last?.usage?.completion_tokens_details, where).toEqual({ reasoning_tokens: reasoningTokens })
    }
  })

  it('continues an answer split at token k exactly, greedy and seeded', async () => {
    for (const sampling of [{ temperature: 0 }, { temperature: 1, top_k: 50, seed: 42 }]) {
      const whole = await complete(fromR2.url, { max_tokens: 12, ...sampling })
      const ids = whole.ondevice?.token_ids ?? []
      expect(ids).toHaveLength(12)
      for (const k of [1, 5, 9]) {
        const rest = await complete(fromR2.url, {
          max_tokens: 12 - k,
          ...sampling,
          ondevice_continuation: { token_ids: ids.slice(0, k), step: k },
        })
        expect(
          [...ids.slice(0, k), ...(rest.ondevice?.token_ids ?? [])],
          `k=${k} ${JSON.stringify(sampling)}`,
        ).toEqual(ids)
      }
    }
  })

  it('structured output in workerd: schemas and tool calls enforced, the same tokens as Node, a handoff mid-document exact', async () => {
    const client = new OpenAI({ baseURL: `${fromR2.url}/v1`, apiKey })
    const schema = {
      type: 'object',
      properties: {
        title: { type: 'string', maxLength: 10 },
        count: { type: 'integer', minimum: 0, maximum: 9999 },
      },
      required: ['title', 'count'],
      additionalProperties: false,
    }
    const request = {
      model: 'fixture',
      messages,
      max_tokens: 60,
      temperature: 1,
      seed: 11,
      response_format: { type: 'json_schema' as const, json_schema: { name: 'item', schema, strict: true } },
    }
    const edge = await client.chat.completions.create(request)
    expect(edge.choices[0]?.finish_reason).toBe('stop')
    const value = JSON.parse(edge.choices[0]?.message.content ?? '') as { title: string; count: number }
    expect(Object.keys(value)).toEqual(['title', 'count'])
    expect(Number.isInteger(value.count) && value.count >= 0 && value.count <= 9999).toBe(true)
    // The Node runtime masks alike: the same tokens.
    const nodeResponse = await nodeApp.request('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request),
    })
    const node = (await nodeResponse.json()) as ChatCompletionResponse
    const ids = (edge as unknown as ChatCompletionResponse).ondevice?.token_ids ?? []
    expect(node.ondevice?.token_ids).toEqual(ids)
    // Continued from inside the document (after 3 tokens: inside the title string).
    const rest = await complete(fromR2.url, {
      ...request,
      max_tokens: 60 - 3,
      ondevice_continuation: { token_ids: ids.slice(0, 3), step: 3 },
    })
    expect([...ids.slice(0, 3), ...(rest.ondevice?.token_ids ?? [])]).toEqual(ids)

    const calledRequest = {
      model: 'fixture',
      messages,
      max_tokens: 60,
      temperature: 1,
      seed: 2,
      tools: [
        {
          type: 'function' as const,
          function: {
            name: 'lookup',
            parameters: {
              type: 'object',
              properties: { id: { type: 'integer', minimum: 1, maximum: 99 } },
              required: ['id'],
              additionalProperties: false,
            },
          },
        },
      ],
      tool_choice: 'required' as const,
      parallel_tool_calls: false,
    }
    const called = await client.chat.completions.create(calledRequest)
    expect(called.choices[0]?.finish_reason).toBe('tool_calls')
    const call = called.choices[0]?.message.tool_calls?.[0]
    expect(call?.type === 'function' && call.function.name).toBe('lookup')
    const args = JSON.parse(call?.type === 'function' ? call.function.arguments : '') as { id: number }
    expect(Number.isInteger(args.id) && args.id >= 1 && args.id <= 99).toBe(true)
    // Stop strings match content only: the call's markup is never cut, and next to a JSON
    // document (no content to cut) a stop list is a 400 naming it.
    const stop = ['}', '\n', '"', ':']
    const calledWithStop = await client.chat.completions.create({ ...calledRequest, stop })
    expect(calledWithStop.choices[0]?.message.tool_calls).toEqual(called.choices[0]?.message.tool_calls)
    await expect(client.chat.completions.create({ ...request, stop })).rejects.toMatchObject({
      status: 400,
      param: 'stop',
    })
    // A continuation the call's constraint cannot take: a 400 before the status line, streamed too.
    const refused = await fetch(`${fromR2.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({
        ...calledRequest,
        stream: true,
        ondevice_continuation: { token_ids: ids.slice(0, 1), step: 1 },
      }),
    })
    expect(refused.status).toBe(400)
    expect(((await refused.json()) as { error: { param: string } }).error.param).toBe(
      'ondevice_continuation.token_ids.0',
    )
  })

  it('maps bad requests to OpenAI errors with the right status', async () => {
    // wrangler dev's local proxy now and then loses the connection after a request whose body the
    // worker refused unread, and answers the next request itself with a plain-text 503 that never
    // reached the worker (no x-request-id; cloudflare/workers-sdk #14641). Only that exact answer
    // is sent again, once; every answer from the worker is checked as it came.
    const status = async (send: () => Promise<Response>) => {
      let answer = await send()
      if (answer.status === 503 && !answer.headers.has('x-request-id')) {
        const text = await answer.text()
        expect(text).toMatch(/restarted mid-request/)
        answer = await send()
      }
      const body = (await answer.json()) as { error: { code: string } }
      return [answer.status, body.error.code]
    }
    const base = fromR2.url
    expect(await status(() => fetch(`${base}/v1/chat/completions`, { method: 'POST', body: '{}' }))).toEqual([
      401,
      'unauthorized',
    ])
    expect(
      await status(() =>
        fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: auth, body: '{"model": ' }),
      ),
    ).toEqual([400, 'invalid_argument'])
    expect(await status(() => post(base, { model: 'fixture', messages, temperature: 'warm' }))).toEqual([
      400,
      'invalid_argument',
    ])
    expect(await status(() => post(base, { model: 'other', messages }))).toEqual([404, 'model_not_found'])
    // 413 is checked on Node (worker/app.test.ts, declared and chunked): wrangler dev's proxy
    // reports "restarted mid-request" when a worker answers before the body has arrived.
    expect(
      await status(() =>
        post(base, { model: 'fixture', messages: [{ role: 'user', content: 'hello '.repeat(600) }] }),
      ),
    ).toEqual([400, 'context_length_exceeded'])
  })

  // A generation yields between tokens so the isolate serves others meanwhile. It yielded through
  // a MessageChannel message, which workerd delivers without taking any I/O in between: a
  // non-streamed answer held the isolate to its last token (a stream was spared, its reader's
  // pulls wait on the network), so /healthz, other requests and the client's abort waited for it
  // (seconds: 2.1 s for 300 tokens of this fixture, 15 s for 2,000). Counted, not timed: under
  // load a probe is slow either way, but while the answer runs it is answered only if it yields.
  it('a non-streamed answer does not hold the isolate: /healthz is answered while it generates', async () => {
    const answer = post(fromR2.url, {
      model: 'fixture',
      messages,
      max_tokens: 600,
      temperature: 0,
      // No end token: the answer runs its 600 tokens.
      logit_bias: { '151643': -100, '151645': -100 },
    }).then(async (response) => {
      expect(response.status, await response.clone().text()).toBe(200)
      return (await response.json()) as ChatCompletionResponse
    })
    let finished = false
    void answer.then(
      () => (finished = true),
      () => (finished = true),
    )
    let answeredMeanwhile = 0
    while (!finished) {
      const health = await fetch(`${fromR2.url}/healthz`)
      expect(health.status).toBe(200)
      await health.body?.cancel()
      if (!finished) answeredMeanwhile++
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    expect((await answer).usage.completion_tokens).toBe(600)
    expect(answeredMeanwhile).toBeGreaterThanOrEqual(3)
  })

  // On Workers a client that hangs up mid-stream gets its request cancelled by the runtime: none
  // of its code runs again, so the slot comes back through the stall timeout (5 s here), and
  // the next request that needs it reclaims it and logs the dead one as 499.
  it('frees the slot after the client disconnects mid-stream', async () => {
    const controller = new AbortController()
    const response = await post(
      fromR2.url,
      { model: 'fixture', messages, max_tokens: 1500, temperature: 0, stream: true },
      { signal: controller.signal },
    )
    const reader = response.body!.getReader()
    let received = ''
    while (!received.includes('token_ids')) received += new TextDecoder().decode((await reader.read()).value)
    controller.abort()
    // One slot and no queue: a new request only succeeds once the abandoned generation let go.
    const deadline = Date.now() + 20_000
    let answer: Response
    for (;;) {
      answer = await post(fromR2.url, { model: 'fixture', messages, max_tokens: 2, temperature: 0 })
      if (answer.status !== 429 || Date.now() > deadline) break
      await answer.body?.cancel()
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    expect(answer.status).toBe(200)
    const health = (await (await fetch(`${fromR2.url}/healthz`)).json()) as {
      generations: { active: number }
    }
    expect(health.generations.active).toBe(0)
    // The log line of the abandoned stream says so (status 499: aborted, or stalled when reclaimed).
    const line = fromR2
      .output()
      .split('\n')
      .find((text) => text.includes('"status":499'))
    expect(line, fromR2.output()).toMatch(/"errorCode":"(aborted|stalled)"/)
  })
})
