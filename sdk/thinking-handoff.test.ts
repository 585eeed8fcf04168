// A thinking answer handed off mid-way, on real packages (the builder's seeded Qwen3.5 q8 and Qwen3
// fp32 fixtures) on the device's engine, with a real edge (the worker app over HTTP, the engine):
// the device fails at decode step k inside the reasoning, on the step that draws `</think>` and
// just after it; the edge continues. The packages carry the 'think-open' chat template
// (the generation prompt opens `<think>`, as Qwen3.5's does) or Qwen3's own (the model opens it).
// A random-weight model writes the tags only when pushed, so the requests bias their ids
// (logit_bias, applied alike on both sides); the uninterrupted answer at temperature 1 with a seed
// says where they land. Then the next turn, with the reasoning sent back as history, renders the
// same prompt (the reasoning dropped or kept, as the template says) on the device and the edge.
// Also: thinking off, stop strings and an abort around the reasoning's end.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../builder/fixtures/fixture.ts'
import { createRuntimeDeviceHost } from '../client-runtime/device-host/index.ts'
import type { OrtModule } from '../client-runtime/ort-session.ts'
import { storedPackageReader } from '../client-runtime/package-reader.ts'
import { createNodeStore } from '../client-runtime/store/node-store.ts'
import type { ChatMessage } from '../core/chat-template.ts'
import { BackendError, type OndeviceError } from '../core/errors.ts'
import type { ModelSession } from '../core/model-session.ts'
import type { FinishPart, StreamPart } from '../core/stream-parts.ts'
import { Tokenizer } from '../core/tokenizer.ts'
import { serveApp, type TestEdge } from '../test/sdk/test-edge.ts'
import { isDecodeStep, watchAppends } from '../test/support/watch-appends.ts'
import { loadEngineModule } from '../wasm/engine/node.ts'
import { loadOrtWebForNode } from '../wasm/node.ts'
import { createApp } from '../worker/app.ts'
import { loadEdgeModel } from '../worker/edge-model.ts'
import { createModelHost } from '../worker/model-host.ts'
import { createClient } from './client.ts'
import type { ChatRequest } from './options.ts'

type Arch = 'qwen3' | 'qwen3_5'
type Template = 'think-open' | 'qwen3'
type Package = `${Arch}-${Template}`
const dtypeOf: Record<Arch, 'fp32' | 'q8'> = { qwen3: 'fp32', qwen3_5: 'q8' }
const packages: readonly [Arch, Template][] = [
  ['qwen3_5', 'think-open'],
  ['qwen3', 'think-open'],
  ['qwen3', 'qwen3'],
]
/** `<think>` and `</think>` in the Qwen3 tokenizer the fixtures carry. */
const openThink = 151667
const closeThink = 151668
const maxTokens = 14

let workDir: string
const edges = new Map<Package, TestEdge>()
const tokenizers = new Map<Package, Tokenizer>()

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'ondevice-thinking-handoff-'))
  const { ort } = await loadOrtWebForNode()
  const engine = await loadEngineModule()
  for (const [arch, chatTemplate] of packages) {
    const name: Package = `${arch}-${chatTemplate}`
    const dir = join(workDir, name)
    await writeFixture({ arch, outDir: dir, dtype: dtypeOf[arch], chatTemplate })
    tokenizers.set(
      name,
      Tokenizer.fromFiles({
        tokenizerJson: await readFile(join(dir, 'tokenizer.json'), 'utf8'),
        tokenizerConfigJson: await readFile(join(dir, 'tokenizer_config.json'), 'utf8'),
      }),
    )
    const store = createNodeStore({ cacheDir: join(workDir, `edge-cache-${name}`) })
    const modelHost = createModelHost({
      modelId: name,
      load: async () =>
        loadEdgeModel({
          ort: ort as unknown as OrtModule,
          reader: storedPackageReader(await store.open(dir)),
          modelId: name,
          backend: 'wasm',
          engine,
          dtype: dtypeOf[arch],
        }),
    })
    edges.set(name, await serveApp(createApp({ modelHost, log: () => {} }).fetch, name))
    // Loaded now, not by the first handoff (whose connect timeout is short).
    await modelHost.load()
  }
}, 120_000)

afterAll(async () => {
  for (const edge of edges.values()) await edge.close()
  if (workDir) await rm(workDir, { recursive: true, force: true })
})

