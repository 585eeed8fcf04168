import { describe, expect, it } from 'vitest'
import { qwen3Tokenizer, qwen3TokenizerWithoutToolCalls } from '../test/support/qwen3-tokenizer.ts'
import { createTestSession } from '../test/support/test-session.ts'
import type { ChatMessage } from './chat-template.ts'
import { encodeChatTurns } from './chat-turns.ts'
import { BackendError, ContextLengthError, InvalidArgumentError } from './errors.ts'
import { type GenerateRequest, generate, generateText } from './generate.ts'
import type { ModelSession } from './model-session.ts'
import type { SamplingOptions } from './sampling/index.ts'
import type { FinishPart, GenerationPart } from './stream-parts.ts'

const tokenizer = qwen3Tokenizer()
const vocabularySize = tokenizer.vocabularySize
const prompt = tokenizer.encodeChat([{ role: 'user', content: 'Tell me a story.' }], {
  enableThinking: false,
})

async function collect(session: ModelSession, request: GenerateRequest) {
  const parts: GenerationPart[] = []
  let error: unknown
  try {
    for await (const part of generate(session, tokenizer, request)) parts.push(part)
  } catch (caught) {
    error = caught
  }
  const deltas = parts.filter((part) => part.type === 'text-delta')
  const finish = parts.find((part): part is FinishPart => part.type === 'finish')
  return {
    parts,
    error,
    finish,
    text: deltas.map((part) => part.text).join(''),
    tokenIds: deltas.flatMap((part) => part.tokenIds),
  }
}

// Scripts a session to say `answer` (then anything) after the prompt.
function scripted(answer: string, extra: Parameters<typeof createTestSession>[0] = {}) {
  const ids = tokenizer.encode(answer, { addSpecialTokens: false })
  return {
    ids,
    session: createTestSession({
      vocabularySize,
      favor: (tokens) => ids[tokens.length - prompt.length],
      ...extra,
    }),
  }
}

