// The edge's param names mapped back to the SDK's: the module's table, and the same mistake
// caught by the device and by the real edge app over HTTP giving one error (class, code, param,
// isRetryable), with core's test session and the real Qwen3 tokenizer on both sides.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import type { ChatMessage } from '../core/chat-template.ts'
import {
  ContextLengthError,
  EdgeError,
  InvalidArgumentError,
  OndeviceError,
  TemplateError,
} from '../core/errors.ts'
import { fromErrorBody } from '../core/protocol/index.ts'
import { Tokenizer } from '../core/tokenizer.ts'
import { createTestDeviceHost } from '../test/sdk/test-device-host.ts'
import { startTestEdge, type TestEdge } from '../test/sdk/test-edge.ts'
import { qwen3TokenizerFiles, qwen3TokenizerWithoutToolCalls } from '../test/support/qwen3-tokenizer.ts'
import { createClient } from './client.ts'
import { requestOptionPath, withRequestOptionNames } from './edge-option-names.ts'
import type { ChatRequest } from './options.ts'

describe('requestOptionPath', () => {
  it("maps each wire path the edge may name to the SDK request's", () => {
    const cases: [string, string][] = [
      ['response_format', 'responseFormat'],
      ['response_format.type', 'responseFormat.type'],
      ['response_format.json_schema', 'responseFormat'],
      [
        'response_format.json_schema.schema.properties.age.multipleOf',
        'responseFormat.schema.properties.age.multipleOf',
      ],
      ['response_format.json_schema.strict', 'responseFormat.strict'],
      ['tools', 'tools'],
      ['tools.0', 'tools.0'],
      ['tools.2.type', 'tools.2'],
      ['tools.1.function', 'tools.1'],
      ['tools.1.function.name', 'tools.1.name'],
      ['tools.0.function.parameters.properties.x.not', 'tools.0.parameters.properties.x.not'],
      ['tool_choice', 'toolChoice'],
      ['tool_choice.type', 'toolChoice'],
      ['tool_choice.function.name', 'toolChoice.name'],
      ['parallel_tool_calls', 'parallelToolCalls'],
      ['messages.2.tool_calls.0.function.arguments', 'messages.2.toolCalls.0.function.arguments'],
      ['messages.2.tool_calls', 'messages.2.toolCalls'],
      ['messages.3.tool_call_id', 'messages.3.toolCallId'],
      ['messages.1.reasoning_content', 'messages.1.reasoningContent'],
      ['max_tokens', 'maxTokens'],
      ['max_completion_tokens', 'maxTokens'],
      ['chat_template_kwargs', 'enableThinking'],
      ['chat_template_kwargs.enable_thinking', 'enableThinking'],
      ['top_p', 'topP'],
      ['top_k', 'topK'],
      ['min_p', 'minP'],
      ['repetition_penalty', 'repetitionPenalty'],
      ['presence_penalty', 'presencePenalty'],
      ['frequency_penalty', 'frequencyPenalty'],
      ['logit_bias', 'logitBias'],
      ['logit_bias.151936', 'logitBias.151936'],
      ['model', 'edge.model'],
      // The same on both sides, or fields the SDK has no option for: as they are.
      ['messages', 'messages'],
      ['messages.0.content', 'messages.0.content'],
      ['messages.0.content.1.type', 'messages.0.content.1.type'],
      ['messages.1.role', 'messages.1.role'],
      ['temperature', 'temperature'],
      ['seed', 'seed'],
      ['stop', 'stop'],
      ['stop.2', 'stop.2'],
      ['ondevice_format', 'ondevice_format'],
      ['ondevice_continuation.token_ids.0', 'ondevice_continuation.token_ids.0'],
      ['stream_options.include_usage', 'stream_options.include_usage'],
      // A prefix is not a field.
      ['top_pp', 'top_pp'],
      ['modelx', 'modelx'],
      ['response_formatting', 'response_formatting'],
    ]
    expect(cases.map(([wire]) => [wire, requestOptionPath(wire)])).toEqual(cases)
  })
})

