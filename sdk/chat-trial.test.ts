// A chat app's use of the client over many turns, on real model packages (the builder's seeded
// Qwen3 fp32 and Qwen3.5 q8 fixtures, real tokenizer) on the device's engine ('wasm') and on
// onnxruntime-node ('native'; the q8 package, whose resumed turns are the most fragile), with the device's context capped so a conversation reaches it:
// each answer of a conversation the device resumes from its cache (a later turn, a regenerated,
// edited or deleted turn, two conversations interleaved, a turn after an abort, thinking switched,
// a tool loop, streams fired together) must equal a fresh run of the same prompt (one whose cache
// shares no turn: cachedTokens 0), greedy and sampled; and a real local edge (the worker app over
// HTTP, the engine) must answer the same conversations with the same tokens and refuse the context's
// limit with the same error.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../builder/fixtures/fixture.ts'
import { createRuntimeDeviceHost } from '../client-runtime/device-host/index.ts'
import type { OrtModule } from '../client-runtime/ort-session.ts'
import { storedPackageReader } from '../client-runtime/package-reader.ts'
import { createNodeStore } from '../client-runtime/store/node-store.ts'
import type { ChatMessage } from '../core/chat-template.ts'
import { AbortedError, ContextLengthError } from '../core/errors.ts'
import type { StreamPart } from '../core/stream-parts.ts'
import { serveApp, type TestEdge } from '../test/sdk/test-edge.ts'
import { isDecodeStep, watchAppends } from '../test/support/watch-appends.ts'
import { loadEngineModule } from '../wasm/engine/node.ts'
import { loadOrtWebForNode } from '../wasm/node.ts'
import { createApp } from '../worker/app.ts'
import { loadEdgeModel } from '../worker/edge-model.ts'
import { createModelHost } from '../worker/model-host.ts'
import { createClient } from './client.ts'
import type { ChatRequest, ChatRequestMessage } from './options.ts'

let workDir: string
let edge: TestEdge | undefined

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'ondevice-chat-trial-'))
  await writeFixture({ arch: 'qwen3', outDir: join(workDir, 'qwen3'), dtype: 'fp32' })
  await writeFixture({ arch: 'qwen3_5', outDir: join(workDir, 'qwen3_5'), dtype: 'q8' })
})
afterAll(async () => {
  await edge?.close()
  if (workDir) await rm(workDir, { recursive: true, force: true })
})

type Backend = 'wasm' | 'native'
interface Setup {
  readonly arch: 'qwen3' | 'qwen3_5'
  readonly backend: Backend
}
const contextLength = 600

/** Called before each prompt chunk the device's session is fed (tests: abort during prefill). */
let beforePrefillChunk: ((tokenIds: readonly number[]) => void) | undefined
/** Awaited before each decode step (tests: hold an answer while another request waits its turn). */
let beforeDecodeStep: (() => Promise<void>) | undefined

function deviceClient({ arch, backend }: Setup, cacheDir = join(workDir, `cache-${arch}-${backend}`)) {
  return createClient(
    {
      model: join(workDir, arch),
      backend,
      policy: 'device-only',
      thresholds: { minDeviceTokensPerSecond: 0.1 },
    },
    {
      deviceHost: createRuntimeDeviceHost({
        store: createNodeStore({ cacheDir }),
        contextLength,
        wrapSession: (session) =>
          watchAppends(session, async (tokenIds, options) => {
            if (!isDecodeStep(tokenIds, options)) beforePrefillChunk?.(tokenIds)
            else await beforeDecodeStep?.()
          }),
      }),
    },
  )
}

async function collect(parts: AsyncIterable<StreamPart>): Promise<StreamPart[]> {
  const out: StreamPart[] = []
  for await (const part of parts) out.push(part)
  return out
}

const setups: Setup[] = [
  { arch: 'qwen3', backend: 'wasm' },
  { arch: 'qwen3_5', backend: 'wasm' },
  { arch: 'qwen3_5', backend: 'native' },
]
/**
 * A fresh run: the reference client's cache holds a conversation this one shares no turn with.
 * The engine resumes at any length a cache shares (its logits do not depend on the cut), so it may
 * reuse the template's opening both share (`<|im_start|>user\n`, three tokens); onnxruntime
 * resumes only at a turn, here none.
 */