async function collect(parts: AsyncIterable<StreamPart>): Promise<StreamPart[]> {
  const out: StreamPart[] = []
  for await (const part of parts) out.push(part)
  return out
}

function finishOf(parts: readonly StreamPart[]) {
  const finish = parts.at(-1)
  if (finish?.type !== 'finish') throw new Error(`no finish part: ${JSON.stringify(parts.at(-1))}`)
  return finish
}

/** The answer as a reader sees it: each reasoning or text delta in order, with its token ids. */
function deltasOf(parts: readonly StreamPart[]) {
  return parts.flatMap((part) =>
    part.type === 'reasoning-delta' || part.type === 'text-delta'
      ? [{ type: part.type, text: part.text, tokenIds: part.tokenIds }]
      : [],
  )
}

/** What usage says alike on every route (not the timings, the route, nor what was cached). */
function countsOf(usage: { promptTokens: number; completionTokens: number; reasoningTokens?: number }) {
  return {
    promptTokens: usage.promptTokens,
    completionTokens: usage.completionTokens,
    reasoningTokens: usage.reasoningTokens,
  }
}

let clients = 0
/** A device client whose session fails its k-th decode step once armed; `edgeUrl` its edge. */
function deviceClient(name: Package, edgeUrl = (edges.get(name) as TestEdge).url) {
  const arch = name.startsWith('qwen3_5') ? 'qwen3_5' : 'qwen3'
  const control: { failAtStep?: number; steps: number } = { steps: 0 }
  const client = createClient(
    {
      model: join(workDir, name),
      backend: 'wasm',
      dtype: dtypeOf[arch],
      edge: { url: edgeUrl, connectTimeoutMs: 10_000 },
      thresholds: { minDeviceTokensPerSecond: 0.1 },
    },
    {
      deviceHost: createRuntimeDeviceHost({
        store: createNodeStore({ cacheDir: join(workDir, `cache-${name}-${clients++}`) }),
        wrapSession: (session: ModelSession) =>
          watchAppends(session, (tokenIds, options) => {
            if (control.failAtStep === undefined || !isDecodeStep(tokenIds, options)) return
            if (++control.steps < control.failAtStep) return
            control.failAtStep = undefined
            throw new BackendError('backend_failed', `Failed on purpose at decode step ${control.steps}.`, {
              isRetryable: true,
            })
          }),
      }),
    },
  )
  return {
    client,
    /** Loads and probes the model first (the probe's decode steps are not the answer's), then arms. */
    async arm(k: number) {
      await client.chat({ messages: [{ role: 'user', content: 'warm up' }], maxTokens: 1 })
      control.steps = 0
      control.failAtStep = k
    },
  }
}

const firstTurn: ChatMessage[] = [
  { role: 'system', content: 'You think, then answer briefly.' },
  { role: 'user', content: 'What is six times seven?' },
]

/** Where the answer's `</think>` ends (its last token's index), -1 if it has none (or no opening where needed). */
type CloseTagAt = (tokenIds: readonly number[]) => number
/** `</think>` as the tokenizer's one token. */
const closeToken: CloseTagAt = (ids) => ids.indexOf(closeThink)
/** `</think>` written in three tokens, `</`, `think`, `>` (522, 26865, 29): its text closes it too. */
const closeInPieces: CloseTagAt = (ids) => {
  for (let at = 2; at < ids.length; at++)
    if (ids[at - 2] === 522 && ids[at - 1] === 26865 && ids[at] === 29) return at
  return -1
}
/** The model opened `<think>` itself (its first token), then closed it. */
const openedThenClosed: CloseTagAt = (ids) => (ids[0] === openThink ? ids.indexOf(closeThink) : -1)

/**
 * The first seed whose uninterrupted answer closes its think block (or, thinking off, writes
 * `</think>` as text) between the 4th and the 9th token, so k can fall before, on and after it.
 */
