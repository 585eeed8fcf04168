// A thinking model's reasoning on the wire, apart from the answer: `message.reasoning_content`
// and streamed `delta.reasoning_content` (vLLM's and SGLang's fields), read by OpenAI's own
// client and by the AI SDK's OpenAI-compatible provider, against the Hono app in Node over core's
// test session scripted to answer like Qwen3 (`<think>...</think>` then the reply).
import { createOpenAICompatible } from '@ai-sdk/openai-compatible'
import { generateText, streamText } from 'ai'
import OpenAI from 'openai'
import { describe, expect, it } from 'vitest'
import {
  thinkingAnswer,
  thinkingReasoning,
  thinkingReasoningTokens,
  thinkingScript,
  thinkingText,
} from '../test/support/thinking-script.ts'
import { createTestHost } from '../test/worker/test-host.ts'
import { createApp } from './app.ts'
import type { RequestLogLine } from './request-log.ts'

const model = 'test-model'
const messages = [{ role: 'user' as const, content: 'What is 6 times 7?' }]

function setup() {
  const logs: RequestLogLine[] = []
  const app = createApp({
    modelHost: createTestHost({ session: { favor: thinkingScript() } }),
    log: (line) => logs.push(line),
  })
  const post = (body: Record<string, unknown>) =>
    app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages, max_tokens: 60, temperature: 0, ...body }),
    })
  const fetch = async (url: RequestInfo | URL, init?: RequestInit) => app.request(String(url), init)
  return { post, fetch, logs }
}

async function events(response: Response): Promise<Record<string, unknown>[]> {
  const text = await response.text()
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('data: ') && block !== 'data: [DONE]')
    .map((block) => JSON.parse(block.slice('data: '.length)) as Record<string, unknown>)
}

interface Delta {
  content?: string
  reasoning_content?: string
  token_ids?: number[]
}
const deltaOf = (chunk: Record<string, unknown>) =>
  ((chunk['choices'] as { delta: Delta }[] | undefined)?.[0]?.delta ?? {}) as Delta

