// A chat app's next turn after a handoff, on real packages (the builder's seeded Qwen3 fp32 and
// Qwen3.5 q8 fixtures) on the device's engine, with a real edge (the worker app over HTTP, the
// engine): the device fails at token k mid-answer, the edge continues, and the app sends the joined
// answer back as history. The device's cache then holds the conversation only up to token k (the
// answer's rest came from the edge); the next turn on the device must equal a cold run of the same
// conversation, and report as cached only what it did not feed.
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
import { BackendError } from '../core/errors.ts'
import type { ModelSession } from '../core/model-session.ts'
import type { StreamPart } from '../core/stream-parts.ts'
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
const dtypeOf: Record<Arch, 'fp32' | 'q8'> = { qwen3: 'fp32', qwen3_5: 'q8' }

let workDir: string
const edges = new Map<Arch, TestEdge>()

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'ondevice-handoff-next-turn-'))
  const { ort } = await loadOrtWebForNode()
  const engine = await loadEngineModule()
  for (const arch of ['qwen3', 'qwen3_5'] as const) {
    const dir = join(workDir, arch)
    await writeFixture({ arch, outDir: dir, dtype: dtypeOf[arch] })
    const store = createNodeStore({ cacheDir: join(workDir, `edge-cache-${arch}`) })
    const modelHost = createModelHost({
      modelId: arch,
      load: async () =>
        loadEdgeModel({
          ort: ort as unknown as OrtModule,
          reader: storedPackageReader(await store.open(dir)),
          modelId: arch,
          backend: 'wasm',
          engine,
          dtype: dtypeOf[arch],
        }),
    })
    edges.set(arch, await serveApp(createApp({ modelHost, log: () => {} }).fetch, arch))
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

/** A device client whose session fails its k-th decode step once armed, and counts what it is fed. */
function deviceClient(arch: Arch, name: string) {
  const control: { failAtStep?: number; steps: number; fed: number; fedSinceReset: number } = {
    steps: 0,
    fed: 0,
    fedSinceReset: 0,
  }
  const client = createClient(
    {
      model: join(workDir, arch),
      backend: 'wasm',
      dtype: dtypeOf[arch],
      edge: { url: (edges.get(arch) as TestEdge).url },
      thresholds: { minDeviceTokensPerSecond: 0.1 },
    },
    {
      deviceHost: createRuntimeDeviceHost({
        store: createNodeStore({ cacheDir: join(workDir, `cache-${arch}-${name}`) }),
        wrapSession: (session: ModelSession) =>
          watchAppends(
            session,
            (tokenIds, options) => {
              if (control.failAtStep !== undefined && isDecodeStep(tokenIds, options)) {
                if (++control.steps >= control.failAtStep) {
                  control.failAtStep = undefined
                  throw new BackendError(
                    'backend_failed',
                    `Failed on purpose at decode step ${control.steps}.`,
                    {
                      isRetryable: true,
                    },
                  )
                }
              }
              control.fed += tokenIds.length
              control.fedSinceReset += tokenIds.length
            },
            { onReset: () => (control.fedSinceReset = 0) },
          ),
      }),
    },
  )
  return { client, control }
}

const schema = {
  type: 'object',
  properties: { name: { type: 'string' }, count: { type: 'integer' } },
  required: ['name', 'count'],
  additionalProperties: false,
} as const

const tools = [
  {
    name: 'get_weather',
    description: 'The weather in a city.',
    parameters: {
      type: 'object',
      properties: { city: { enum: ['Oslo', 'Lima', 'Perth'] }, days: { type: 'integer' } },
      required: ['city', 'days'],
      additionalProperties: false,
    },
  },
]

type Kind = 'text' | 'json' | 'tool'
const kinds: Record<Kind, Partial<ChatRequest>> = {
  text: {},
  json: { responseFormat: { type: 'json_schema', schema } },
  // A forced call: k past its opening markup fails inside the call's arguments.
  tool: { tools, toolChoice: 'required', maxTokens: 64 },
}
const steps: Record<Kind, readonly number[]> = {
  text: [1, 3, 7],
  json: [1, 3, 7],
  tool: [9, 14, 20],
}

/** The assistant's turn as a chat app sends it back: its text, reasoning or calls. */
function asHistory(answer: {
  readonly text: string
  readonly reasoning?: string | undefined
  readonly toolCalls?: readonly { id: string; name: string; arguments: string }[] | undefined
}): ChatMessage[] {
  if (answer.toolCalls !== undefined && answer.toolCalls.length > 0)
    return [
      {
        role: 'assistant',
        content: null,
        toolCalls: answer.toolCalls.map((call) => ({
          id: call.id,
          type: 'function' as const,
          function: { name: call.name, arguments: call.arguments },
        })),
      },
      ...answer.toolCalls.map((call) => ({
        role: 'tool' as const,
        toolCallId: call.id,
        content: '{"sunny":true}',
      })),
    ] as ChatMessage[]
  return [
    {
      role: 'assistant',
      content: answer.text,
      ...(answer.reasoning === undefined ? {} : { reasoningContent: answer.reasoning }),
    },
    { role: 'user', content: 'And another one?' },
  ]
}

describe.each([
  ['qwen3', 'text'],
  ['qwen3_5', 'text'],
  ['qwen3_5', 'json'],
  ['qwen3_5', 'tool'],
] as const)('a next turn on the device after a handoff (%s, %s)', (arch, kind: Kind) => {
  it.each(steps[kind])(
    'k = %i: the handoff joins to the device answer; the next turn equals a cold run',
    async (k) => {
      const sampling = { temperature: 1, seed: 11 + k, maxTokens: 14, ...kinds[kind] }
      const firstTurn: ChatMessage[] = [
        { role: 'system', content: 'You answer briefly.' },
        { role: 'user', content: `Name a river and how many bridges it has (${k}).` },
      ]
      const { client, control } = deviceClient(arch, `handoff-${kind}-${k}`)
      const cold = deviceClient(arch, `cold-${kind}-${k}`)
      try {
        const uninterrupted = await cold.client.chat({ messages: firstTurn, ...sampling })
        expect(uninterrupted.route).toBe('device')
        if (kind === 'tool') {
          expect(uninterrupted.toolCalls).toHaveLength(1)
          expect(uninterrupted.tokenIds.length).toBeGreaterThan(Math.max(...steps.tool) + 2)
        }
        // Loaded and probed first (the probe's decode steps are not the answer's).
        await client.chat({ messages: [{ role: 'user', content: 'warm up' }], maxTokens: 1 })
        control.steps = 0
        control.failAtStep = k
        const parts = await collect(client.stream({ messages: firstTurn, ...sampling }))
        expect(
          parts.find((part) => part.type === 'handoff'),
          JSON.stringify(parts.filter((p) => p.type !== 'text-delta')),
        ).toMatchObject({ completedTokens: k })
        const first = finishOf(parts)
        expect(first.usage.route).toBe('device+edge')
        expect(first.tokenIds).toEqual(uninterrupted.tokenIds)
        expect(first.text).toBe(uninterrupted.text)
        expect(first.reasoning).toBe(uninterrupted.reasoning)
        expect(first.usage.reasoningTokens).toBe(uninterrupted.usage.reasoningTokens)
        expect(first.toolCalls?.map((call) => [call.name, call.arguments])).toEqual(
          uninterrupted.toolCalls?.map((call) => [call.name, call.arguments]),
        )

        const secondTurn: ChatMessage[] = [...firstTurn, ...asHistory(first)]
        const next = { messages: secondTurn, ...sampling, seed: 99 }
        // The reference: a client whose cache shares no turn with this conversation.
        const reference = deviceClient(arch, `reference-${kind}-${k}`)
        const want = await reference.client.chat(next).finally(() => reference.client.dispose())
        expect(want.usage.cachedTokens).toBe(0)

        control.fed = 0
        const got = await client.chat(next)
        expect(got.route).toBe('device')
        expect(got.tokenIds).toEqual(want.tokenIds)
        expect(got.usage.promptTokens).toBe(want.usage.promptTokens)
        // A model that failed mid-answer is dropped and loaded again (its cache is not trusted), so
        // the turn after the handoff runs cold, and says so: nothing cached, the whole prompt fed
        // (and every answer token but the last, which the loop samples without feeding) after the
        // reloaded model's probe.
        expect(got.usage.cachedTokens).toBe(0)
        expect(control.fedSinceReset).toBe(got.usage.promptTokens + got.tokenIds.length - 1)

        // The turn after that resumes from the reloaded model's cache, still a cold run's tokens.
        const thirdTurn: ChatMessage[] = [...secondTurn, ...asHistory(got)]
        const third = { messages: thirdTurn, ...sampling, seed: 5 }
        const reference3 = deviceClient(arch, `reference3-${kind}-${k}`)
        const want3 = await reference3.client.chat(third).finally(() => reference3.client.dispose())
        control.fed = 0
        const got3 = await client.chat(third)
        expect(got3.tokenIds).toEqual(want3.tokenIds)
        const cached = got3.usage.cachedTokens ?? 0
        // Past the first turn at least (Qwen3.5 resumes at the latest state it kept that the new
        // prompt shares: its template renders the past answer without the generation prompt's
        // think tags, so that is the second turn's boundary, not the answer's end).
        expect(cached).toBeGreaterThan(want.usage.promptTokens / 2)
        expect(control.fed).toBe(got3.usage.promptTokens - cached + got3.tokenIds.length - 1)
      } finally {
        await client.dispose()
        await cold.client.dispose()
      }
    },
    120_000,
  )
})