async function answerWithCloseTag(
  name: Package,
  extra: Partial<ChatRequest>,
  closeAtOf: CloseTagAt,
  logitBias: Readonly<Record<number, number>>,
) {
  const { client } = deviceClient(name)
  try {
    for (let seed = 1; seed <= 60; seed++) {
      const request: ChatRequest = {
        messages: firstTurn,
        temperature: 1,
        seed,
        maxTokens,
        logitBias,
        ...extra,
      }
      const parts = await collect(client.stream(request))
      const finish = finishOf(parts)
      const at = closeAtOf(finish.tokenIds)
      if (finish.usage.route === 'device' && at >= 3 && at <= 8 && finish.tokenIds.length === maxTokens)
        return { request, parts, finish, closeAt: at }
    }
  } finally {
    await client.dispose()
  }
  throw new Error(`no seed in 1..60 closes the think block at tokens 3..8 on ${name}`)
}

interface Case {
  readonly name: string
  readonly pkg: Package
  readonly closeAtOf: CloseTagAt
  readonly logitBias: Readonly<Record<number, number>>
  /** Also checks error.partialAnswer with the edge down (once per kind of tag is enough). */
  readonly partial?: boolean
}
const cases: readonly Case[] = [
  {
    name: 'Qwen3.5, the prompt opens <think>',
    pkg: 'qwen3_5-think-open',
    closeAtOf: closeToken,
    logitBias: { [closeThink]: 8 },
    partial: true,
  },
  {
    name: 'Qwen3, the prompt opens <think>',
    pkg: 'qwen3-think-open',
    closeAtOf: closeToken,
    logitBias: { [closeThink]: 8 },
  },
  {
    name: "Qwen3's template, the model opens <think>",
    pkg: 'qwen3-qwen3',
    closeAtOf: openedThenClosed,
    // Both biased, `<think>` must win the first draw and `</think>` a later one.
    logitBias: { [openThink]: 10, [closeThink]: 12 },
  },
  {
    // The split holds `</` and `</think` back until the text shows whether the tag closes.
    name: 'Qwen3.5, </think> written as `</`, `think`, `>`',
    pkg: 'qwen3_5-think-open',
    closeAtOf: closeInPieces,
    logitBias: { 522: 11, 26865: 11, 29: 11 },
    partial: true,
  },
]

describe.each(cases)(
  'a thinking answer across a handoff ($name)',
  ({ pkg, closeAtOf, logitBias, partial }) => {
    let whole: Awaited<ReturnType<typeof answerWithCloseTag>>
    beforeAll(async () => {
      whole = await answerWithCloseTag(pkg, {}, closeAtOf, logitBias)
      expect(whole.finish.reasoning?.length).toBeGreaterThan(0)
      // The think block, its closing tag included, and not a token more (the opening one too when
      // the model wrote it).
      expect(whole.finish.usage.reasoningTokens).toBe(whole.closeAt + 1)
      expect(whole.finish.text.length).toBeGreaterThan(0)
    }, 60_000)

    // k tokens done on the device, relative to the tag's last token: inside the reasoning, on the
    // step that draws the tag (0), just after it (the edge's first token is the reply's).
    const at = (offset: number) => ({
      offset,
      where: offset === 0 ? 'on' : offset < 0 ? `${-offset} before` : `${offset} after`,
    })
    it.each([-2, 0, 1].map(at))(
      'k $where the tag: the same deltas, reasoning/text split, usage and tokens as the uninterrupted answer',
      async ({ offset }) => {
        const k = whole.closeAt + offset
        const { client, arm } = deviceClient(pkg)
        try {
          await arm(k)
          const parts = await collect(client.stream(whole.request))
          expect(parts.filter((part) => part.type === 'handoff')).toMatchObject([{ completedTokens: k }])
          const finish = finishOf(parts)
          expect(finish.usage.route).toBe('device+edge')
          expect(finish.tokenIds).toEqual(whole.finish.tokenIds)
          expect(finish.reasoning).toBe(whole.finish.reasoning)
          expect(finish.text).toBe(whole.finish.text)
          expect(countsOf(finish.usage)).toEqual(countsOf(whole.finish.usage))
          // Every delta as the uninterrupted stream had it: no character lost, doubled or moved to
          // the other side, each token id once.
          expect(deltasOf(parts)).toEqual(deltasOf(whole.parts))
        } finally {
          await client.dispose()
        }
      },
      60_000,
    )

    // Defined only for the cases that carry it (no skipped tests in the report).
    if (partial)
      it.each([0, 1].map(at))(
        'k $where the tag, the edge down: error.partialAnswer is what the stream showed',
        async ({ offset }) => {
          const k = whole.closeAt + offset
          const { client, arm } = deviceClient(pkg, 'http://127.0.0.1:9')
          try {
            await arm(k)
            const error = (await client.chat(whole.request).then(
              () => undefined,
              (caught: unknown) => caught,
            )) as OndeviceError | undefined
            // What stream() showed before its error (docs/sdk.md): the k tokens done, but for those at
            // the end whose text was not shown yet (`</think>` itself, which shows none, or the start of
            // a tag written in pieces, held until it is known), whose ids ride with the next delta.
            const shown = error?.partialAnswer?.tokenIds ?? []
            const held = whole.finish.tokenIds[k - 1] === closeThink ? 1 : 0
            if (closeAtOf === closeInPieces) {
              expect(shown).toEqual(whole.finish.tokenIds.slice(0, shown.length))
              expect(shown.length).toBeGreaterThanOrEqual(Math.min(k, whole.closeAt - 2))
            } else expect(shown).toEqual(whole.finish.tokenIds.slice(0, k - held))
            const reasoning = error?.partialAnswer?.reasoning ?? ''
            expect(whole.finish.reasoning?.startsWith(reasoning)).toBe(true)
            // Once the tag was drawn the reasoning is whole, its last piece no longer held back.
            if (offset > 0) expect(reasoning).toBe(whole.finish.reasoning)
            expect(error?.partialAnswer?.text).toBe('')
          } finally {
            await client.dispose()
          }
        },
        60_000,
      )
  },
)

