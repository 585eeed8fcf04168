// The SDK's responseFormat and tools across both sides: the device (core's test session with the
// real Qwen3 tokenizer) and a real edge (worker/createApp over HTTP) mask alike, so an answer
// handed off in the middle of a JSON document continues token for token, and tool calls come back
// as the result's toolCalls and as 'tool-call' stream parts, on every route.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InvalidArgumentError } from '../core/errors.ts'
import type { StreamPart } from '../core/stream-parts.ts'
import { createTestDeviceHost } from '../test/sdk/test-device-host.ts'
import { startTestEdge, type TestEdge } from '../test/sdk/test-edge.ts'
import { qwen3Tokenizer } from '../test/support/qwen3-tokenizer.ts'
import { createClient } from './client.ts'

const messages = [{ role: 'user' as const, content: 'Describe a city as JSON.' }]
const schema = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 12 },
    population: { type: 'integer', minimum: 0, maximum: 99999999 },
    districts: {
      type: 'array',
      maxItems: 3,
      items: { type: 'array', maxItems: 2, items: { type: 'number', minimum: 0, maximum: 10 } },
    },
  },
  required: ['name', 'population', 'districts'],
  additionalProperties: false,
}
const request = {
  messages,
  responseFormat: { type: 'json_schema' as const, schema },
  temperature: 1,
  seed: 99,
  maxTokens: 80,
}
const relaxed = { minDeviceTokensPerSecond: 1 }
const tools = [
  {
    name: 'get_weather',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', maxLength: 10 } },
      required: ['city'],
      additionalProperties: false,
    },
  },
]

async function collect(parts: AsyncIterable<StreamPart>): Promise<StreamPart[]> {
  const out: StreamPart[] = []
  for await (const part of parts) out.push(part)
  return out
}

let edge: TestEdge
beforeAll(async () => {
  edge = await startTestEdge()
})
afterAll(async () => {
  await edge.close()
})

