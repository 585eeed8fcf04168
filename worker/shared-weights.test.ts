// `ondevice serve`'s model host with several generation slots on onnxruntime-node: the slots'
// sessions share one loaded copy of the weights (one InferenceSession per graph), each with its
// own cache. Concurrent streamed answers equal the same requests answered one at a time, a
// conversation's next turn resumes from its own session's cache (never another's), the weights
// load once, and disposing the host releases them.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ortNode from 'onnxruntime-node'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { writeFixture } from '../builder/fixtures/fixture.ts'
import { EngineSession } from '../wasm/engine/session.ts'
import { createApp } from './app.ts'
import { createNodeModelHost } from './node.ts'

// onnxruntime-node's InferenceSession is a class at run time; its type is the factory's.
const sessionPrototype = (ortNode.InferenceSession as unknown as { prototype: ortNode.InferenceSession })
  .prototype

let directory: string
let packageDir: string
let qwen3Dir: string

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'ondevice-shared-slots-'))
  packageDir = join(directory, 'tiny')
  await writeFixture({ arch: 'qwen3_5', outDir: packageDir, dtype: ['q4'] })
  qwen3Dir = join(directory, 'qwen3')
  await writeFixture({ arch: 'qwen3', outDir: qwen3Dir, dtype: ['q4'] })
}, 60_000)

afterAll(async () => {
  if (directory) await rm(directory, { recursive: true, force: true })
})

afterEach(() => {
  vi.restoreAllMocks()
})

type Message = { role: 'user' | 'assistant'; content: string }

const conversations: Message[][] = [
  [{ role: 'user', content: 'Tell me a story about a secret garden.' }],
  [{ role: 'user', content: 'Why is the sky blue?' }],
  [{ role: 'user', content: 'List three prime numbers and explain each one at length.' }],
]

function server(slots: number, backend: 'native' | 'wasm' = 'native', model = packageDir) {
  const modelHost = createNodeModelHost({ model, modelId: 'tiny', backend, sessions: slots })
  const app = createApp({ modelHost, limits: { maxConcurrent: slots }, log: () => undefined })
  /** A streamed answer: its text and the token ids of the last chunk. */
  const ask = async (messages: Message[], sampling: { temperature: number; seed?: number }) => {
    const response = await app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', messages, max_tokens: 16, stream: true, ...sampling }),
    })
    expect(response.status).toBe(200)
    const chunks = (await response.text())
      .split('\n\n')
      .filter((block) => block.startsWith('data: ') && block !== 'data: [DONE]')
      .map(
        (block) =>
          JSON.parse(block.slice('data: '.length)) as {
            choices: { delta: { content?: string } }[]
            ondevice?: { token_ids: number[] }
          },
      )
    const tokenIds = chunks.at(-1)?.ondevice?.token_ids
    expect(tokenIds?.length).toBeGreaterThan(0)
    return {
      text: chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join(''),
      tokenIds: tokenIds ?? [],
    }
  }
  return { modelHost, ask }
}

/** Tokens the embedding graph is run on (every token a session appends goes through it once). */
function countAppendedTokens() {
  const run = vi.spyOn(sessionPrototype, 'run')
  const count = () =>
    run.mock.calls.reduce((total, [feeds]) => {
      const ids = (feeds as Record<string, ortNode.Tensor | undefined>).input_ids
      return total + (ids === undefined ? 0 : ids.dims.reduce((a, b) => a * b, 1))
    }, 0)
  return { count, stop: () => run.mockRestore() }
}