describe.each(['qwen3_5-think-open', 'qwen3-qwen3'] as const)('thinking off across a handoff (%s)', (pkg) => {
  it('enableThinking false: no reasoning, `</think>` written as text, and a handoff on it joins exactly', async () => {
    const off = await answerWithCloseTag(pkg, { enableThinking: false }, closeToken, { [closeThink]: 8 })
    expect(off.finish.reasoning).toBeUndefined()
    expect(off.finish.usage.reasoningTokens).toBe(0)
    expect(off.finish.text).toContain('</think>')
    for (const k of pkg === 'qwen3_5-think-open' ? [off.closeAt, off.closeAt + 1] : [off.closeAt]) {
      const { client, arm } = deviceClient(pkg)
      try {
        await arm(k)
        const parts = await collect(client.stream(off.request))
        const finish = finishOf(parts)
        expect(finish.usage.route, `k=${k}`).toBe('device+edge')
        expect(finish.tokenIds).toEqual(off.finish.tokenIds)
        expect(finish.text).toBe(off.finish.text)
        expect(finish.reasoning).toBeUndefined()
        expect(countsOf(finish.usage)).toEqual(countsOf(off.finish.usage))
        expect(deltasOf(parts)).toEqual(deltasOf(off.parts))
      } finally {
        await client.dispose()
      }
    }
  }, 60_000)
})