describe('structured output through the SDK', () => {
  it('a JSON schema answer: the same on the device and the edge, and across a handoff at any token', async () => {
    const device = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const reference = await device.chat(request)
    await device.dispose()
    expect(reference.finishReason).toBe('stop')
    const value = JSON.parse(reference.text) as Record<string, unknown>
    expect(Object.keys(value)).toEqual(['name', 'population', 'districts'])

    const onEdge = createClient({ policy: 'edge-only', edge: { url: edge.url } })
    const fromEdge = await onEdge.chat(request)
    await onEdge.dispose()
    expect(fromEdge.tokenIds).toEqual(reference.tokenIds)

    // Cut inside the name string, inside the number, inside the nested array.
    for (const k of [4, Math.floor(reference.tokenIds.length / 2), reference.tokenIds.length - 3]) {
      const client = createClient(
        { policy: 'prefer-device', edge: { url: edge.url }, thresholds: relaxed },
        { deviceHost: createTestDeviceHost({ failAtToken: k }) },
      )
      const result = await client.chat(request)
      await client.dispose()
      expect(result.route, `k=${k}`).toBe('device+edge')
      expect(result.tokenIds, `k=${k}`).toEqual(reference.tokenIds)
      expect(result.text).toBe(reference.text)
    }
  }, 60_000)

  it('tool calls: toolCalls on the result and tool-call parts, no call markup in the text, device and edge alike', async () => {
    for (const options of [
      { policy: 'device-only' as const },
      { policy: 'edge-only' as const, edge: { url: edge.url } },
    ]) {
      const client = createClient(options, { deviceHost: createTestDeviceHost() })
      const result = await client.chat({
        messages,
        tools,
        toolChoice: 'required',
        parallelToolCalls: false,
        temperature: 1,
        seed: 5,
        maxTokens: 60,
      })
      expect(result.finishReason, options.policy).toBe('tool-calls')
      expect(result.toolCalls).toHaveLength(1)
      expect(result.toolCalls?.[0]?.name).toBe('get_weather')
      expect(typeof (JSON.parse(result.toolCalls?.[0]?.arguments ?? '') as { city: unknown }).city).toBe(
        'string',
      )
      expect(result.text).toBe('')
      const parts: StreamPart[] = []
      for await (const part of client.stream({
        messages,
        tools,
        toolChoice: { name: 'get_weather' },
        parallelToolCalls: false,
        temperature: 1,
        seed: 5,
        maxTokens: 60,
      }))
        parts.push(part)
      expect(
        parts
          .filter((part) => part.type === 'text-delta')
          .map((part) => (part.type === 'text-delta' ? part.text : ''))
          .join(''),
      ).toBe('')
      // The call's tokens show no text: the reader's text deltas are the call's progress only
      // (no text), each a prefix of the finished call.
      const finished = result.toolCalls?.[0]
      for (const part of parts) {
        if (part.type !== 'text-delta') continue
        expect(part.text).toBe('')
        expect(part.toolCall?.id).toBe(finished?.id)
        expect(finished?.arguments.startsWith(part.toolCall?.arguments ?? '#')).toBe(true)
      }
      const calls = parts.filter((part) => part.type === 'tool-call')
      expect(calls).toHaveLength(1)
      expect(calls[0]?.type === 'tool-call' && calls[0].toolCall).toEqual(result.toolCalls?.[0])
      await client.dispose()
    }
  }, 60_000)

  it("a call cut by maxTokens: text '', partial, finish reason length on the device and the edge, streamed or not, and no markup on the wire", async () => {
    const cut = { messages, tools, toolChoice: 'required' as const, temperature: 0, maxTokens: 4 }
    const answers: (readonly number[])[] = []
    for (const options of [
      { policy: 'device-only' as const },
      { policy: 'edge-only' as const, edge: { url: edge.url } },
    ]) {
      const client = createClient(options, { deviceHost: createTestDeviceHost() })
      const result = await client.chat(cut)
      expect(result, options.policy).toMatchObject({ text: '', partial: true, finishReason: 'length' })
      expect(result.toolCalls).toBeUndefined()
      expect(result.tokenIds).toHaveLength(4)
      const parts = await collect(client.stream(cut))
      expect(parts.filter((part) => part.type === 'text-delta' || part.type === 'tool-call')).toEqual([])
      expect(parts.at(-1)).toEqual(
        expect.objectContaining({
          type: 'finish',
          text: '',
          partial: true,
          finishReason: 'length',
          tokenIds: result.tokenIds,
        }),
      )
      answers.push(result.tokenIds)
      await client.dispose()
    }
    expect(answers[1]).toEqual(answers[0])

    // The wire, as any OpenAI client reads it: content null (no text beside the cut call), no
    // tool_calls, and streamed, no content in any delta after the role chunk.
    const body = {
      model: edge.modelId,
      messages,
      tools: tools.map((tool) => ({ type: 'function', function: tool })),
      tool_choice: 'required',
      temperature: 0,
      max_tokens: 4,
    }
    const post = (extra: object) =>
      fetch(`${edge.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...body, ...extra }),
      })
    const plain = (await (await post({})).json()) as {
      choices: { message: Record<string, unknown>; finish_reason: string }[]
      ondevice: { token_ids: number[]; partial?: boolean }
      usage: { prompt_tokens: number }
    }
    expect(plain.choices[0]?.message).toEqual({ role: 'assistant', content: null, refusal: null })
    expect(plain.choices[0]?.finish_reason).toBe('length')
    expect(plain.ondevice).toMatchObject({ token_ids: answers[0], partial: true })
    const streamed = await post({ stream: true })
    // The prompt's size comes before any token (an aborted client still knows it).
    expect(streamed.headers.get('x-ondevice-prompt-tokens')).toBe(String(plain.usage.prompt_tokens))
    const chunks = (await streamed.text())
      .split('\n\n')
      .filter((event) => event.startsWith('data: {'))
      .map(
        (event) =>
          JSON.parse(event.slice('data: '.length)) as {
            choices: { delta: Record<string, unknown>; finish_reason: string | null }[]
            ondevice?: { partial?: boolean }
          },
      )
    const deltas = chunks.map((chunk) => chunk.choices[0]?.delta ?? {})
    // A forced call has no text: the role chunk says content null, as OpenAI's does.
    expect(deltas[0]).toEqual({ role: 'assistant', content: null })
    expect(deltas.slice(1).filter((delta) => 'content' in delta || 'tool_calls' in delta)).toEqual([])
    expect(deltas.flatMap((delta) => (delta['token_ids'] as number[] | undefined) ?? [])).toEqual(answers[0])
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('length')
    expect(chunks.at(-1)?.ondevice).toMatchObject({ partial: true })
  }, 60_000)

  it('a call cut inside its arguments: the wire streamed its start (as OpenAI does), the edge client makes it no call', async () => {
    const cut = { messages, tools, toolChoice: 'required' as const, temperature: 0, maxTokens: 20 }
    const response = await fetch(`${edge.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: edge.modelId,
        messages,
        tools: tools.map((tool) => ({ type: 'function', function: tool })),
        tool_choice: 'required',
        temperature: 0,
        max_tokens: 20,
        stream: true,
      }),
    })
    const wire = await response.text()
    // The name and part of the arguments went out; the answer was cut before the call ended.
    expect(wire).toContain('"tool_calls":[{"index":0,"id":"call_')
    expect(wire).toContain('"finish_reason":"length"')
    const client = createClient({ policy: 'edge-only', edge: { url: edge.url } })
    const result = await client.chat(cut)
    expect(result).toMatchObject({ text: '', partial: true, finishReason: 'length' })
    // It came back as a call whose arguments were cut JSON.
    expect(result.toolCalls).toBeUndefined()
    await client.dispose()
  }, 60_000)

  it('text before a call: the same text on the device, the edge and across a handoff, never the markup or the whitespace before the call', async () => {
    // The model says `script` (text, whitespace, then `<tool_call>`); the mask writes the call.
    const tokenizer = qwen3Tokenizer()
    const script = [
      ...tokenizer.encode('Checking the sky.\n\n', { addSpecialTokens: false }),
      tokenizer.tokenToId('<tool_call>')!,
    ]
    // Where the answer stands in the script: the longest script prefix the history ends with.
    const favor = (history: readonly number[]): number | undefined => {
      for (let length = script.length; length >= 0; length--) {
        const tail = history.slice(history.length - length)
        if (length <= history.length && tail.every((id, index) => id === script[index])) return script[length]
      }
      return undefined
    }
    const scriptedEdge = await startTestEdge({ session: { favor } })
    const ask = {
      messages,
      tools,
      toolChoice: 'auto' as const,
      parallelToolCalls: false,
      temperature: 0,
      maxTokens: 60,
    }
    try {
      const device = createClient(
        { policy: 'device-only' },
        { deviceHost: createTestDeviceHost({ session: { favor } }) },
      )
      const reference = await device.chat(ask)
      const deviceParts = await collect(device.stream(ask))
      await device.dispose()
      expect(reference).toMatchObject({ text: 'Checking the sky.', finishReason: 'tool-calls' })
      expect(reference.toolCalls).toHaveLength(1)
      expect(reference.tokenIds.slice(0, script.length)).toEqual(script)

      const onEdge = createClient({ policy: 'edge-only', edge: { url: scriptedEdge.url } })
      const fromEdge = await onEdge.chat(ask)
      const edgeParts = await collect(onEdge.stream(ask))
      await onEdge.dispose()
      expect(fromEdge.tokenIds).toEqual(reference.tokenIds)
      expect(fromEdge.text).toBe(reference.text)
      expect(fromEdge.toolCalls).toEqual(reference.toolCalls)
      for (const parts of [deviceParts, edgeParts]) {
        // The deltas with no text are the call's progress (TextDeltaPart.toolCall).
        const texts = parts.flatMap((part) =>
          part.type === 'text-delta' && part.toolCall === undefined ? [part.text] : [],
        )
        expect(texts.join('')).toBe('Checking the sky.')
        expect(texts.every((text) => text !== '' && !text.includes('\n'))).toBe(true)
        expect(parts.filter((part) => part.type === 'tool-call')).toHaveLength(1)
      }

      // The device fails in the text, in the whitespace (held back, not shown yet), in the call.
      for (const k of [3, script.length - 1, script.length + 4]) {
        const client = createClient(
          { policy: 'prefer-device', edge: { url: scriptedEdge.url }, thresholds: relaxed },
          { deviceHost: createTestDeviceHost({ session: { favor }, failAtToken: k }) },
        )
        const parts = await collect(client.stream(ask))
        await client.dispose()
        const finish = parts.at(-1)
        expect(finish?.type === 'finish' && finish.usage.route, `k=${k}`).toBe('device+edge')
        expect(finish?.type === 'finish' && finish.tokenIds, `k=${k}`).toEqual(reference.tokenIds)
        expect(finish?.type === 'finish' && finish.text, `k=${k}`).toBe(reference.text)
        expect(finish?.type === 'finish' && finish.toolCalls, `k=${k}`).toEqual(reference.toolCalls)
        const texts = parts.flatMap((part) => (part.type === 'text-delta' ? [part.text] : []))
        expect(texts.join(''), `k=${k}`).toBe(reference.text)
      }

      // Stop strings apps send match content only: the newlines before the call are its
      // separator and the call's JSON is markup, so the answer is the same on the device, the
      // edge and across a handoff (they cut the call, or ended the text at its first newline).
      const stopped = { ...ask, stop: ['\n', '}', '"', ':'] }
      const stoppedDevice = createClient(
        { policy: 'device-only' },
        { deviceHost: createTestDeviceHost({ session: { favor } }) },
      )
      expect(await stoppedDevice.chat(stopped)).toMatchObject({
        text: reference.text,
        toolCalls: reference.toolCalls,
        tokenIds: reference.tokenIds,
      })
      await stoppedDevice.dispose()
      for (const k of [0, script.length - 1, script.length + 4]) {
        const client = createClient(
          {
            policy: k === 0 ? 'edge-only' : 'prefer-device',
            edge: { url: scriptedEdge.url },
            thresholds: relaxed,
          },
          { deviceHost: createTestDeviceHost({ session: { favor }, failAtToken: k }) },
        )
        const result = await client.chat(stopped)
        await client.dispose()
        expect(result, `k=${k}`).toMatchObject({
          text: reference.text,
          toolCalls: reference.toolCalls,
          tokenIds: reference.tokenIds,
          finishReason: 'tool-calls',
        })
        if (k > 0) expect(result.route, `k=${k}`).toBe('device+edge')
      }
    } finally {
      await scriptedEdge.close()
    }
  }, 60_000)

  it('an abort that cuts the document: the finish says partial on the device and the edge, as a maxTokens cut does', async () => {
    // An app streaming JSON with a stop button parses the finish's text unless it is partial (the
    // FinishPart contract: the token limit, an abort or a stop string). An aborted finish had no
    // partial, so such an app parsed '{"name":"...' and threw.
    const reference = await (async () => {
      const device = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
      const result = await device.chat(request)
      await device.dispose()
      return result
    })()
    const routes = [
      () =>
        createClient(
          { policy: 'device-only' },
          { deviceHost: createTestDeviceHost({ session: { delayMs: 2 } }) },
        ),
      () => createClient({ policy: 'edge-only', edge: { url: edge.url } }),
    ]
    for (const [index, makeClient] of routes.entries()) {
      // Cut after a few deltas, inside the document.
      const client = makeClient()
      const controller = new AbortController()
      let deltas = 0
      let finish: StreamPart | undefined
      for await (const part of client.stream({ ...request, signal: controller.signal })) {
        if (part.type === 'text-delta' && ++deltas === 3) controller.abort()
        if (part.type === 'finish') finish = part
      }
      expect(finish, `route ${index}`).toMatchObject({ finishReason: 'abort', partial: true })
      expect(() => JSON.parse((finish as { text: string }).text)).toThrow()
      // Stopped once the whole document was shown: nothing was cut, so nothing is partial.
      const whole = new AbortController()
      let text = ''
      let last: StreamPart | undefined
      for await (const part of client.stream({ ...request, signal: whole.signal })) {
        if (part.type === 'text-delta') {
          text += part.text
          if (text === reference.text) whole.abort()
        }
        if (part.type === 'finish') last = part
      }
      expect(last, `route ${index}`).toMatchObject({ finishReason: 'abort', text: reference.text })
      expect((last as { partial?: boolean }).partial, `route ${index}`).toBeUndefined()
      await client.dispose()
    }
  }, 60_000)

  it('an abort of a forced tool call: the finish says partial (it lists no call) on the device and the edge', async () => {
    // With toolChoice 'required' or a named tool the answer is its calls, and an aborted finish
    // lists none (what was shown: a call's markup shows nothing), so the call it stopped was cut.
    const routes = [
      () =>
        createClient(
          { policy: 'device-only' },
          { deviceHost: createTestDeviceHost({ session: { delayMs: 2 } }) },
        ),
      () => createClient({ policy: 'edge-only', edge: { url: edge.url } }),
    ]
    for (const [index, makeClient] of routes.entries()) {
      const client = makeClient()
      for (const toolChoice of ['required', { name: 'get_weather' }] as const) {
        const controller = new AbortController()
        const parts: StreamPart[] = []
        const forced = { messages, tools, toolChoice, seed: 3, maxTokens: 60, signal: controller.signal }
        for await (const part of client.stream(forced)) {
          parts.push(part)
          if (part.type === 'route') setTimeout(() => controller.abort(), 5)
        }
        const finish = parts.at(-1)
        expect(finish, `route ${index}`).toMatchObject({
          type: 'finish',
          finishReason: 'abort',
          partial: true,
        })
        expect(parts.some((part) => part.type === 'tool-call')).toBe(false)
      }
      // A free answer ('auto' that wrote text) has no call to cut: no partial.
      const controller = new AbortController()
      let finish: StreamPart | undefined
      let deltas = 0
      for await (const part of client.stream({
        messages,
        tools,
        toolChoice: 'none',
        seed: 3,
        maxTokens: 60,
        signal: controller.signal,
      })) {
        if (part.type === 'text-delta' && ++deltas === 2) controller.abort()
        if (part.type === 'finish') finish = part
      }
      expect(finish, `route ${index}`).toMatchObject({ finishReason: 'abort' })
      expect((finish as { partial?: boolean }).partial).toBeUndefined()
      await client.dispose()
    }
  }, 60_000)

  it("an abort inside a call that toolChoice 'auto' let the model open: partial on the device and the edge, as a maxTokens cut there is", async () => {
    // 'auto' leaves the answer free, so an abort said partial only for a forced call: one stopped
    // inside a call the model opened itself finished 'abort' without partial and without the
    // call, as if the answer had been complete text. The abort comes from the model's own step
    // (the session's hook, once the call's `<tool_call>` and five more tokens are drawn), each
    // step slowed, so the call's first tokens reach the reader well before it.
    const [toolCallOpen, toolCallClose] = [151657, 151658]
    const controller = { current: new AbortController() }
    // The prompt's tool instructions hold `<tool_call></tool_call>`: an open call is the answer's.
    const abortInsideTheCall = (tokens: readonly number[]) => {
      const opened = tokens.lastIndexOf(toolCallOpen)
      if (opened > tokens.lastIndexOf(toolCallClose) && tokens.length - opened >= 6)
        controller.current.abort()
      return undefined
    }
    const slowEdge = await startTestEdge({ session: { delayMs: 20, favor: abortInsideTheCall } })
    const routes = [
      () =>
        createClient(
          { policy: 'device-only' },
          { deviceHost: createTestDeviceHost({ session: { delayMs: 2, favor: abortInsideTheCall } }) },
        ),
      () => createClient({ policy: 'edge-only', edge: { url: slowEdge.url } }),
    ]
    try {
      for (const [index, makeClient] of routes.entries()) {
        const client = makeClient()
        // The model opens a call at once (its `<tool_call>` biased), then writes it under the mask.
        controller.current = new AbortController()
        const opened = { messages, tools, toolChoice: 'auto' as const, logitBias: { [toolCallOpen]: 100 } }
        const parts: StreamPart[] = []
        for await (const part of client.stream({
          ...opened,
          seed: 3,
          maxTokens: 60,
          signal: controller.current.signal,
        }))
          parts.push(part)
        expect(parts.at(-1), `route ${index}`).toMatchObject({
          type: 'finish',
          finishReason: 'abort',
          text: '',
          partial: true,
        })
        expect(parts.some((part) => part.type === 'tool-call')).toBe(false)
        // The token limit there says so already.
        const cut = await client.chat({ ...opened, seed: 3, maxTokens: 4 })
        expect(cut, `route ${index}`).toMatchObject({ finishReason: 'length', partial: true })
        await client.dispose()
      }
    } finally {
      await slowEdge.close()
    }
  }, 60_000)

  it('a keyword the grammar cannot enforce is an InvalidArgumentError naming it, before anything runs', async () => {
    const client = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    await expect(
      client.chat({
        messages,
        responseFormat: { type: 'json_schema', schema: { type: 'string', format: 'regex' } },
      }),
    ).rejects.toMatchObject({
      constructor: InvalidArgumentError,
      param: 'responseFormat.schema.format',
    })
    await expect(client.chat({ messages, tools, toolChoice: { name: 'nope' } })).rejects.toMatchObject({
      param: 'toolChoice.name',
    })
    await client.dispose()
  })

  it("a tool's schema under another API's name (MCP's inputSchema, Anthropic's input_schema) is refused naming parameters, on the device and the edge", async () => {
    // It was dropped without a word: the model saw a tool without parameters and its calls were
    // checked against no schema (any object), while the edge refuses the same slip on the wire
    // (tools.0.function.input_schema). An MCP server's tool list is { name, description, inputSchema }.
    const schema = tools[0]!.parameters
    const device = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const edgeOnly = createClient({ policy: 'edge-only', edge: { url: edge.url } })
    for (const client of [device, edgeOnly]) {
      for (const key of ['inputSchema', 'input_schema', 'schema', 'paramaters']) {
        const tool = { name: 'get_weather', description: 'Weather for a city.', [key]: schema }
        const error = await client
          .chat({ messages, tools: [tool as never], toolChoice: 'required', maxTokens: 30 })
          .catch((thrown: unknown) => thrown)
        expect(error, key).toBeInstanceOf(InvalidArgumentError)
        expect(error, key).toMatchObject({ param: `tools.0.${key}` })
        expect((error as Error).message).toContain('tools.0.parameters')
      }
      // OpenAI's wire shape says which fields the SDK takes, not only that a name is missing.
      const wire = { type: 'function', function: { name: 'get_weather', parameters: schema } }
      const error = await client.chat({ messages, tools: [wire as never] }).catch((thrown: unknown) => thrown)
      expect(error).toMatchObject({ param: 'tools.0.function' })
      expect((error as Error).message).toContain('{ name, description?, parameters? }')
    }
    // An app's own keys beside a tool (its implementation, a schema it parses the arguments with,
    // beside parameters) are still left alone.
    const withExecute = { ...tools[0]!, execute: () => 'sunny', schema: { parse: 'its own' } }
    const result = await device.chat({
      messages,
      tools: [withExecute],
      toolChoice: 'required',
      maxTokens: 40,
      seed: 1,
    })
    expect(result.toolCalls?.[0]?.name).toBe('get_weather')
    await device.dispose()
    await edgeOnly.dispose()
  })
})