describe('generation slots over one loaded model (native)', () => {
  it('answer concurrent requests exactly as alone, load once, resume each conversation from its own cache, and free it all on dispose', async () => {
    const create = vi.spyOn(ortNode.InferenceSession, 'create')
    const release = vi.spyOn(sessionPrototype, 'release')
    const shared = server(3)
    // One session at a time, one request at a time: the reference.
    const single = server(1)
    try {
      await shared.modelHost.preload()
      // embed_tokens and the decoder, once, for three slots.
      expect(create).toHaveBeenCalledTimes(2)
      for (const sampling of [{ temperature: 0 }, { temperature: 1, seed: 11 }]) {
        const alone = []
        for (const messages of conversations) alone.push(await single.ask(messages, sampling))
        const together = await Promise.all(conversations.map((messages) => shared.ask(messages, sampling)))
        expect(together, JSON.stringify(sampling)).toEqual(alone)
      }
      expect(create).toHaveBeenCalledTimes(4)

      // Each conversation's next turn, all at once. The pool gives each the session holding its
      // own first turn, so it appends only what is new; its answer is the one-at-a-time server's.
      const firstTurns = await Promise.all(
        conversations.map((messages) => shared.ask(messages, { temperature: 0 })),
      )
      const nextTurns = conversations.map((messages, index) => [
        ...messages,
        { role: 'assistant' as const, content: firstTurns[index]?.text ?? '' },
        { role: 'user' as const, content: 'Go on, and say it again in other words.' },
      ])
      // The one-slot server's single session holds the third conversation when the first's next
      // turn comes: it runs each next turn (nearly) whole.
      const appendedAlone = countAppendedTokens()
      const expected = []
      for (const messages of nextTurns) expected.push(await single.ask(messages, { temperature: 0 }))
      const cold = appendedAlone.count()
      appendedAlone.stop()
      const appended = countAppendedTokens()
      const resumed = await Promise.all(nextTurns.map((messages) => shared.ask(messages, { temperature: 0 })))
      expect(resumed).toEqual(expected)
      // Resumed, each appends only the new turn and its answer: at least each first turn's prompt
      // (more than 8 tokens) less than cold.
      expect(appended.count()).toBeLessThan(cold - 3 * 8)

      expect(release).not.toHaveBeenCalled()
      await shared.modelHost.dispose()
      expect(release).toHaveBeenCalledTimes(2)
      expect(shared.modelHost.status()).toEqual({ state: 'idle' })
    } finally {
      await shared.modelHost.dispose()
      await single.modelHost.dispose()
    }
    expect(release).toHaveBeenCalledTimes(4)
  }, 120_000)
})

describe('the session pool keeps each conversation under the slot count', () => {
  it("first turns one at a time, next turns together: each resumes from its own cache (a new session was taken over another conversation's before)", async () => {
    const shared = server(3)
    try {
      const firstTurns: { text: string; tokenIds: number[] }[] = []
      for (const messages of conversations) firstTurns.push(await shared.ask(messages, { temperature: 0 }))
      const nextTurns = conversations.map((messages, index) => [
        ...messages,
        { role: 'assistant' as const, content: firstTurns[index]?.text ?? '' },
        { role: 'user' as const, content: 'Go on.' },
      ])
      const appended = countAppendedTokens()
      await Promise.all(nextTurns.map((messages) => shared.ask(messages, { temperature: 0 })))
      const resumed = appended.count()
      appended.stop()
      // Cold, the same next turns on a fresh server of three slots.
      const fresh = server(3)
      const cold = countAppendedTokens()
      await Promise.all(nextTurns.map((messages) => fresh.ask(messages, { temperature: 0 })))
      const coldCount = cold.count()
      cold.stop()
      await fresh.modelHost.dispose()
      expect(resumed).toBeLessThan(coldCount - 3 * 8)
    } finally {
      await shared.modelHost.dispose()
    }
  }, 120_000)
})

// Qwen3 here: its attention cache rewinds anywhere (the engine's Qwen3.5 resumes a next turn too,
// at the cache's end or a checkpoint: wasm/engine/next-turn.test.ts).
describe('generation slots over one engine instance (wasm)', () => {
  it('answer concurrent requests exactly as alone, from one instance, and resume each conversation from its own cache', async () => {
    const shared = server(3, 'wasm', qwen3Dir)
    const single = server(1, 'wasm', qwen3Dir)
    const appended = vi.spyOn(EngineSession.prototype, 'append')
    const appendedTokens = () => appended.mock.calls.reduce((total, [ids]) => total + ids.length, 0)
    try {
      await shared.modelHost.preload()
      const alone = []
      for (const messages of conversations) alone.push(await single.ask(messages, { temperature: 0 }))
      appended.mockClear()
      const together = await Promise.all(
        conversations.map((messages) => shared.ask(messages, { temperature: 0 })),
      )
      expect(together).toEqual(alone)
      // Three slots' sessions, one instance: every append ran on the same kernels.
      const kernels = new Set(
        appended.mock.contexts.map((session) => (session as EngineSession).model.kernels),
      )
      expect(kernels.size).toBe(1)

      const nextTurns = conversations.map((messages, index) => [
        ...messages,
        { role: 'assistant' as const, content: together[index]?.text ?? '' },
        { role: 'user' as const, content: 'Go on, and say it again in other words.' },
      ])
      appended.mockClear()
      const expected = []
      for (const messages of nextTurns) expected.push(await single.ask(messages, { temperature: 0 }))
      const cold = appendedTokens()
      appended.mockClear()
      const resumed = await Promise.all(nextTurns.map((messages) => shared.ask(messages, { temperature: 0 })))
      expect(resumed).toEqual(expected)
      expect(appendedTokens()).toBeLessThan(cold - 3 * 8)
    } finally {
      await shared.modelHost.dispose()
      await single.modelHost.dispose()
    }
  }, 120_000)
})
