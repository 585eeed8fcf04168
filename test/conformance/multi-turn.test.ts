// Multi-turn reuse on the real ORT session: a follow-up turn that extends the conversation runs
// on the cache the first turn left (KV for Llama/Qwen3; KV + conv/recurrent checkpoints for
// Qwen3.5, taken at the turn boundaries), and its answer must equal a cold run on the whole
// conversation.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../../builder/index.ts'
import { loadModel } from '../../client-runtime/index.ts'
import type { ChatMessage, ModelSession } from '../../core/index.ts'
import { encodeChatTurns, generateText } from '../../core/index.ts'
import { watchAppends } from '../support/watch-appends.ts'

let folder: string
beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-multi-turn-'))
})
afterAll(async () => {
  await rm(folder, { recursive: true, force: true })
})

/** Counts the tokens the generation loop feeds the session, to see what a turn re-ran. */
function counting(session: ModelSession): { session: ModelSession; fed: () => number } {
  let fed = 0
  const wrapped = watchAppends(session, (tokenIds) => {
    fed += tokenIds.length
  })
  return { session: wrapped, fed: () => fed }
}

const cases = [
  { arch: 'qwen3', dtype: 'fp32' },
  { arch: 'qwen3_5', dtype: 'fp32' },
  // q8 quantizes activations per run, so logits depend on how the prompt was chunked: a resumed
  // turn equals a cold run only because both cut the conversation at the same turn boundaries.
  { arch: 'qwen3_5', dtype: 'q8' },
] as const

describe.each(cases)('multi-turn chat on a $arch fixture (native, $dtype)', ({ arch, dtype }) => {
  it("answers each turn as a cold run does, resuming from the previous turn's history", async () => {
    const outDir = join(folder, `${arch}-${dtype}`)
    await writeFixture({ arch, outDir, seed: 5, dtype })
    const warm = await loadModel({ model: outDir, backend: 'native', dtype })
    const cold = await loadModel({ model: outDir, backend: 'native', dtype })
    try {
      const { tokenizer } = warm
      const options = { enableThinking: false }
      // Seeded sampling at temperature 1 turns the smallest difference in logits into other tokens.
      const request = { sampling: { temperature: 1, seed: 11 }, maxTokens: 8 }
      const messages: ChatMessage[] = [{ role: 'system', content: 'You tell short stories.' }]
      const questions = ['Tell me a story about a cat.', 'And then what happened?', 'How did it end?']
      let previousHistory: number | undefined
      for (const [turn, question] of questions.entries()) {
        messages.push({ role: 'user', content: question })
        const prompt = encodeChatTurns(tokenizer, messages, options)
        const turnRequest = {
          ...request,
          promptTokenIds: prompt.tokenIds,
          promptBoundaries: prompt.turnBoundaries,
        }
        const counted = counting(warm.session)
        const resumed = await generateText(counted.session, tokenizer, turnRequest)
        await cold.session.reset()
        const fresh = await generateText(cold.session, tokenizer, turnRequest)
        expect(resumed.tokenIds, `turn ${turn + 1}`).toEqual(fresh.tokenIds)

        // What this turn fed besides its own answer: everything after the previous turn's history
        // end, where its generation prompt started (the previous answer as the template renders
        // it, the question, the generation prompt), and nothing before it.
        const fedPrompt = counted.fed() - (resumed.tokenIds.length - 1)
        console.log(
          `[multi-turn] ${arch} ${dtype} turn ${turn + 1}: prompt ${prompt.tokenIds.length} tokens, fed ${fedPrompt}, boundaries ${prompt.turnBoundaries.join(',')}`,
        )
        const resumedAt = Math.max(
          0,
          ...prompt.turnBoundaries.filter((boundary) => boundary <= (previousHistory ?? 0)),
        )
        if (turn > 0) expect(resumedAt, 'the previous history end is a cut').toBe(previousHistory)
        expect(fedPrompt, `turn ${turn + 1}`).toBe(prompt.tokenIds.length - resumedAt)
        previousHistory = prompt.turnBoundaries.at(-1)
        messages.push({ role: 'assistant', content: resumed.text })
      }
    } finally {
      await warm.dispose()
      await cold.dispose()
    }
  })
})
