// What the command line shows of an answer's usage: `generate --json`'s usage object and
// `chat --stats`' line, for a thinking model's answer (core's generation loop over core's test
// session scripted to answer like Qwen3, with the real tokenizer), carry how many of the answer's
// tokens were its think block. The commands themselves run in ./generate.test.ts.
import { describe, expect, it } from 'vitest'
import { generateText } from '../../core/generate.ts'
import { qwen3Tokenizer } from '../../test/support/qwen3-tokenizer.ts'
import { createTestSession } from '../../test/support/test-session.ts'
import { thinkingReasoningTokens, thinkingScript } from '../../test/support/thinking-script.ts'
import { answerStats } from './chat.ts'
import { usageJson } from './generate.ts'

const tokenizer = qwen3Tokenizer()

async function answer(favor?: (tokens: readonly number[]) => number | undefined) {
  const promptTokenIds = tokenizer.encodeChat([{ role: 'user', content: 'What is 6 times 7?' }], {
    addGenerationPrompt: true,
  })
  const session = createTestSession({
    vocabularySize: tokenizer.vocabularySize,
    ...(favor ? { favor } : {}),
  })
  return generateText(session, tokenizer, { promptTokenIds, sampling: { temperature: 0 }, maxTokens: 60 })
}

describe('usage on the command line', () => {
  it("a thinking model's answer: --json has completion_tokens_details.reasoning_tokens, --stats the count", async () => {
    const finish = await answer(thinkingScript())
    expect(finish.usage.reasoningTokens).toBe(thinkingReasoningTokens)
    expect(thinkingReasoningTokens).toBeGreaterThan(2)
    const json = usageJson(finish)
    expect(json).toMatchObject({
      prompt_tokens: finish.usage.promptTokens,
      completion_tokens: finish.usage.completionTokens,
      completion_tokens_details: { reasoning_tokens: thinkingReasoningTokens },
    })
    // The same shape as the edge's usage (OpenAI's field), so a script reads both alike.
    expect(JSON.parse(JSON.stringify(json)).completion_tokens_details).toEqual({
      reasoning_tokens: thinkingReasoningTokens,
    })
    expect(answerStats(finish)).toMatch(
      new RegExp(
        `^\\(${finish.usage.promptTokens} prompt \\+ ${finish.usage.completionTokens} tokens \\(${thinkingReasoningTokens} reasoning\\), [\\d.]+ tokens/s, first token \\d+ ms, stop\\)$`,
      ),
    )
  })

  it('an answer without a think block: reasoning_tokens 0, and --stats says nothing of reasoning', async () => {
    const finish = await answer()
    expect(finish.usage.reasoningTokens).toBe(0)
    expect(usageJson(finish)).toMatchObject({ completion_tokens_details: { reasoning_tokens: 0 } })
    expect(answerStats(finish)).not.toMatch(/reasoning/)
    expect(answerStats(finish)).toMatch(/^\(\d+ prompt \+ 60 tokens, /)
  })
})