describe.each(['qwen3_5-think-open', 'qwen3-think-open'] as const)("the next turn's prompt (%s)", (pkg) => {
  it('with the reasoning sent back, dropped or kept as the template says: the same on the device and the edge', async () => {
    const first = await answerWithCloseTag(pkg, {}, closeToken, { [closeThink]: 8 })
    const answer = { text: first.finish.text, reasoning: first.finish.reasoning as string }
    const assistant = { role: 'assistant' as const, content: answer.text, reasoningContent: answer.reasoning }
    const call = {
      id: 'call_1',
      type: 'function' as const,
      function: { name: 'lookup', arguments: '{"n":42}' },
    }
    const next = { role: 'user' as const, content: 'And 6 × 8?' }
    const histories: Record<string, { messages: ChatMessage[]; kept: boolean; enableThinking?: boolean }> = {
      // A later user message: the template drops the earlier answer's reasoning.
      'a user follows': { messages: [...firstTurn, assistant, next], kept: false },
      // The same, the reasoning inline in the content, as a client without reasoningContent sends it.
      'a user follows, the reasoning inline': {
        messages: [
          ...firstTurn,
          { role: 'assistant', content: `<think>\n${answer.reasoning}\n</think>\n\n${answer.text}` },
          next,
        ],
        kept: false,
      },
      // The answer called a tool and the tool answered: its reasoning stays in the prompt.
      'a tool result follows': {
        messages: [
          ...firstTurn,
          { ...assistant, toolCalls: [call] },
          { role: 'tool', toolCallId: 'call_1', content: '42' },
        ],
        kept: true,
      },
      'a user follows, thinking off': {
        messages: [...firstTurn, assistant, next],
        kept: false,
        enableThinking: false,
      },
    }
    const tokenizer = tokenizers.get(pkg) as Tokenizer
    const device = deviceClient(pkg).client
    const edgeOnly = createClient({ policy: 'edge-only', edge: { url: (edges.get(pkg) as TestEdge).url } })
    try {
      for (const [name, { messages, kept, enableThinking }] of Object.entries(histories)) {
        const prompt = tokenizer.encodeChat(messages, enableThinking === undefined ? {} : { enableThinking })
        const rendered = tokenizer.decode(prompt)
        expect(rendered.includes(answer.reasoning.trim()), name).toBe(kept)
        expect(
          rendered.endsWith(enableThinking === false ? '<think>\n\n</think>\n\n' : '<think>\n'),
          name,
        ).toBe(true)
        const request = {
          messages,
          temperature: 1,
          seed: 7,
          maxTokens: 8,
          ...(enableThinking === undefined ? {} : { enableThinking }),
        }
        const onDevice = await device.chat(request)
        const onEdge = await edgeOnly.chat(request)
        expect([onDevice.route, onEdge.route]).toEqual(['device', 'edge'])
        expect(onDevice.usage.promptTokens, name).toBe(prompt.length)
        expect(onEdge.usage.promptTokens, name).toBe(prompt.length)
        expect(onEdge.tokenIds, name).toEqual(onDevice.tokenIds)
        expect(onEdge.reasoning, name).toBe(onDevice.reasoning)
        expect(onEdge.text, name).toBe(onDevice.text)
      }
    } finally {
      await device.dispose()
      await edgeOnly.dispose()
    }
  }, 60_000)
})

describe('stop strings in a thinking answer across a handoff (qwen3_5-think-open)', () => {
  it('one over a token boundary of the reply cuts there, one in the reasoning cuts nothing, the handoff before the cut and on it', async () => {
    const pkg = 'qwen3_5-think-open'
    const free = await answerWithCloseTag(pkg, {}, closeToken, { [closeThink]: 8 })
    const tokenizer = tokenizers.get(pkg) as Tokenizer
    const ids = free.finish.tokenIds
    // The end of one token's text and the start of the next one's, two tokens into the reply:
    // the device holds back the first half (it may start a stop string); the edge must see it.
    const at = free.closeAt + 3
    const before = tokenizer.decode(ids.slice(free.closeAt + 1, at))
    const upTo = tokenizer.decode(ids.slice(free.closeAt + 1, at + 1))
    const inReply = `${before.slice(-2)}${upTo.slice(before.length, before.length + 2)}`
    // Reasoning is not content: a stop string found there cuts nothing (docs/sdk.md).
    const inReasoning = (free.finish.reasoning as string).slice(1, 4)
    expect(inReply.length).toBeGreaterThanOrEqual(3)
    expect(inReasoning).toHaveLength(3)
    const request = { ...free.request, stop: [inReasoning, inReply] }
    const { client: plain } = deviceClient(pkg)
    const parts = await collect(plain.stream(request))
    await plain.dispose()
    const whole = finishOf(parts)
    expect(whole.finishReason).toBe('stop')
    expect(whole.reasoning).toBe(free.finish.reasoning)
    expect(whole.text).toBe(free.finish.text.slice(0, free.finish.text.indexOf(inReply)))
    expect(whole.tokenIds).toEqual(ids.slice(0, at + 1))
    for (const k of [at - 2, at - 1, at]) {
      const { client, arm } = deviceClient(pkg)
      try {
        await arm(k)
        const handed = await collect(client.stream(request))
        const finish = finishOf(handed)
        expect(finish.usage.route, `k=${k}`).toBe('device+edge')
        expect(finish.tokenIds, `k=${k}`).toEqual(whole.tokenIds)
        expect(finish.text, `k=${k}`).toBe(whole.text)
        expect(finish.reasoning, `k=${k}`).toBe(whole.reasoning)
        expect(finish.finishReason, `k=${k}`).toBe('stop')
        expect(countsOf(finish.usage), `k=${k}`).toEqual(countsOf(whole.usage))
        expect(deltasOf(handed), `k=${k}`).toEqual(deltasOf(parts))
      } finally {
        await client.dispose()
      }
    }
  }, 60_000)
})