async function freshRun(
  fresh: ReturnType<typeof deviceClient>,
  backend: Setup['backend'],
  request: ChatRequest,
) {
  await fresh.chat({ messages: [{ role: 'user', content: `unrelated ${Math.random()}` }], maxTokens: 1 })
  const result = await fresh.chat(request)
  expect(result.usage.cachedTokens ?? 0).toBeLessThanOrEqual(backend === 'wasm' ? 3 : 0)
  return result
}

describe.each(setups)('a chat on the device ($arch, $backend)', (setup) => {
  const { backend } = setup
  let ai: ReturnType<typeof deviceClient>
  let fresh: ReturnType<typeof deviceClient>
  beforeAll(async () => {
    ai = deviceClient(setup)
    fresh = deviceClient(setup)
  })
  afterAll(async () => {
    await ai?.dispose()
    await fresh?.dispose()
  })

  const reference = (request: ChatRequest) => freshRun(fresh, backend, request)

  it('30 turns toward the context limit: each resumed turn equals a fresh run; the limit is a ContextLengthError', async () => {
    const messages: ChatMessage[] = [{ role: 'system', content: 'You are terse.' }]
    let limit: unknown
    let resumed = 0
    for (let turn = 0; turn < 30; turn++) {
      messages.push({ role: 'user', content: `Turn ${turn}: tell me one more fact about rivers.` })
      const request: ChatRequest = {
        messages: [...messages],
        maxTokens: 12,
        ...(turn % 2 === 0 ? { temperature: 0 } : { temperature: 1, seed: 100 + turn }),
      }
      let got: Awaited<ReturnType<typeof ai.chat>>
      try {
        got = await ai.chat(request)
      } catch (error) {
        limit = error
        break
      }
      if ((got.usage.cachedTokens ?? 0) > 0) resumed++
      const want = await reference(request)
      expect(got.tokenIds, `turn ${turn}`).toEqual(want.tokenIds)
      messages.push({ role: 'assistant', content: got.text })
    }
    expect(resumed).toBeGreaterThan(3)
    expect(limit).toBeInstanceOf(ContextLengthError)
    expect(limit).toMatchObject({ code: 'context_length_exceeded', isRetryable: false })
    expect(String((limit as Error).message)).toMatch(/maxTokens|Shorten/)
    // Without maxTokens, the same prompt stops at the context's end ('length') or is refused.
    const open = await ai.chat({ messages, temperature: 0 }).catch((error: unknown) => error as Error)
    if (open instanceof Error) {
      expect(open).toBeInstanceOf(ContextLengthError)
    } else {
      expect(open.finishReason).toBe('length')
      expect(open.usage.promptTokens + open.usage.completionTokens).toBe(contextLength)
    }
  }, 240_000)

  it('regenerate, edit an earlier message, delete the last turn, two branches interleaved: each equals a fresh run', async () => {
    const base: ChatMessage[] = [
      { role: 'user', content: 'Name a colour.' },
      { role: 'assistant', content: 'Blue.' },
      { role: 'user', content: 'Name a fruit.' },
      { role: 'assistant', content: 'Pear.' },
      { role: 'user', content: 'Name an animal.' },
    ]
    const requests: ChatRequest[] = [
      { messages: base, temperature: 1, seed: 1, maxTokens: 10 },
      { messages: base, temperature: 1, seed: 2, maxTokens: 10 }, // regenerate
      {
        messages: [...base.slice(0, 2), { role: 'user', content: 'Name a vegetable.' }, ...base.slice(3)],
        temperature: 1,
        seed: 3,
        maxTokens: 10,
      }, // edit
      { messages: base.slice(0, 3), temperature: 0, maxTokens: 10 }, // delete the last turn
      { messages: base, temperature: 0, maxTokens: 10 },
    ]
    const branchA: ChatMessage[] = [{ role: 'user', content: 'Branch A: tell a joke.' }]
    const branchB: ChatMessage[] = [{ role: 'user', content: 'Branch B: tell a fact.' }]
    for (let round = 0; round < 3; round++) {
      for (const branch of [branchA, branchB]) {
        const request: ChatRequest = { messages: [...branch], temperature: 1, seed: round, maxTokens: 8 }
        const got = await ai.chat(request)
        expect(got.tokenIds).toEqual((await reference(request)).tokenIds)
        branch.push({ role: 'assistant', content: got.text }, { role: 'user', content: `More ${round}.` })
      }
    }
    for (const request of requests) {
      const got = await ai.chat(request)
      expect(got.tokenIds).toEqual((await reference(request)).tokenIds)
    }
  }, 240_000)

  it('stop mid-answer, then the next turn with the partial answer; abort in prefill; abort then at once a new request', async () => {
    const messages: ChatMessage[] = [{ role: 'user', content: 'Write a long story about the moon.' }]
    const controller = new AbortController()
    let shown = ''
    let finish: Extract<StreamPart, { type: 'finish' }> | undefined
    for await (const part of ai.stream({
      messages,
      temperature: 1,
      seed: 5,
      maxTokens: 40,
      signal: controller.signal,
    })) {
      if (part.type === 'text-delta') {
        shown += part.text
        if (shown.length > 10) controller.abort()
      }
      if (part.type === 'finish') finish = part
    }
    expect(finish?.finishReason).toBe('abort')
    expect(finish?.text).toBe(shown)
    const next: ChatRequest = {
      messages: [...messages, { role: 'assistant', content: shown }, { role: 'user', content: 'Go on.' }],
      temperature: 1,
      seed: 6,
      maxTokens: 10,
    }
    expect((await ai.chat(next)).tokenIds).toEqual((await reference(next)).tokenIds)

    // Abort during prefill of a long prompt, then at once a new request.
    // The prompt is fed in chunks cut at its turns: the abort comes between the second and third.
    const long: ChatRequest = {
      messages: [0, 1, 2, 3]
        .flatMap((i): ChatMessage[] => [
          { role: 'user', content: `${i} ${'word '.repeat(60)}` },
          { role: 'assistant', content: `answer ${i}` },
        ])
        .concat([{ role: 'user', content: 'Sum it up.' }]),
      maxTokens: 5,
      temperature: 0,
    }
    const prefill = new AbortController()
    let chunks = 0
    beforePrefillChunk = () => {
      if (++chunks === 3) prefill.abort()
    }
    try {
      await expect(ai.chat({ ...long, signal: prefill.signal })).rejects.toBeInstanceOf(AbortedError)
    } finally {
      beforePrefillChunk = undefined
    }
    expect(chunks).toBe(3)
    expect((await ai.chat(long)).tokenIds).toEqual((await reference(long)).tokenIds)
    const third = new AbortController()
    const aborted = ai.chat({ ...next, signal: third.signal })
    third.abort()
    await expect(aborted).rejects.toBeInstanceOf(AbortedError)
    expect((await ai.chat(next)).tokenIds).toEqual((await reference(next)).tokenIds)
  }, 240_000)

  it('many concurrent streams from one client: each its own answer, in order of the calls', async () => {
    const requests: ChatRequest[] = [0, 1, 2, 3, 4].map((i) => ({
      messages: [{ role: 'user', content: `Question ${i}: why is the sky blue?` }],
      temperature: 1,
      seed: i,
      maxTokens: 6,
    }))
    const streams = requests.map((request) => collect(ai.stream(request)))
    const results = await Promise.all(streams)
    for (const [i, parts] of results.entries()) {
      const finish = parts.at(-1)
      if (finish?.type !== 'finish') throw new Error(JSON.stringify(finish))
      expect(finish.tokenIds).toEqual((await reference(requests[i] as ChatRequest)).tokenIds)
    }
  }, 240_000)

  it('a stream aborted while it waits its turn ends at once and counts its prompt (it counted 0)', async () => {
    // The UI fired a second question while the first answer ran, then the user stopped it.
    await ai.prepare() // loaded and probed: the probe's decode is not held below
    let open!: () => void
    const gate = new Promise<void>((resolve) => {
      open = resolve
    })
    let held!: () => void
    const holding = new Promise<void>((resolve) => {
      held = resolve
    })
    beforeDecodeStep = () => {
      held()
      return gate
    }
    const running = collect(
      ai.stream({ messages: [{ role: 'user', content: 'A long one.' }], maxTokens: 20 }),
    )
    const request: ChatRequest = {
      messages: [{ role: 'user', content: 'Stopped while queued.' }],
      maxTokens: 4,
    }
    const controller = new AbortController()
    const queued = collect(ai.stream({ ...request, signal: controller.signal }))
    try {
      // The first answer is held in its decode: the second request waits its turn on the device.
      await holding
      await new Promise((resolve) => setTimeout(resolve, 50))
      controller.abort()
      const finish = (await queued).at(-1)
      expect(finish).toMatchObject({ type: 'finish', finishReason: 'abort', tokenIds: [] })
      if (finish?.type !== 'finish') throw new Error('no finish')
      expect(finish.usage.completionTokens).toBe(0)
      beforeDecodeStep = undefined
      open()
      expect((await running).at(-1)).toMatchObject({ type: 'finish' })
      expect(finish.usage.promptTokens).toBe((await ai.chat(request)).usage.promptTokens)
    } finally {
      beforeDecodeStep = undefined
      open()
    }
  }, 240_000)

  it('dispose() mid-stream, then a new client on the same cache folder answers as before', async () => {
    const cacheDir = join(workDir, `dispose-${setup.arch}-${backend}`)
    const first = deviceClient(setup, cacheDir)
    const request: ChatRequest = {
      messages: [{ role: 'user', content: 'Count to ten.' }],
      temperature: 0,
      maxTokens: 30,
    }
    const parts: StreamPart[] = []
    for await (const part of first.stream(request)) {
      parts.push(part)
      if (part.type === 'text-delta') void first.dispose()
    }
    expect(parts.at(-1)).toMatchObject({ type: 'finish', finishReason: 'abort' })
    const second = deviceClient(setup, cacheDir)
    try {
      expect((await second.chat(request)).tokenIds).toEqual((await reference(request)).tokenIds)
    } finally {
      await second.dispose()
    }
  }, 240_000)
})