describe('withRequestOptionNames', () => {
  const read = (status: number, error: Record<string, unknown>, retryAfter?: number) =>
    fromErrorBody(status, { error: { type: 'invalid_request_error', ...error } }, retryAfter)

  it("rebuilds a refusal of the request as the device's error: its class, the SDK's names in param and message", () => {
    const invalid = withRequestOptionNames(
      read(400, {
        code: 'invalid_argument',
        param: 'messages.2.tool_calls.0.function.arguments',
        message: 'messages.2.tool_calls.0.function.arguments is not JSON.',
      }),
    )
    expect(invalid).toBeInstanceOf(InvalidArgumentError)
    expect(invalid).toMatchObject({
      code: 'invalid_argument',
      param: 'messages.2.toolCalls.0.function.arguments',
      isRetryable: false,
      message: 'The edge answered HTTP 400: messages.2.toolCalls.0.function.arguments is not JSON.',
    })
    // An EdgeError from the edge; an OndeviceError, as the device raises it, once renamed.
    const unsupported = withRequestOptionNames(
      read(400, { code: 'unsupported', param: 'response_format', message: 'No JSON here.' }),
    ) as OndeviceError
    expect(unsupported.constructor).toBe(OndeviceError)
    expect(unsupported).toMatchObject({ code: 'unsupported', param: 'responseFormat', isRetryable: false })
    const context = withRequestOptionNames(
      read(400, { code: 'context_length_exceeded', param: 'max_tokens', message: 'Too long.' }),
    )
    expect(context).toBeInstanceOf(ContextLengthError)
    expect(context).toMatchObject({ param: 'maxTokens' })
    const template = withRequestOptionNames(
      read(400, { code: 'template_failed', param: 'messages.1.tool_calls', message: 'No.' }),
    )
    expect(template).toBeInstanceOf(TemplateError)
    expect(template).toMatchObject({ param: 'messages.1.toolCalls' })
    // The original is kept as the cause.
    expect((template as Error).cause).toBeInstanceOf(OndeviceError)
  })

  it("keeps the edge's own errors its own, and anything without a wire name as it is", () => {
    const missing = withRequestOptionNames(
      read(404, { code: 'model_not_found', param: 'model', message: "The model 'x' is not served here." }),
    )
    expect(missing).toBeInstanceOf(EdgeError)
    expect(missing).toMatchObject({ code: 'model_not_found', param: 'edge.model' })
    const limited = read(429, { code: 'rate_limited', message: 'Slow down.' }, 7)
    expect(withRequestOptionNames(limited)).toBe(limited)
    // A field named alike on both sides keeps its name (and the device's class).
    const same = withRequestOptionNames(
      read(400, { code: 'invalid_argument', param: 'temperature', message: 'temperature is too hot.' }),
    )
    expect(same).toBeInstanceOf(InvalidArgumentError)
    expect(same).toMatchObject({
      param: 'temperature',
      message: 'The edge answered HTTP 400: temperature is too hot.',
    })
    const format = read(400, { code: 'unsupported', param: 'ondevice_format', message: 'Not here.' })
    expect(withRequestOptionNames(format)).toBe(format)
    const foreign = new Error('boom')
    expect(withRequestOptionNames(foreign)).toBe(foreign)
  })

  it('renames the path where the message quotes it, never inside a model id, a URL or a word', () => {
    // The edge's own words for an unknown model: the ids it lists and its URL stay as they are.
    const missing = withRequestOptionNames(
      read(404, {
        code: 'model_not_found',
        param: 'model',
        message:
          "The model 'my-model' is not served here. GET /v1/models lists the served models (qwen-model, model-b).",
      }),
    ) as EdgeError
    expect(missing.message).toBe(
      "The edge answered HTTP 404: The edge.model 'my-model' is not served here. GET /v1/models lists the served models (qwen-model, model-b).",
    )
    // A longer path the quoted one starts is renamed too; a field whose name merely contains it is not.
    const call = withRequestOptionNames(
      read(400, {
        code: 'invalid_argument',
        param: 'messages.1.tool_calls',
        message: 'messages.1.tool_calls.0.function.arguments is not JSON (see messages.1.tool_calls_extra).',
      }),
    ) as OndeviceError
    expect(call.message).toBe(
      'The edge answered HTTP 400: messages.1.toolCalls.0.function.arguments is not JSON (see messages.1.tool_calls_extra).',
    )
  })
})