describe('reasoning_content on the wire', () => {
  it('not streamed: message.reasoning_content beside content; absent with thinking off', async () => {
    const { post } = setup()
    const body = (await (await post({})).json()) as {
      choices: { message: { content: string; reasoning_content?: string } }[]
      ondevice: { token_ids: number[] }
    }
    expect(body.choices[0]?.message).toMatchObject({
      content: thinkingText,
      reasoning_content: thinkingReasoning,
    })
    const off = (await (
      await post({ chat_template_kwargs: { enable_thinking: false } })
    ).json()) as typeof body
    // Thinking off: the template closed the block in the prompt; whatever follows is the answer.
    expect(off.choices[0]?.message.content).toBe(thinkingAnswer)
    expect('reasoning_content' in (off.choices[0]?.message ?? {})).toBe(false)
  })

  it('streamed: reasoning_content deltas, then content; token_ids cover every token once', async () => {
    const { post } = setup()
    const chunks = await events(await post({ stream: true }))
    const deltas = chunks.map(deltaOf)
    expect(deltas.map((delta) => delta.reasoning_content ?? '').join('')).toBe(thinkingReasoning)
    expect(deltas.map((delta) => delta.content ?? '').join('')).toBe(thinkingText)
    for (const delta of deltas)
      expect(delta.content === undefined || delta.reasoning_content === undefined).toBe(true)
    const last = chunks.findLast((chunk) => chunk['ondevice'] !== undefined) as {
      ondevice: { token_ids: number[] }
    }
    expect(deltas.flatMap((delta) => delta.token_ids ?? [])).toEqual(last.ondevice.token_ids)
    const firstContent = deltas.findIndex((delta) => (delta.content ?? '') !== '')
    const lastReasoning = deltas.findLastIndex((delta) => delta.reasoning_content !== undefined)
    expect(lastReasoning).toBeLessThan(firstContent)
  })

  it('usage.completion_tokens_details.reasoning_tokens: the think block with its tags, JSON and streamed alike', async () => {
    const { post } = setup()
    type Usage = { completion_tokens: number; completion_tokens_details?: { reasoning_tokens: number } }
    const whole = (await (await post({})).json()) as { usage: Usage }
    // `<think>` … `</think>`: not the `\n\n` after it, the reply or EOS.
    expect(whole.usage.completion_tokens_details).toEqual({ reasoning_tokens: thinkingReasoningTokens })
    expect(whole.usage.completion_tokens).toBeGreaterThan(thinkingReasoningTokens + 2)
    // Streamed: the final usage chunk says the same, and the chunks that carry reasoning
    // (reasoning_content, '' for `<think>` and `</think>`, which show no text) hold exactly those
    // tokens, so a client that aborts the stream counts them as the usage would.
    const chunks = await events(await post({ stream: true, stream_options: { include_usage: true } }))
    const usage = chunks.at(-1)?.['usage'] as Usage
    expect(usage).toMatchObject({
      completion_tokens: whole.usage.completion_tokens,
      completion_tokens_details: { reasoning_tokens: thinkingReasoningTokens },
    })
    const reasoningIds = chunks
      .map(deltaOf)
      .flatMap((delta) => (delta.reasoning_content === undefined ? [] : (delta.token_ids ?? [])))
    expect(reasoningIds).toHaveLength(thinkingReasoningTokens)
    // Thinking off, or an answer without a think block: 0, as OpenAI sends it.
    const off = (await (await post({ chat_template_kwargs: { enable_thinking: false } })).json()) as {
      usage: Usage
    }
    expect(off.usage.completion_tokens_details).toEqual({ reasoning_tokens: 0 })
  })

  it("reasoning_effort sets the template's thinking switch; a contradiction is a 400 naming both", async () => {
    const { post } = setup()
    type Body = { choices: { message: { content: string; reasoning_content?: string } }[] }
    const none = (await (await post({ reasoning_effort: 'none' })).json()) as Body
    expect(none.choices[0]?.message.content).toBe(thinkingAnswer)
    expect(none.choices[0]?.message.reasoning_content).toBeUndefined()
    const high = (await (await post({ reasoning_effort: 'high' })).json()) as Body
    expect(high.choices[0]?.message).toMatchObject({
      content: thinkingText,
      reasoning_content: thinkingReasoning,
    })
    const agreeing = await post({
      reasoning_effort: 'minimal',
      chat_template_kwargs: { enable_thinking: false },
    })
    expect(agreeing.status).toBe(200)
    const conflict = await post({ reasoning_effort: 'low', chat_template_kwargs: { enable_thinking: false } })
    expect(conflict.status).toBe(400)
    const { error } = (await conflict.json()) as { error: { param: string; message: string } }
    expect(error.param).toBe('reasoning_effort')
    expect(error.message).toContain('chat_template_kwargs.enable_thinking')
    const bad = await post({ reasoning_effort: 'max' })
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as { error: { message: string } }).error.message).toContain(
      '"none", "minimal"',
    )
  })

  it("OpenAI's client reads reasoning_content, streamed and not", async () => {
    const { fetch } = setup()
    const client = new OpenAI({ baseURL: 'http://edge.test/v1', apiKey: 'none', fetch, maxRetries: 0 })
    const completion = await client.chat.completions.create({
      model,
      messages,
      max_tokens: 60,
      temperature: 0,
    })
    const message = completion.choices[0]?.message as { content: string; reasoning_content?: string }
    expect(message.content).toBe(thinkingText)
    expect(message.reasoning_content).toBe(thinkingReasoning)
    // OpenAI's own field, typed by its client.
    expect(completion.usage?.completion_tokens_details?.reasoning_tokens).toBe(thinkingReasoningTokens)
    const stream = await client.chat.completions.create({
      model,
      messages,
      max_tokens: 60,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    })
    let reasoning = ''
    let content = ''
    let reasoningTokens: number | undefined
    for await (const chunk of stream) {
      if (chunk.usage) reasoningTokens = chunk.usage.completion_tokens_details?.reasoning_tokens
      const delta = chunk.choices[0]?.delta as
        | { content?: string | null; reasoning_content?: string }
        | undefined
      reasoning += delta?.reasoning_content ?? ''
      content += delta?.content ?? ''
    }
    expect({ reasoning, content }).toEqual({ reasoning: thinkingReasoning, content: thinkingText })
    expect(reasoningTokens).toBe(thinkingReasoningTokens)
  })

  it("OpenAI's stream helper (chat.completions.stream): its deltas carry the reasoning; its snapshot keeps the last one", async () => {
    const { fetch } = setup()
    const client = new OpenAI({ baseURL: 'http://edge.test/v1', apiKey: 'none', fetch, maxRetries: 0 })
    const stream = client.chat.completions.stream({
      model,
      messages,
      max_tokens: 60,
      temperature: 0,
      stream_options: { include_usage: true },
    })
    let reasoning = ''
    let last: string | undefined
    let snapshotReasoning: unknown
    stream.on('chunk', (chunk, snapshot) => {
      const delta = chunk.choices[0]?.delta as { reasoning_content?: string } | undefined
      if (delta?.reasoning_content !== undefined) last = delta.reasoning_content
      reasoning += delta?.reasoning_content ?? ''
      const message = snapshot.choices[0]?.message as { reasoning_content?: unknown } | undefined
      snapshotReasoning = message?.reasoning_content
    })
    const final = await stream.finalChatCompletion()
    // The deltas, read from the helper's chunks, are the whole reasoning; what the helper joins
    // itself (content, finish reason, usage) is right.
    expect(reasoning).toBe(thinkingReasoning)
    expect(final.choices[0]?.message.content).toBe(thinkingText)
    expect(final.choices[0]?.finish_reason).toBe('stop')
    expect(final.usage?.completion_tokens_details?.reasoning_tokens).toBe(thinkingReasoningTokens)
    // The helper joins only the delta fields OpenAI defines and assigns any other, so its snapshot
    // and finalChatCompletion() hold the last reasoning_content delta, here the `</think>` token's
    // '' (from vLLM, which sends no chunk for a lone </think>, it is the last fragment).
    // docs/worker.md says to join the deltas; this says when the helper starts joining them.
    expect(last).toBe('')
    expect(snapshotReasoning).toBe(last)
    const message = final.choices[0]?.message as
      | { reasoning_content?: unknown; token_ids?: unknown }
      | undefined
    expect(message?.reasoning_content).toBe(last)
    // Our per-chunk token_ids likewise: the message holds the last chunk's (EOS); the finish
    // chunk's ondevice.token_ids, which the helper keeps, hold every token.
    const eos = 151645 // <|im_end|>
    expect(message?.token_ids).toEqual([eos])
    const ondevice = (final as unknown as { ondevice?: { token_ids: number[] } }).ondevice
    expect(ondevice?.token_ids.length).toBe(final.usage?.completion_tokens)
    expect(ondevice?.token_ids.at(-1)).toBe(eos)
  })

  it("the AI SDK's OpenAI-compatible provider turns it into reasoning parts", async () => {
    const { fetch } = setup()
    const provider = createOpenAICompatible({ name: 'ondevice', baseURL: 'http://edge.test/v1', fetch })
    const generated = await generateText({
      model: provider(model),
      prompt: messages[0].content,
      temperature: 0,
    })
    expect(generated.text).toBe(thinkingText)
    expect(generated.reasoningText).toBe(thinkingReasoning)
    // It reads completion_tokens_details.reasoning_tokens into the usage's reasoning tokens.
    expect(generated.usage.outputTokenDetails.reasoningTokens).toBe(thinkingReasoningTokens)
    // Streamed, the provider asks for the final usage chunk only when told to (includeUsage).
    const withUsage = createOpenAICompatible({
      name: 'ondevice',
      baseURL: 'http://edge.test/v1',
      fetch,
      includeUsage: true,
    })
    const streamed = streamText({ model: withUsage(model), prompt: messages[0].content, temperature: 0 })
    const types: string[] = []
    let reasoning = ''
    for await (const part of streamed.fullStream) {
      types.push(part.type)
      if (part.type === 'reasoning-delta') reasoning += part.text
    }
    expect(reasoning).toBe(thinkingReasoning)
    expect(await streamed.text).toBe(thinkingText)
    expect(types.indexOf('reasoning-end')).toBeLessThan(types.indexOf('text-start'))
    expect((await streamed.usage).outputTokenDetails.reasoningTokens).toBe(thinkingReasoningTokens)
  })
})

describe('the request log', () => {
  it("counts a thinking model's reasoning tokens beside its completion tokens (JSON and stream)", async () => {
    const { post, logs } = setup()
    const json = (await (await post({})).json()) as { usage: Record<string, unknown> }
    await (await post({ stream: true, stream_options: { include_usage: true } })).text()
    expect(json.usage).toMatchObject({
      completion_tokens_details: { reasoning_tokens: thinkingReasoningTokens },
    })
    expect(logs).toHaveLength(2)
    for (const line of logs)
      expect(line).toMatchObject({
        status: 200,
        completionTokens: json.usage.completion_tokens,
        reasoningTokens: thinkingReasoningTokens,
      })
  })
})