describe("an abort at the reply's first delta (qwen3_5-think-open)", () => {
  it('on the device, on the edge and after a handoff inside the reasoning: nothing after it, the think block counted whole', async () => {
    const pkg = 'qwen3_5-think-open'
    const free = await answerWithCloseTag(pkg, {}, closeToken, { [closeThink]: 8 })
    // The reply's first delta carries `</think>`'s id too (it showed no text of its own).
    const shown = free.finish.tokenIds.slice(0, free.closeAt + 2)
    const routes = {
      device: deviceClient(pkg),
      edge: {
        client: createClient({ policy: 'edge-only', edge: { url: (edges.get(pkg) as TestEdge).url } }),
        arm: async () => {},
      },
      'device+edge': deviceClient(pkg),
    }
    for (const [route, { client, arm }] of Object.entries(routes)) {
      if (route === 'device+edge') await arm(free.closeAt - 2)
      const controller = new AbortController()
      const parts: StreamPart[] = []
      let abortedAt = 0
      for await (const part of client.stream({ ...free.request, signal: controller.signal })) {
        parts.push(part)
        if (part.type === 'text-delta' && abortedAt === 0) {
          abortedAt = parts.length
          controller.abort()
        }
      }
      await client.dispose()
      expect(
        parts.slice(abortedAt).map((part) => part.type),
        route,
      ).toEqual(['finish'])
      const finish = finishOf(parts)
      expect(finish.finishReason, route).toBe('abort')
      expect(finish.usage.route, route).toBe(route)
      expect(finish.tokenIds, route).toEqual(shown)
      expect(finish.reasoning, route).toBe(free.finish.reasoning)
      expect(free.finish.text.startsWith(finish.text) && finish.text !== '', route).toBe(true)
      expect(finish.usage.completionTokens, route).toBe(shown.length)
      expect(finish.usage.reasoningTokens, route).toBe(free.closeAt + 1)
    }
  }, 60_000)
})

