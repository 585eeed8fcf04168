// A chat's next turn on the engine starts after the previous answer's tokens, not at that answer's
// turn boundary: the engine's logits do not depend on how the tokens were cut into appends, so the
// generation loop may resume anywhere in what the cache shares with the next prompt (Qwen3.5: where
// the cache is, or at a checkpoint; Llama/Qwen3: anywhere). Checked as a chat app sends its turns
// (the whole history each time) through `ondevice serve --backend wasm` over HTTP and through the
// SDK in Node, and against a cold run of the same prompt: the same logit bits and tokens, greedy
// and seeded at temperature 1.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../../builder/fixtures/fixture.ts'
import { loadModel } from '../../client-runtime/index.ts'
import { createNodeStore } from '../../client-runtime/store/node-store.ts'
import type { ChatMessage, ModelSession } from '../../core/index.ts'
import { encodeChatTurns, generateText } from '../../core/index.ts'
import { createClient } from '../../sdk/index.ts'
import { startServeProcess } from '../../test/cli/serve-process.ts'
import type { EngineSession } from './session.ts'

let folder: string
const packages: Record<'qwen3_5' | 'qwen3', string> = { qwen3_5: '', qwen3: '' }

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-engine-next-turn-'))
  for (const arch of ['qwen3_5', 'qwen3'] as const) {
    packages[arch] = join(folder, arch)
    await writeFixture({ arch, outDir: packages[arch], dtype: ['q4', 'q8'] })
  }
}, 120_000)

afterAll(async () => {
  if (folder) await rm(folder, { recursive: true, force: true })
})

const system = 'You are a careful assistant who answers in plain words.'
const questions = [
  'Tell me a story about a secret garden.',
  'List three prime numbers.',
  'And once more, as a short poem.',
]
const maxTokens = 40