type Client = ReturnType<typeof createClient>
type Reference = (
  request: ChatRequest,
) => Promise<{ tokenIds: readonly number[]; reasoning?: string | undefined }>

async function thinkingTurns(ai: Client, reference: Reference): Promise<void> {
  const messages: ChatMessage[] = [{ role: 'user', content: 'Think about cats.' }]
  for (const [turn, enableThinking] of [true, false, true, undefined, false, true].entries()) {
    const request: ChatRequest = {
      messages: [...messages],
      temperature: 1,
      seed: turn,
      maxTokens: 16,
      ...(enableThinking === undefined ? {} : { enableThinking }),
    }
    const got = await ai.chat(request)
    const want = await reference(request)
    expect(got.tokenIds, `turn ${turn}`).toEqual(want.tokenIds)
    expect(got.reasoning).toBe(want.reasoning)
    // A random-weight fixture rarely thinks by itself: the app sends reasoning back either way.
    messages.push(
      { role: 'assistant', content: got.text, reasoningContent: got.reasoning ?? `I weighed turn ${turn}.` },
      { role: 'user', content: `And now turn ${turn + 1}?` },
    )
  }
}

async function toolLoop(ai: Client, reference: Reference): Promise<void> {
  const tools = [
    {
      name: 'get_weather',
      description: 'Weather',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string', maxLength: 8 } },
        required: ['city'],
        additionalProperties: false,
      },
    },
    {
      name: 'get_time',
      description: 'Time',
      parameters: { type: 'object', properties: {}, additionalProperties: false },
    },
  ]
  const messages: ChatRequestMessage[] = [
    { role: 'user', content: 'What is the weather in Oslo and the time?' },
  ]
  for (let round = 0; round < 4; round++) {
    const request: ChatRequest = {
      messages: [...messages],
      tools,
      toolChoice: round < 3 ? 'required' : 'auto',
      temperature: 1,
      seed: round,
      maxTokens: 60,
    }
    const got = await ai.chat(request)
    const want = await reference(request)
    expect(got.tokenIds, `round ${round}`).toEqual(want.tokenIds)
    if (round === 3) break
    expect(got.finishReason).toBe('tool-calls')
    const calls = got.toolCalls ?? []
    expect(calls.length).toBeGreaterThan(0)
    messages.push({
      role: 'assistant',
      content: got.text === '' ? null : got.text,
      toolCalls: calls.map((call) => ({
        id: call.id,
        type: 'function' as const,
        function: { name: call.name, arguments: call.arguments },
      })),
    })
    for (const [index, call] of calls.entries()) {
      messages.push({
        role: 'tool',
        toolCallId: call.id,
        content: index === 0 && round === 1 ? 'Error: the weather service timed out.' : `{"ok":${round}}`,
      })
    }
  }
}