describe('generate', () => {
  it('streams text deltas that add up to the finish part, with usage', async () => {
    const result = await collect(createTestSession({ vocabularySize }), {
      promptTokenIds: prompt,
      sampling: { temperature: 0 },
      maxTokens: 20,
    })
    expect(result.error).toBeUndefined()
    const finish = result.finish!
    expect(finish.finishReason).toBe('length')
    expect(finish.tokenIds).toHaveLength(20)
    expect(result.tokenIds).toEqual(finish.tokenIds)
    expect(result.text).toBe(finish.text)
    expect(finish.text).toBe(tokenizer.decode(finish.tokenIds))
    expect(finish.nextStep).toBe(20)
    expect(finish.usage).toMatchObject({
      promptTokens: prompt.length,
      completionTokens: 20,
      backend: 'test',
      dtype: 'fp32',
    })
    expect(finish.usage.timeToFirstTokenMs).toBeGreaterThan(0)
    expect(finish.usage.prefillTokensPerSecond).toBeGreaterThan(0)
    expect(finish.usage.decodeTokensPerSecond).toBeGreaterThan(0)
    expect(result.parts.at(-1)).toBe(finish)
  })

  it('stops at EOS and leaves it out of the text', async () => {
    const eos = tokenizer.tokenToId('<|im_end|>')!
    const { session } = scripted('Once upon a time there was a fox.', {
      eos: { tokenId: eos, atLength: prompt.length + 4 },
    })
    const { finish, text } = await collect(session, { promptTokenIds: prompt, sampling: { temperature: 0 } })
    expect(finish!.finishReason).toBe('stop')
    expect(finish!.tokenIds).toHaveLength(5)
    expect(finish!.tokenIds.at(-1)).toBe(eos)
    expect(text).toBe('Once upon a time')
    // EOS is sampled but never fed: the cache holds the prompt and the 4 shown tokens.
    expect(session.tokens).toHaveLength(prompt.length + 4)
  })

  it('keeps a special token the model writes mid-answer in tokenIds and out of the text', async () => {
    const imStart = tokenizer.tokenToId('<|im_start|>')!
    const ids = [
      ...tokenizer.encode('Hello', { addSpecialTokens: false }),
      imStart,
      ...tokenizer.encode(' world', { addSpecialTokens: false }),
    ]
    const session = createTestSession({
      vocabularySize,
      favor: (tokens) => ids[tokens.length - prompt.length],
    })
    const result = await collect(session, {
      promptTokenIds: prompt,
      sampling: { temperature: 0 },
      maxTokens: ids.length,
    })
    expect(result.finish!.tokenIds).toEqual(ids)
    expect(result.tokenIds).toEqual(ids)
    expect(result.text).toBe('Hello world')
    expect(result.finish!.text).toBe('Hello world')
  })

  it('stops on a stop string split across tokens and never shows any of it', async () => {
    const { ids, session } = scripted('The answer is 42.\n\nUser: and more text after')
    const result = await collect(session, {
      promptTokenIds: prompt,
      sampling: { temperature: 0 },
      stop: ['\n\nUser:', 'zzz'],
    })
    expect(result.finish!.finishReason).toBe('stop')
    expect(result.text).toBe('The answer is 42.')
    expect(result.finish!.text).toBe('The answer is 42.')
    expect(result.parts.some((part) => part.type === 'text-delta' && /User|\n/.test(part.text))).toBe(false)
    expect(ids.length).toBeGreaterThan(result.finish!.tokenIds.length)
  })

  it('releases text that only looked like the start of a stop string', async () => {
    const { session } = scripted('Use the <b>bold</b> tag')
    const result = await collect(session, {
      promptTokenIds: prompt,
      sampling: { temperature: 0 },
      stop: ['<b>x'],
      maxTokens: 7,
    })
    expect(result.finish!.finishReason).toBe('length')
    expect(result.text).toBe(tokenizer.decode(result.finish!.tokenIds))
    expect(result.text.startsWith('Use the <b>bold')).toBe(true)
  })

  it('never shows half a character when a character spans tokens', async () => {
    const answer = '😀👨‍👩‍👧 é 你好'
    const { ids, session } = scripted(answer)
    const result = await collect(session, {
      promptTokenIds: prompt,
      sampling: { temperature: 0 },
      maxTokens: ids.length,
    })
    const deltas = result.parts.filter((part) => part.type === 'text-delta')
    expect(deltas.length).toBe(ids.length)
    for (const part of deltas) expect(part.text).not.toContain('\uFFFD')
    expect(deltas.some((part) => part.text === '')).toBe(true)
    expect(result.text).toBe(answer)
  })

  const samplings: [string, SamplingOptions][] = [
    ['greedy', { temperature: 0 }],
    [
      'seeded',
      { temperature: 0.9, topK: 40, topP: 0.95, repetitionPenalty: 1.1, frequencyPenalty: 0.2, seed: 11 },
    ],
  ]
  it.each(samplings)(
    'continues on another session so the joined answer equals an uninterrupted one (%s)',
    async (_label, sampling) => {
      const maxTokens = 24
      const stop = ['never appears in this text']
      const whole = await collect(createTestSession({ vocabularySize }), {
        promptTokenIds: prompt,
        sampling,
        maxTokens,
        stop,
      })
      expect(whole.finish!.tokenIds).toHaveLength(maxTokens)
      for (const k of [0, 1, 5, 13, 23]) {
        const device = await collect(createTestSession({ vocabularySize, failAtToken: k }), {
          promptTokenIds: prompt,
          sampling,
          maxTokens,
          stop,
        })
        expect(device.error).toBeInstanceOf(BackendError)
        expect((device.error as BackendError).isRetryable).toBe(true)
        expect(device.tokenIds).toHaveLength(k)
        const edge = await collect(createTestSession({ vocabularySize }), {
          promptTokenIds: prompt,
          sampling,
          maxTokens: maxTokens - k,
          stop,
          continuation: { tokenIds: device.tokenIds, step: k },
        })
        expect([...device.tokenIds, ...edge.finish!.tokenIds]).toEqual(whole.finish!.tokenIds)
        expect(device.text + edge.text).toBe(whole.text)
        expect(edge.finish!.finishReason).toBe('length')
        expect(edge.finish!.nextStep).toBe(maxTokens)
        expect(edge.finish!.usage.completionTokens).toBe(maxTokens - k)
      }
    },
  )

  it('joins exactly when the split falls inside a character or a possible stop string', async () => {
    const answer = 'Hi 😀 <b>ok</b> 你好 👨‍👩‍👧 end of the answer'
    const stop = ['<b>x', 'ZZZ']
    const ids = tokenizer.encode(answer, { addSpecialTokens: false })
    const maxTokens = ids.length
    const whole = await collect(scripted(answer).session, {
      promptTokenIds: prompt,
      sampling: { temperature: 0 },
      maxTokens,
      stop,
    })
    expect(whole.text).toBe(answer)
    for (let k = 0; k < ids.length; k++) {
      const device = await collect(scripted(answer, { failAtToken: k }).session, {
        promptTokenIds: prompt,
        sampling: { temperature: 0 },
        maxTokens,
        stop,
      })
      const edge = await collect(scripted(answer).session, {
        promptTokenIds: prompt,
        sampling: { temperature: 0 },
        maxTokens: maxTokens - k,
        stop,
        continuation: { tokenIds: device.tokenIds, step: k },
      })
      expect(device.text + edge.text).toBe(answer)
      expect(device.text).not.toContain('\uFFFD')
    }
  })

  describe('with tools', () => {
    const open = tokenizer.tokenToId('<tool_call>')!
    const eos = tokenizer.tokenToId('<|im_end|>')!
    const tools = [
      {
        name: 'get_weather',
        parameters: {
          type: 'object',
          properties: { city: { type: 'string', maxLength: 6 } },
          required: ['city'],
          additionalProperties: false,
        },
      },
    ]
    const auto = { tools, toolChoice: 'auto' as const, parallelToolCalls: false }
    // Text with whitespace before the call, then `<tool_call>`; the mask writes the call itself.
    const before = tokenizer.encode('Let me check 😀.\n\n', { addSpecialTokens: false })
    const script = [...before, open]
    const scriptedCall = (extra: Parameters<typeof createTestSession>[0] = {}) =>
      createTestSession({
        vocabularySize,
        favor: (tokens) => script[tokens.length - prompt.length],
        ...extra,
      })
    const request = { promptTokenIds: prompt, sampling: { temperature: 0 }, maxTokens: 60, constraint: auto }
    const shown = (parts: readonly GenerationPart[]) =>
      parts.flatMap((part) => (part.type === 'text-delta' ? [part.text] : []))

    it("a model without the call syntax refuses tools it would call with the edge's code (unsupported, param tools)", async () => {
      const parts = generate(createTestSession({ vocabularySize }), qwen3TokenizerWithoutToolCalls(), request)
      await expect(parts.next()).rejects.toMatchObject({ code: 'unsupported', param: 'tools' })
    })

    it('the text is what came before the call: no markup, no whitespace before it, streamed as finished', async () => {
      const whole = await collect(scriptedCall(), request)
      expect(whole.error).toBeUndefined()
      const finish = whole.finish!
      expect(finish.finishReason).toBe('tool-calls')
      expect(finish.toolCalls).toHaveLength(1)
      expect(finish.toolCalls![0]!.name).toBe('get_weather')
      expect(finish.text).toBe('Let me check 😀.')
      expect(whole.text).toBe(finish.text)
      expect(shown(whole.parts).some((text) => text.includes('<') || text.includes('\n'))).toBe(false)
      // Every token still travels in the deltas (a handoff needs them), markup included.
      expect(whole.tokenIds).toEqual(finish.tokenIds)
      expect(finish.tokenIds.slice(0, script.length)).toEqual(script)
      expect(finish.partial).toBeUndefined()
    })

    it('a call cut by the token limit: text before it only, partial, no call; a stop string leaves it whole', async () => {
      for (const maxTokens of [script.length, script.length + 3]) {
        const cut = await collect(scriptedCall(), { ...request, maxTokens })
        expect(cut.finish).toMatchObject({ finishReason: 'length', partial: true, text: 'Let me check 😀.' })
        expect(cut.finish!.toolCalls).toBeUndefined()
        expect(cut.text).toBe(cut.finish!.text)
        expect(cut.finish!.tokenIds).toHaveLength(maxTokens)
      }
      // required: the answer starts with the call, so a cut one has no text at all.
      const required = await collect(createTestSession({ vocabularySize }), {
        ...request,
        maxTokens: 4,
        constraint: { tools, toolChoice: 'required' },
      })
      expect(required.finish).toMatchObject({ finishReason: 'length', partial: true, text: '' })
      expect(shown(required.parts).every((text) => text === '')).toBe(true)
      expect(required.tokenIds).toEqual(required.finish!.tokenIds)
      // A stop string matches content only: one the call's markup holds leaves the call whole
      // (core/stop-strings-scope.test.ts has the rest of the rule).
      const spared = await collect(scriptedCall(), { ...request, stop: ['"arguments"'] })
      expect(spared.finish).toMatchObject({ finishReason: 'tool-calls', text: 'Let me check 😀.' })
      expect(spared.finish!.partial).toBeUndefined()
      expect(spared.finish!.toolCalls).toHaveLength(1)
    })

    it('a limit reached right after a call that only the end may follow cut nothing: tool-calls, not length', async () => {
      const call = tokenizer.encode(
        '<tool_call>\n{"name":"get_weather","arguments":{"city":"Paris"}}\n</tool_call>',
        { addSpecialTokens: false },
      )
      const answer = [...call, eos, ...call]
      const run = (constraint: GenerateRequest['constraint'], maxTokens: number) =>
        collect(
          createTestSession({ vocabularySize, favor: (tokens) => answer[tokens.length - prompt.length] }),
          { ...request, maxTokens, constraint },
        )
      const single = [
        { tools, toolChoice: { name: 'get_weather' } },
        { tools, toolChoice: 'required', parallelToolCalls: false },
        { tools, toolChoice: 'auto', parallelToolCalls: false },
      ] as const
      for (const constraint of single) {
        // The limit at `</tool_call>`: only EOS could come next, so the answer is the call. It
        // said 'length' (a truncated answer, to every OpenAI client) for a complete call.
        const atClose = await run(constraint, call.length)
        expect(atClose.finish, JSON.stringify(constraint)).toMatchObject({ finishReason: 'tool-calls' })
        expect(atClose.finish!.partial).toBeUndefined()
        expect(atClose.finish!.tokenIds).toEqual(call)
        expect(atClose.finish!.toolCalls).toEqual([
          { id: expect.stringMatching(/^call_/), name: 'get_weather', arguments: '{"city":"Paris"}' },
        ])
        // One token earlier the call is cut: length, partial, no call.
        const cut = await run(constraint, call.length - 1)
        expect(cut.finish).toMatchObject({ finishReason: 'length', partial: true })
        expect(cut.finish!.toolCalls).toBeUndefined()
      }
      // Where another call may follow, the model was cut before it said whether one does: length,
      // with the complete call (not partial).
      const parallel = await run({ tools, toolChoice: 'required' }, call.length)
      expect(parallel.finish).toMatchObject({ finishReason: 'length' })
      expect(parallel.finish!.partial).toBeUndefined()
      expect(parallel.finish!.toolCalls).toHaveLength(1)
    })

    it('call ids differ between prompts whose answers are the same tokens (one conversation, two turns)', async () => {
      const call = tokenizer.encode(
        '<tool_call>\n{"name":"get_weather","arguments":{"city":"Paris"}}\n</tool_call>',
        {
          addSpecialTokens: false,
        },
      )
      const answer = [...call, eos]
      const run = (promptTokenIds: readonly number[]) =>
        collect(
          createTestSession({
            vocabularySize,
            favor: (tokens) => answer[tokens.length - promptTokenIds.length],
          }),
          { ...request, promptTokenIds, constraint: { tools, toolChoice: 'required' as const } },
        )
      const first = await run(prompt)
      const next = await run([...prompt, ...tokenizer.encode(' Again.', { addSpecialTokens: false })])
      expect(first.finish!.tokenIds).toEqual(answer)
      expect(next.finish!.tokenIds).toEqual(answer)
      expect(first.finish!.toolCalls).toEqual([
        { id: expect.stringMatching(/^call_/), name: 'get_weather', arguments: '{"city":"Paris"}' },
      ])
      // A hash of the answer alone gave both the same id.
      expect(next.finish!.toolCalls![0]!.id).not.toBe(first.finish!.toolCalls![0]!.id)
    })

    it('text that ends without a call keeps its trailing whitespace', async () => {
      const ids = [...tokenizer.encode('Sunny. \n', { addSpecialTokens: false }), eos]
      const session = createTestSession({
        vocabularySize,
        favor: (tokens) => ids[tokens.length - prompt.length],
      })
      const result = await collect(session, request)
      expect(result.finish).toMatchObject({ finishReason: 'stop', text: 'Sunny. \n' })
      expect(result.text).toBe('Sunny. \n')
    })

    it('a handoff at any token (in the text, the whitespace, the call) joins to the same answer', async () => {
      const whole = await collect(scriptedCall(), request)
      const length = whole.finish!.tokenIds.length
      for (let k = 1; k < length; k++) {
        const device = await collect(scriptedCall({ failAtToken: k }), request)
        expect(device.error, `k=${k}`).toBeInstanceOf(BackendError)
        const edge = await collect(scriptedCall(), {
          ...request,
          maxTokens: request.maxTokens - k,
          continuation: { tokenIds: device.tokenIds, step: k },
        })
        expect([...device.tokenIds, ...edge.finish!.tokenIds], `k=${k}`).toEqual(whole.finish!.tokenIds)
        expect(device.text + edge.text, `k=${k}`).toBe(whole.finish!.text)
        expect(edge.finish!.text, `k=${k}`).toBe(edge.text)
        expect(edge.finish!.toolCalls, `k=${k}`).toEqual(whole.finish!.toolCalls)
        expect(edge.finish!.finishReason).toBe('tool-calls')
      }
    })
  })

  it('reuses the cached prefix on the next turn and rewinds when the history diverges', async () => {
    const session = createTestSession({ vocabularySize })
    const first = await generateText(session, tokenizer, {
      promptTokenIds: prompt,
      sampling: { temperature: 0 },
      maxTokens: 6,
    })
    const secondPrompt = [
      ...prompt,
      ...first.tokenIds,
      ...tokenizer.encode('<|im_end|>\n<|im_start|>user\nMore.<|im_end|>\n<|im_start|>assistant\n'),
    ]
    const callsBefore = session.appendCalls.length
    const second = await generateText(session, tokenizer, {
      promptTokenIds: secondPrompt,
      sampling: { temperature: 0 },
      maxTokens: 6,
    })
    // The second prefill only fed what the cache lacked: the last answer token and the new turn.
    expect(session.appendCalls[callsBefore]).toBe(
      secondPrompt.length - (prompt.length + first.tokenIds.length - 1),
    )
    const fresh = await generateText(createTestSession({ vocabularySize }), tokenizer, {
      promptTokenIds: secondPrompt,
      sampling: { temperature: 0 },
      maxTokens: 6,
    })
    expect(second.tokenIds).toEqual(fresh.tokenIds)
    // A different conversation with a shared system prefix: rewind, then the same answer as fresh.
    const other = tokenizer.encodeChat([{ role: 'user', content: 'Tell me a joke.' }], {
      enableThinking: false,
    })
    const rewound = await generateText(session, tokenizer, {
      promptTokenIds: other,
      sampling: { temperature: 0 },
      maxTokens: 6,
    })
    const unrewindable = createTestSession({ vocabularySize, rewindable: false })
    await generateText(unrewindable, tokenizer, { promptTokenIds: prompt, maxTokens: 3 })
    const reset = await generateText(unrewindable, tokenizer, {
      promptTokenIds: other,
      sampling: { temperature: 0 },
      maxTokens: 6,
    })
    expect(rewound.tokenIds).toEqual(reset.tokenIds)
    expect(unrewindable.tokens.slice(0, other.length)).toEqual(other)
  })

  it('prefills in chunks cut at the prompt boundaries and resumes the next turn at the last one it shares', async () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 'You are a patient storyteller who answers in full sentences.' },
      { role: 'user', content: 'Tell me a story about a lighthouse keeper and his cat.' },
    ]
    const options = { enableThinking: false }
    const first = encodeChatTurns(tokenizer, messages, options)
    expect(first.turnBoundaries.length).toBe(2)
    const session = createTestSession({ vocabularySize, rewindable: 'checkpoints' })
    const request = { sampling: { temperature: 0 }, maxTokens: 5 }
    const answer = await generateText(session, tokenizer, {
      ...request,
      promptTokenIds: first.tokenIds,
      promptBoundaries: first.turnBoundaries,
    })
    const [systemEnd, historyEnd] = first.turnBoundaries as [number, number]
    expect(session.appendCalls.slice(0, 3)).toEqual([
      systemEnd,
      historyEnd - systemEnd,
      first.tokenIds.length - historyEnd,
    ])
    // Same answer as one chunk: chunking changes how the prompt is fed, not what it means.
    const oneChunk = await generateText(createTestSession({ vocabularySize }), tokenizer, {
      ...request,
      promptTokenIds: first.tokenIds,
    })
    expect(answer.tokenIds).toEqual(oneChunk.tokenIds)

    // The next turn shares the history up to where the first answer started (the template
    // renders a past answer without the think block): resumed there, not from zero.
    messages.push({ role: 'assistant', content: answer.text }, { role: 'user', content: 'And then?' })
    const second = encodeChatTurns(tokenizer, messages, options)
    expect(second.turnBoundaries).toContain(historyEnd)
    const callsBefore = session.appendCalls.length
    const resumed = await generateText(session, tokenizer, {
      ...request,
      promptTokenIds: second.tokenIds,
      promptBoundaries: second.turnBoundaries,
    })
    const fed = session.appendCalls.slice(callsBefore, callsBefore + second.turnBoundaries.length - 1)
    expect(fed.reduce((total, count) => total + count, 0)).toBe(second.tokenIds.length - historyEnd)
    const cold = await generateText(createTestSession({ vocabularySize }), tokenizer, {
      ...request,
      promptTokenIds: second.tokenIds,
      promptBoundaries: second.turnBoundaries,
    })
    expect(resumed.tokenIds).toEqual(cold.tokenIds)

    // A conversation that shares only the system prompt resumes at its end.
    const other = encodeChatTurns(
      tokenizer,
      [messages[0] as ChatMessage, { role: 'user', content: 'Tell me a joke about a sailor and a parrot.' }],
      options,
    )
    const beforeOther = session.appendCalls.length
    await generateText(session, tokenizer, {
      ...request,
      promptTokenIds: other.tokenIds,
      promptBoundaries: other.turnBoundaries,
    })
    expect(session.appendCalls[beforeOther]).toBe((other.turnBoundaries[1] as number) - systemEnd)
  })

  it('rejects prompt boundaries that are not positions in the prompt', async () => {
    const session = createTestSession({ vocabularySize })
    for (const [promptBoundaries, param] of [
      ['3', 'promptBoundaries'],
      [[2.5], 'promptBoundaries.0'],
      [[1, -1], 'promptBoundaries.1'],
      [[prompt.length + 1], 'promptBoundaries.0'],
    ] as const) {
      const { error } = await collect(session, {
        promptTokenIds: prompt,
        promptBoundaries: promptBoundaries as unknown as number[],
      })
      expect(error).toBeInstanceOf(InvalidArgumentError)
      expect((error as InvalidArgumentError).param).toBe(param)
    }
  })

  it('refuses a field it does not know; a sampling option at the top level names sampling (temperature there was ignored: the answer sampled at 1)', async () => {
    const session = createTestSession({ vocabularySize })
    for (const [extra, param, says] of [
      [{ temperature: 0 }, 'temperature', 'sampling: { temperature'],
      [{ seed: 7 }, 'seed', 'sampling: { seed'],
      [{ maxtokens: 5 }, 'maxtokens', 'maxTokens'],
    ] as const) {
      const { error } = await collect(session, {
        promptTokenIds: prompt,
        maxTokens: 2,
        ...extra,
      } as GenerateRequest)
      expect(error, param).toBeInstanceOf(InvalidArgumentError)
      expect((error as InvalidArgumentError).param, param).toBe(param)
      expect((error as Error).message, param).toContain(says)
    }
  })

  it('stops with finish reason abort when the signal fires, between or during steps', async () => {
    const controller = new AbortController()
    const parts: GenerationPart[] = []
    for await (const part of generate(createTestSession({ vocabularySize }), tokenizer, {
      promptTokenIds: prompt,
      signal: controller.signal,
      maxTokens: 50,
    })) {
      parts.push(part)
      if (parts.length === 3) controller.abort()
    }
    const finish = parts.at(-1) as FinishPart
    expect(finish.finishReason).toBe('abort')
    expect(finish.tokenIds).toHaveLength(3)

    // During a step: a 5 s step aborted after 60 ms ends long before the step would have. The
    // bound sits far from both (it was 900 ms against a 1 s step: 840 ms of room for a loaded
    // machine's pauses, where a CI machine has shown one of 1.6 s).
    const slow = new AbortController()
    setTimeout(() => slow.abort(), 60)
    const started = performance.now()
    const slowResult = await generateText(createTestSession({ vocabularySize, delayMs: 5_000 }), tokenizer, {
      promptTokenIds: prompt,
      signal: slow.signal,
    })
    expect(slowResult.finishReason).toBe('abort')
    expect(performance.now() - started).toBeLessThan(2_500)
  })

  it('never draws the padding ids past the tokenizer (the model has more logits than tokens)', async () => {
    // Every step favors an id the tokenizer cannot decode; sampled and greedy draws skip it.
    const padding = vocabularySize + 5
    const session = createTestSession({ vocabularySize: vocabularySize + 200, favor: () => padding })
    for (const sampling of [{ temperature: 0 }, { temperature: 1, seed: 3 }] satisfies SamplingOptions[]) {
      await session.reset()
      const result = await collect(session, { promptTokenIds: prompt, sampling, maxTokens: 8 })
      expect(result.error).toBeUndefined()
      expect(result.finish?.tokenIds).toHaveLength(8)
      expect(result.finish?.tokenIds.every((id) => id < vocabularySize)).toBe(true)
    }
  })

  it('rejects bad requests with the field and the fix', async () => {
    const session = createTestSession({ vocabularySize: 100, contextLength: 10 })
    const attempt = (request: GenerateRequest) => generateText(session, tokenizer, request)
    await expect(attempt({ promptTokenIds: [] })).rejects.toThrow(/promptTokenIds is empty/)
    await expect(attempt({ promptTokenIds: [1, 500] })).rejects.toMatchObject({ param: 'promptTokenIds.1' })
    await expect(attempt({ promptTokenIds: [1], maxTokens: 0 })).rejects.toThrow(
      /maxTokens must be a whole number/,
    )
    await expect(attempt({ promptTokenIds: [1], stop: [''] })).rejects.toThrow(InvalidArgumentError)
    await expect(attempt({ promptTokenIds: [1], sampling: { topP: 2 } })).rejects.toThrow(/topP/)
    await expect(attempt({ promptTokenIds: [1], continuation: { tokenIds: [1], step: -1 } })).rejects.toThrow(
      /continuation.step/,
    )
    await expect(attempt({ promptTokenIds: new Array(10).fill(1) })).rejects.toThrow(ContextLengthError)
    const full = await attempt({ promptTokenIds: new Array(7).fill(1), sampling: { temperature: 0 } })
    expect(full.finishReason).toBe('length')
    expect(full.tokenIds).toHaveLength(3)
  })
})