describe('tools under a template that opens <think> (qwen3_5-think-open), across a handoff', () => {
  const pkg = 'qwen3_5-think-open'
  const tools = [
    {
      name: 'get_weather',
      parameters: {
        type: 'object',
        properties: { city: { enum: ['Oslo', 'Lima'] }, days: { type: 'integer' } },
        required: ['city', 'days'],
        additionalProperties: false,
      },
    },
  ]

  it.each([
    ['required', 'required' as const],
    ['named', { name: 'get_weather' }],
  ])(
    'a forced call (%s) starts the answer: no reasoning, none counted, on the device, the edge and after a handoff inside the call',
    async (_, toolChoice) => {
      // The call is the answer from its first token (the grammar opens it at once), so the open
      // think block holds nothing: its tokens counted as reasoning (19 of 37) on the old code.
      const request: ChatRequest = {
        messages: firstTurn,
        temperature: 1,
        seed: 3,
        maxTokens: 40,
        tools,
        toolChoice,
      }
      const { client: device } = deviceClient(pkg)
      const parts = await collect(device.stream(request))
      await device.dispose()
      const whole = finishOf(parts)
      expect(whole.toolCalls).toHaveLength(1)
      expect(whole.reasoning).toBeUndefined()
      expect(whole.usage.reasoningTokens).toBe(0)
      const edgeOnly = createClient({ policy: 'edge-only', edge: { url: (edges.get(pkg) as TestEdge).url } })
      const onEdge = await edgeOnly.chat(request).finally(() => edgeOnly.dispose())
      expect(onEdge.tokenIds).toEqual(whole.tokenIds)
      expect(onEdge.usage.reasoningTokens).toBe(0)
      for (const k of [3, 12]) {
        const { client, arm } = deviceClient(pkg)
        try {
          await arm(k)
          const finish = finishOf(await collect(client.stream(request)))
          expect(finish.usage.route, `k=${k}`).toBe('device+edge')
          expect(finish.tokenIds, `k=${k}`).toEqual(whole.tokenIds)
          expect(
            finish.toolCalls?.map((call) => [call.name, call.arguments]),
            `k=${k}`,
          ).toEqual(whole.toolCalls?.map((call) => [call.name, call.arguments]))
          expect(finish.reasoning, `k=${k}`).toBeUndefined()
          expect(countsOf(finish.usage), `k=${k}`).toEqual(countsOf(whole.usage))
        } finally {
          await client.dispose()
        }
      }
    },
    60_000,
  )

  it("toolChoice 'auto', a call opened inside the open think block: its tokens are the call, not reasoning; on the edge and across a handoff alike", async () => {
    // `<tool_call>` biased: the first seed whose answer opens a whole call after a few reasoning
    // tokens. On the old code the call's markup counted as reasoning (28 of a call's tokens).
    const toolCallOpen = 151657
    let found: { request: ChatRequest; whole: FinishPart; callAt: number } | undefined
    const { client: device } = deviceClient(pkg)
    for (let seed = 1; seed <= 40 && !found; seed++) {
      const request: ChatRequest = {
        messages: firstTurn,
        temperature: 1,
        seed,
        maxTokens: 40,
        tools,
        toolChoice: 'auto',
        logitBias: { [toolCallOpen]: 8 },
      }
      const whole = finishOf(await collect(device.stream(request)))
      const callAt = whole.tokenIds.indexOf(toolCallOpen)
      if (callAt >= 2 && callAt <= 8 && whole.toolCalls?.length === 1) found = { request, whole, callAt }
    }
    await device.dispose()
    if (!found) throw new Error('no seed in 1..40 opens a whole call at tokens 2..8')
    const { request, whole, callAt } = found
    expect(whole.reasoning?.length).toBeGreaterThan(0)
    expect(whole.usage.reasoningTokens).toBe(callAt)
    const edgeOnly = createClient({ policy: 'edge-only', edge: { url: (edges.get(pkg) as TestEdge).url } })
    const onEdge = await edgeOnly.chat(request).finally(() => edgeOnly.dispose())
    expect(onEdge.tokenIds).toEqual(whole.tokenIds)
    expect(onEdge.usage.reasoningTokens).toBe(callAt)
    for (const k of [callAt - 1, callAt + 3]) {
      const { client, arm } = deviceClient(pkg)
      try {
        await arm(k)
        const finish = finishOf(await collect(client.stream(request)))
        expect(finish.usage.route, `k=${k}`).toBe('device+edge')
        expect(finish.tokenIds, `k=${k}`).toEqual(whole.tokenIds)
        expect(finish.reasoning, `k=${k}`).toBe(whole.reasoning)
        expect(
          finish.toolCalls?.map((call) => [call.name, call.arguments]),
          `k=${k}`,
        ).toEqual(whole.toolCalls?.map((call) => [call.name, call.arguments]))
        expect(countsOf(finish.usage), `k=${k}`).toEqual(countsOf(whole.usage))
      } finally {
        await client.dispose()
      }
    }
  }, 60_000)

  it("toolChoice 'none': the answer is free, so its reasoning is apart from the text as without tools, and across a handoff", async () => {
    // The old code took any constraint with toolChoice 'none' for a structured answer and showed
    // the reasoning (here the whole think block up to `</think>`) as text.
    const whole = await answerWithCloseTag(pkg, { tools, toolChoice: 'none' }, closeToken, {
      [closeThink]: 8,
    })
    expect(whole.finish.reasoning?.length).toBeGreaterThan(0)
    expect(whole.finish.usage.reasoningTokens).toBe(whole.closeAt + 1)
    expect(whole.finish.text).not.toContain(whole.finish.reasoning as string)
    for (const k of [whole.closeAt - 2, whole.closeAt, whole.closeAt + 1]) {
      const { client, arm } = deviceClient(pkg)
      try {
        await arm(k)
        const parts = await collect(client.stream(whole.request))
        const finish = finishOf(parts)
        expect(finish.usage.route, `k=${k}`).toBe('device+edge')
        expect(finish.tokenIds, `k=${k}`).toEqual(whole.finish.tokenIds)
        expect(finish.reasoning, `k=${k}`).toBe(whole.finish.reasoning)
        expect(finish.text, `k=${k}`).toBe(whole.finish.text)
        expect(countsOf(finish.usage), `k=${k}`).toEqual(countsOf(whole.finish.usage))
        expect(deltasOf(parts), `k=${k}`).toEqual(deltasOf(whole.parts))
      } finally {
        await client.dispose()
      }
    }
  }, 60_000)
})