// Both template families (Qwen3's JSON calls, Qwen3.5's XML ones) on both engines, in two runs.
describe.each([setups[0], setups[2]] as Setup[])(
  'thinking and tools over turns ($arch, $backend)',
  (setup) => {
    let ai: ReturnType<typeof deviceClient>
    let fresh: ReturnType<typeof deviceClient>
    beforeAll(async () => {
      ai = deviceClient(setup)
      fresh = deviceClient(setup)
    })
    afterAll(async () => {
      await ai?.dispose()
      await fresh?.dispose()
    })
    const reference = (request: ChatRequest) => freshRun(fresh, setup.backend, request)

    it(
      'thinking switched on and off mid-conversation, earlier reasoning sent back: each equals a fresh run',
      () => thinkingTurns(ai, reference),
      240_000,
    )
    it(
      'a tool-call loop of several rounds (several calls, a tool error as text): each equals a fresh run',
      () => toolLoop(ai, reference),
      240_000,
    )
  },
)

describe('the same chat against a real local edge (qwen3, the engine on both sides)', () => {
  const setup: Setup = { arch: 'qwen3', backend: 'wasm' }
  let device: ReturnType<typeof deviceClient>
  let onEdge: ReturnType<typeof createClient>
  beforeAll(async () => {
    const { ort } = await loadOrtWebForNode()
    const store = createNodeStore({ cacheDir: join(workDir, 'edge-cache') })
    const modelHost = createModelHost({
      modelId: 'qwen3-tiny',
      load: async () =>
        loadEdgeModel({
          ort: ort as unknown as OrtModule,
          reader: storedPackageReader(await store.open(join(workDir, 'qwen3'))),
          modelId: 'qwen3-tiny',
          backend: 'wasm',
          engine: await loadEngineModule(),
          contextLength,
        }),
    })
    edge = await serveApp(createApp({ modelHost, log: () => {} }).fetch, 'qwen3-tiny')
    device = deviceClient(setup)
    onEdge = createClient({ policy: 'edge-only', edge: { url: edge.url } })
  })
  afterAll(async () => {
    await device?.dispose()
    await onEdge?.dispose()
  })

  it('turn after turn, with an abort and its partial answer sent back, the edge answers as the device; the limit reads alike', async () => {
    const messages: ChatMessage[] = [{ role: 'system', content: 'You are terse.' }]
    let deviceLimit: unknown
    let edgeLimit: unknown
    for (let turn = 0; turn < 30; turn++) {
      messages.push({ role: 'user', content: `Turn ${turn}: one more fact about rivers.` })
      const request: ChatRequest = { messages: [...messages], maxTokens: 14, temperature: 1, seed: turn }
      const [got, want] = await Promise.all([
        device.chat(request).catch((error: unknown) => error as Error),
        onEdge.chat(request).catch((error: unknown) => error as Error),
      ])
      if (got instanceof Error || want instanceof Error) {
        deviceLimit = got
        edgeLimit = want
        break
      }
      expect(want.tokenIds, `turn ${turn}`).toEqual(got.tokenIds)
      if (turn % 3 === 1) {
        // The user stopped this answer on the edge: the partial answer goes back as history.
        const controller = new AbortController()
        let shown = ''
        for await (const part of onEdge.stream({ ...request, signal: controller.signal })) {
          if (part.type === 'text-delta') {
            shown += part.text
            if (shown.length > 4) controller.abort()
          }
        }
        expect(got.text.startsWith(shown)).toBe(true)
        messages.push({ role: 'assistant', content: shown })
      } else {
        messages.push({ role: 'assistant', content: got.text })
      }
    }
    expect(deviceLimit).toBeInstanceOf(ContextLengthError)
    expect(edgeLimit).toBeInstanceOf(ContextLengthError)
    for (const error of [deviceLimit, edgeLimit]) {
      expect(error).toMatchObject({ code: 'context_length_exceeded', isRetryable: false })
    }
    expect((edgeLimit as ContextLengthError).param).toBe((deviceLimit as ContextLengthError).param)
    expect((edgeLimit as Error).message).toMatch(/maxTokens|[Ss]horten/)
  }, 240_000)

  it('maxTokens at exactly the room left is answered alike; one more is refused alike', async () => {
    const messages: ChatMessage[] = [{ role: 'user', content: 'word '.repeat(520) }]
    const open = await device.chat({ messages, temperature: 0, maxTokens: 1 })
    const room = contextLength - open.usage.promptTokens
    const request: ChatRequest = { messages, temperature: 1, seed: 3, maxTokens: room }
    const [got, want] = await Promise.all([device.chat(request), onEdge.chat(request)])
    expect(want.usage.promptTokens).toBe(got.usage.promptTokens)
    expect(want.tokenIds).toEqual(got.tokenIds)
    const over = { ...request, maxTokens: room + 1 }
    const errors = await Promise.all([
      device.chat(over).catch((e: unknown) => e),
      onEdge.chat(over).catch((e: unknown) => e),
    ])
    for (const error of errors) {
      expect(error).toBeInstanceOf(ContextLengthError)
      expect(error).toMatchObject({ code: 'context_length_exceeded', isRetryable: false, param: 'maxTokens' })
      expect((error as Error).message).toContain(String(room))
    }
    // And without maxTokens: to the context's end, alike.
    const [toEnd, toEndOnEdge] = await Promise.all([
      device.chat({ messages, temperature: 1, seed: 4 }),
      onEdge.chat({ messages, temperature: 1, seed: 4 }),
    ])
    expect(toEndOnEdge.tokenIds).toEqual(toEnd.tokenIds)
    expect(toEnd.finishReason).toBe(toEndOnEdge.finishReason)
  }, 240_000)

  it(
    'thinking switched mid-conversation, reasoning sent back: the edge answers each turn as the device',
    () => thinkingTurns(onEdge, (request) => device.chat(request)),
    240_000,
  )
  it(
    'a tool-call loop of several rounds: the edge answers each round as the device',
    () => toolLoop(onEdge, (request) => device.chat(request)),
    240_000,
  )

  it('concurrent streams on the edge: each answer its own, as the device gives it', async () => {
    const requests: ChatRequest[] = [0, 1, 2, 3].map((i) => ({
      messages: [
        { role: 'user', content: `Q${i}` },
        { role: 'assistant', content: `A${i}` },
        { role: 'user', content: `Follow-up ${i}` },
      ],
      temperature: 1,
      seed: 10 + i,
      maxTokens: 8,
    }))
    const results = await Promise.all(requests.map((request) => collect(onEdge.stream(request))))
    for (const [i, parts] of results.entries()) {
      const finish = parts.at(-1)
      if (finish?.type !== 'finish') throw new Error(JSON.stringify(finish))
      expect(finish.tokenIds).toEqual((await device.chat(requests[i] as ChatRequest)).tokenIds)
    }
  }, 240_000)
})