describe.each(['qwen3_5', 'qwen3'] as const)('%s fixture on the engine: a next turn', (arch) => {
  it('through `ondevice serve --backend wasm`: turns 2 and 3 report the previous prompt and answer as cached', async () => {
    const server = await startServeProcess({
      args: ['--model', packages[arch], '--backend', 'wasm', '--dtype', 'q4', '--port', '0'],
      env: { MAX_CONCURRENT: '1' },
    })
    try {
      const messages: { role: string; content: string }[] = [{ role: 'system', content: system }]
      let previous: { prompt: number; completion: number } | undefined
      for (const [turn, question] of questions.entries()) {
        messages.push({ role: 'user', content: question })
        const response = await fetch(`${server.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: server.model, messages, max_tokens: maxTokens, temperature: 0 }),
        })
        expect(response.status).toBe(200)
        const body = (await response.json()) as {
          choices: { message: { content: string }; finish_reason: string }[]
          usage: {
            prompt_tokens: number
            completion_tokens: number
            prompt_tokens_details?: { cached_tokens: number }
          }
        }
        const cached = body.usage.prompt_tokens_details?.cached_tokens
        if (previous === undefined) expect(cached, 'turn 1').toBe(0)
        // The cache holds the previous prompt and its answer but the last token sampled (never
        // fed): all of it is shared. Before, the turn resumed where the previous answer's turn
        // began (the previous prompt less `<|im_start|>assistant\n`).
        else expect(cached, `turn ${turn + 1}`).toBeGreaterThanOrEqual(previous.prompt)
        expect(body.choices[0]?.finish_reason).toBe('length')
        previous = { prompt: body.usage.prompt_tokens, completion: body.usage.completion_tokens }
        messages.push({ role: 'assistant', content: body.choices[0]?.message.content ?? '' })
      }
    } finally {
      expect(await server.stop()).toBe(0)
    }
  }, 180_000)

  it("through the SDK in Node (backend 'wasm'): turns 2 and 3 report the previous prompt and answer as cached", async () => {
    const client = createClient({
      model: packages[arch],
      backend: 'wasm',
      dtype: 'q4',
      policy: 'device-only',
      cacheDir: join(folder, `sdk-cache-${arch}`),
    })
    try {
      const messages: ChatMessage[] = [{ role: 'system', content: system }]
      let previous: { prompt: number; completion: number } | undefined
      for (const [turn, question] of questions.entries()) {
        messages.push({ role: 'user', content: question })
        const answer = await client.chat({ messages, maxTokens, temperature: 0 })
        expect(answer.usage.backend).toBe('wasm')
        if (previous === undefined) expect(answer.usage.cachedTokens, 'turn 1').toBe(0)
        else expect(answer.usage.cachedTokens, `turn ${turn + 1}`).toBeGreaterThanOrEqual(previous.prompt)
        previous = { prompt: answer.usage.promptTokens, completion: answer.usage.completionTokens }
        messages.push({ role: 'assistant', content: answer.text })
      }
    } finally {
      await client.dispose()
    }
  }, 180_000)

  it.each([
    ['q4', 'greedy', { temperature: 0 }],
    ['q4', 'seeded, temperature 1', { temperature: 1, seed: 7 }],
    ['q8', 'seeded, temperature 1', { temperature: 1, seed: 7 }],
  ] as const)(
    '%s, %s: resumed after the previous answer, the same logit bits and tokens as a cold prefill of the whole conversation',
    async (dtype, _label, sampling) => {
      const store = createNodeStore({ cacheDir: join(folder, `cache-${arch}-${dtype}`) })
      const loaded = await loadModel({ model: packages[arch], backend: 'wasm', dtype, store })
      const cold = await (loaded.session as EngineSession).createSession()
      try {
        const { tokenizer } = loaded
        /** The session, recording every append's token count and logits. */
        const recorded = (session: ModelSession) => {
          const appends: { count: number; logits: Float32Array }[] = []
          const wrapped: ModelSession = {
            info: session.info,
            get tokens() {
              return session.tokens
            },
            async append(ids, options) {
              const logits = await session.append(ids, options)
              appends.push({ count: ids.length, logits: logits.slice() })
              return logits
            },
            rewind: (length) => session.rewind(length),
            rewindableLength: (limit) => session.rewindableLength?.(limit) ?? limit,
            reset: () => session.reset(),
            dispose: () => session.dispose(),
          }
          return { wrapped, appends }
        }
        const messages: ChatMessage[] = [{ role: 'system', content: system }]
        let held: readonly number[] = []
        let previousPrompt = 0
        for (const [turn, question] of questions.entries()) {
          messages.push({ role: 'user', content: question })
          const prompt = encodeChatTurns(tokenizer, messages)
          // What the cache shares with the prompt (at least one prompt token is fed again), and
          // where the turn can resume: Llama/Qwen3 anywhere in it; Qwen3.5 where the cache is (the
          // previous answer all shared), at its decode checkpoint (every 16 answer tokens, the
          // latest kept), or at the previous prompt's end (its last chunk's checkpoint).
          let shared = 0
          while (shared < held.length && held[shared] === prompt.tokenIds[shared]) shared++
          shared = Math.min(shared, prompt.tokenIds.length - 1)
          const decodeCheckpoint = previousPrompt + 16 * Math.floor((held.length - previousPrompt) / 16)
          const expected =
            held.length === 0
              ? 0
              : arch === 'qwen3' || shared === held.length
                ? shared
                : decodeCheckpoint <= shared
                  ? decodeCheckpoint
                  : previousPrompt
          const request = {
            sampling,
            maxTokens,
            promptTokenIds: prompt.tokenIds,
            promptBoundaries: prompt.turnBoundaries,
          }
          const warm = recorded(loaded.session)
          const resumed = await generateText(warm.wrapped, tokenizer, request)
          await cold.reset()
          const fresh = recorded(cold)
          const whole = await generateText(fresh.wrapped, tokenizer, request)
          const where = `turn ${turn + 1}`
          expect(resumed.usage.cachedTokens, where).toBe(expected)
          expect(whole.usage.cachedTokens, where).toBe(0)
          const fed = (appends: { count: number }[]) => appends.reduce((total, { count }) => total + count, 0)
          expect(fed(warm.appends), where).toBe(
            prompt.tokenIds.length - expected + resumed.tokenIds.length - 1,
          )
          expect(resumed.tokenIds, where).toEqual(whole.tokenIds)
          // One logits vector per sampled token: the prompt's last, then each decode step's.
          const sampledFrom = (appends: { logits: Float32Array }[]) =>
            appends.slice(-resumed.tokenIds.length).map(({ logits }) => Buffer.from(logits.buffer))
          const bits = sampledFrom(warm.appends)
          expect(bits.length).toBe(resumed.tokenIds.length)
          expect(
            bits.every((b, i) => b.equals(sampledFrom(fresh.appends)[i] as Buffer)),
            where,
          ).toBe(true)
          held = [...loaded.session.tokens]
          previousPrompt = prompt.tokenIds.length
          messages.push({ role: 'assistant', content: resumed.text })
        }
      } finally {
        await cold.dispose()
        await loaded.dispose()
      }
    },
    120_000,
  )
})
