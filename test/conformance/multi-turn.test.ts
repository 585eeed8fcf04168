// Multi-turn reuse on the real ORT session: a follow-up turn that extends the conversation runs
// on the cache the first turn left (KV for Llama/Qwen3; KV + conv/recurrent checkpoints for
// Qwen3.5), and its answer must equal a cold run on the whole conversation.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../../builder/index.ts'
import { loadModel } from '../../client-runtime/index.ts'
import type { ChatMessage, ModelSession } from '../../core/index.ts'
import { generateText } from '../../core/index.ts'

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
  const wrapped: ModelSession = {
    get info() {
      return session.info
    },
    get tokens() {
      return session.tokens
    },
    append: (ids, options) => {
      fed += ids.length
      return session.append(ids, options)
    },
    rewind: (length) => session.rewind(length),
    reset: () => session.reset(),
    dispose: () => session.dispose(),
  }
  return { session: wrapped, fed: () => fed }
}

describe.each(['qwen3', 'qwen3_5'] as const)('multi-turn chat on a %s fixture (native, fp32)', (arch) => {
  it("answers the second turn as a cold run does, reusing the first turn's cache where the session can", async () => {
    const outDir = join(folder, arch)
    await writeFixture({ arch, outDir, seed: 5, dtype: 'fp32' })
    const warm = await loadModel({ model: outDir, backend: 'native', dtype: 'fp32' })
    const cold = await loadModel({ model: outDir, backend: 'native', dtype: 'fp32' })
    try {
      const { tokenizer } = warm
      const options = { enableThinking: false }
      const request = { sampling: { temperature: 0 }, maxTokens: 6 }
      const first: ChatMessage[] = [{ role: 'user', content: 'Tell me a story about a cat.' }]
      const firstPrompt = tokenizer.encodeChat(first, options)
      const answer = await generateText(warm.session, tokenizer, { ...request, promptTokenIds: firstPrompt })

      const second: ChatMessage[] = [
        ...first,
        { role: 'assistant', content: answer.text },
        { role: 'user', content: 'And then what happened?' },
      ]
      const secondPrompt = tokenizer.encodeChat(second, options)
      const counted = counting(warm.session)
      const reused = await generateText(counted.session, tokenizer, {
        ...request,
        promptTokenIds: secondPrompt,
      })
      const fresh = await generateText(cold.session, tokenizer, { ...request, promptTokenIds: secondPrompt })

      expect(reused.tokenIds).toEqual(fresh.tokenIds)
      // The first turn's prompt (its shared part, up to where the template renders history
      // differently from a generation prompt) is not fed again.
      const fedPrompt = counted.fed() - (reused.tokenIds.length - 1)
      console.log(
        `[multi-turn] ${arch}: second prompt ${secondPrompt.length} tokens, fed ${fedPrompt} (first prompt ${firstPrompt.length})`,
      )
      if (arch === 'qwen3') expect(fedPrompt).toBeLessThan(secondPrompt.length)
      // Qwen3.5 (recurrent state) can only rewind to a checkpoint, and the session checkpoints at
      // the end of each prompt. Qwen3's template renders a past assistant turn without the
      // generation prompt's empty think block, so the shared prefix ends inside that block,
      // before the checkpoint, and the whole conversation is re-run: correct (checked above), but
      // not yet reused. Closing it needs a checkpoint where the generation prompt starts (issue 4).
    } finally {
      await warm.dispose()
      await cold.dispose()
    }
  })
})