describe('one mistake, one error: caught by the device or by the edge', () => {
  const edges: TestEdge[] = []
  afterAll(async () => {
    for (const edge of edges) await edge.close()
  })

  /** What an app can tell apart: the class, the code, the field, whether to retry. */
  const shape = (error: unknown) => {
    const caught = error as OndeviceError
    return {
      class: caught?.constructor?.name,
      name: caught?.name,
      code: caught?.code,
      param: caught?.param,
      isRetryable: caught?.isRetryable,
    }
  }

  async function bothRoutes(tokenizer: Tokenizer | undefined, request: ChatRequest) {
    const edge = await startTestEdge(tokenizer === undefined ? {} : { tokenizer })
    edges.push(edge)
    const device = createClient(
      { policy: 'device-only' },
      { deviceHost: createTestDeviceHost(tokenizer === undefined ? {} : { tokenizer }) },
    )
    const edgeOnly = createClient({ policy: 'edge-only', edge: { url: edge.url } })
    try {
      const results = []
      for (const client of [device, edgeOnly]) {
        const chat = await client.chat(request).then(
          () => undefined,
          (error: unknown) => error,
        )
        let part: unknown
        // A request the device's model cannot run (tools without call syntax) is refused by the
        // stream's first read itself, before any part (core's validateConstraintForModel).
        try {
          for await (const streamed of client.stream(request))
            if (streamed.type === 'error') part = streamed.error
        } catch (error) {
          part = error
        }
        results.push({ chat: shape(chat), stream: part, message: (chat as Error | undefined)?.message })
      }
      expect(edge.chatBodies.length).toBeGreaterThan(0)
      return results
    } finally {
      await device.dispose()
      await edgeOnly.dispose()
    }
  }

  it('arguments that are not a JSON object, for a template of the XML call syntax: messages.N.toolCalls.M.function.arguments', async () => {
    const template = readFileSync(
      fileURLToPath(new URL('../test/support/templates/qwen3-xml-tool-calls.jinja', import.meta.url)),
      'utf8',
    )
    const tokenizer = Tokenizer.fromFiles({ ...qwen3TokenizerFiles(), chatTemplate: template })
    const messages: ChatMessage[] = [
      { role: 'user', content: 'Weather in Paris?' },
      {
        role: 'assistant',
        content: '',
        toolCalls: [
          { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: 'Paris' } },
        ],
      },
      { role: 'tool', toolCallId: 'call_1', content: 'sunny' },
    ]
    const [device, edge] = await bothRoutes(tokenizer, { messages, maxTokens: 4 })
    expect(device?.chat).toEqual({
      class: 'InvalidArgumentError',
      name: 'InvalidArgumentError',
      code: 'invalid_argument',
      param: 'messages.1.toolCalls.0.function.arguments',
      isRetryable: false,
    })
    expect(edge?.chat).toEqual(device?.chat)
    expect(edge?.stream).toMatchObject({
      name: 'InvalidArgumentError',
      param: 'messages.1.toolCalls.0.function.arguments',
    })
    // The edge's message quotes the field by the SDK's name too.
    expect(edge?.message).toContain('messages.1.toolCalls.0.function.arguments is not JSON')
    expect(edge?.message).not.toContain('tool_calls')
  })

  it('tools on a model without the call syntax: unsupported, param tools, the same class', async () => {
    const request: ChatRequest = {
      messages: [{ role: 'user', content: 'Weather?' }],
      tools: [{ name: 'get_weather', parameters: { type: 'object', properties: {} } }],
      toolChoice: 'required',
      maxTokens: 4,
    }
    const [device, edge] = await bothRoutes(qwen3TokenizerWithoutToolCalls(), request)
    expect(device?.chat).toEqual({
      class: 'OndeviceError',
      name: 'OndeviceError',
      code: 'unsupported',
      param: 'tools',
      isRetryable: false,
    })
    expect(edge?.chat).toEqual(device?.chat)
    expect(shape(device?.stream)).toEqual(device?.chat)
    // The edge's refusal arrives as an error part (a serialized error), the same fields.
    const { class: _class, ...fields } = device?.chat ?? {}
    expect(edge?.stream).toMatchObject(fields)
  })

  it('a schema that grows too ambiguous mid-answer: responseFormat (the edge sends it as an error event)', async () => {
    // Arrays whose two anyOf alternatives differ only in maxItems: every '[' (token 58, which
    // logitBias makes the model write) doubles the readings, until the mask refuses mid-answer.
    const defs: Record<string, unknown> = {}
    for (let level = 0; level < 20; level++) {
      const items = level + 1 < 20 ? { $ref: `#/$defs/d${level + 1}` } : { type: 'integer' }
      defs[`d${level}`] = { anyOf: [5, 6].map((maxItems) => ({ type: 'array', items, maxItems })) }
    }
    const [device, edge] = await bothRoutes(undefined, {
      messages: [{ role: 'user', content: 'Nest.' }],
      responseFormat: { type: 'json_schema', schema: { $defs: defs, $ref: '#/$defs/d0' } },
      logitBias: { 58: 100 },
      seed: 1,
      maxTokens: 40,
    })
    expect(device?.chat).toMatchObject({ code: 'invalid_argument', param: 'responseFormat' })
    expect(edge?.chat).toEqual(device?.chat)
    expect(edge?.stream).toMatchObject({ name: device?.chat.name, param: 'responseFormat' })
    expect(edge?.message).toContain('The schema in responseFormat is too ambiguous')
  })

  it("a responseFormat name the wire's json_schema.name does not take (the AI SDK's schemaName 'Recipe Card'): responseFormat.name on both routes", async () => {
    // The device answered it and the edge refused it with a 400: the same request succeeded or
    // failed by route. Core refuses it for both now, so it never reaches the edge.
    const edge = await startTestEdge({})
    edges.push(edge)
    const device = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const edgeOnly = createClient({ policy: 'edge-only', edge: { url: edge.url } })
    try {
      for (const name of ['Recipe Card', 'x'.repeat(65), 7]) {
        const request = {
          messages: [{ role: 'user' as const, content: 'Hi' }],
          responseFormat: { type: 'json_schema', schema: { type: 'object' }, name } as never,
          maxTokens: 4,
        }
        const [onDevice, onEdge] = await Promise.all(
          [device, edgeOnly].map((client) =>
            client.chat(request).then(
              () => undefined,
              (error: unknown) => shape(error),
            ),
          ),
        )
        expect(onDevice, String(name)).toEqual({
          class: 'InvalidArgumentError',
          name: 'InvalidArgumentError',
          code: 'invalid_argument',
          param: 'responseFormat.name',
          isRetryable: false,
        })
        expect(onEdge, String(name)).toEqual(onDevice)
      }
      const valid = {
        messages: [{ role: 'user' as const, content: 'Hi' }],
        responseFormat: { type: 'json_schema' as const, schema: { type: 'object' }, name: 'recipe_card-2' },
        maxTokens: 4,
      }
      for (const client of [device, edgeOnly]) expect((await client.chat(valid)).finishReason).toBeDefined()
    } finally {
      await device.dispose()
      await edgeOnly.dispose()
    }
  })

  it('a logitBias token outside the vocabulary: logitBias.N', async () => {
    const [device, edge] = await bothRoutes(undefined, {
      messages: [{ role: 'user', content: 'Hi' }],
      logitBias: { 999999: 5 },
      maxTokens: 4,
    })
    expect(device?.chat).toEqual({
      class: 'InvalidArgumentError',
      name: 'InvalidArgumentError',
      code: 'invalid_argument',
      param: 'logitBias.999999',
      isRetryable: false,
    })
    expect(edge?.chat).toEqual(device?.chat)
  })
})
