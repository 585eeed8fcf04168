// Shared by the Node and the workerd API fuzzing: the request generators and the check that a
// response is either a valid answer or a well-formed OpenAI error (never a 5xx, never a hang).
import fc from 'fast-check'

export interface FuzzRequest {
  readonly label: string
  readonly headers: Record<string, string>
  readonly body: string | Uint8Array | undefined
  readonly method?: string
  readonly path?: string
}

const odd = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom(
    '',
    '\u0000',
    '\ud800',
    '\udfff',
    '<|im_start|>system\n',
    '<|endoftext|>',
    '\u202e',
    '👩‍👩‍👧',
    'ﷺ',
    '\u{10ffff}',
    '__proto__',
    'constructor',
  ),
)

const number = fc.oneof(
  fc.integer({ min: -5, max: 5 }),
  fc.double({ noNaN: false }),
  fc.constantFrom(
    0,
    -0,
    1,
    2,
    8,
    64,
    2 ** 31,
    2 ** 53,
    -(2 ** 53),
    1e308,
    -1e308,
    5e-324,
    0.5,
    -1,
    2049,
    1e21,
  ),
)

/** A JSON value of any type, including hostile shapes. */
const anything: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: odd },
  { weight: 1, arbitrary: number },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}, [null], { content: 'x' }) },
)

const content = fc.oneof(
  { weight: 4, arbitrary: odd },
  {
    weight: 1,
    arbitrary: fc.array(
      fc.record(
        { type: fc.constantFrom('text', 'image_url', 'input_audio', 'x'), text: odd },
        { requiredKeys: ['type'] },
      ),
      { maxLength: 3 },
    ),
  },
  { weight: 1, arbitrary: anything },
)

const message = fc.record(
  {
    role: fc.oneof(
      { weight: 5, arbitrary: fc.constantFrom('system', 'user', 'assistant', 'tool', 'developer') },
      { weight: 1, arbitrary: anything },
    ),
    content,
    name: odd,
    tool_call_id: odd,
    tool_calls: anything,
  },
  { requiredKeys: ['role', 'content'] },
)

/** A chat-completion body: mostly plausible, each field sometimes of a wrong type or out of range. */
export function chatBody(modelId: string): fc.Arbitrary<Record<string, unknown>> {
  const maybeWrong = <T>(good: fc.Arbitrary<T>) =>
    fc.oneof({ weight: 4, arbitrary: good }, { weight: 1, arbitrary: anything })
  return fc.record(
    {
      model: fc.oneof({ weight: 8, arbitrary: fc.constant(modelId) }, { weight: 1, arbitrary: anything }),
      messages: fc.oneof(
        { weight: 8, arbitrary: fc.array(message, { minLength: 0, maxLength: 4 }) },
        { weight: 1, arbitrary: anything },
      ),
      max_tokens: maybeWrong(fc.integer({ min: 1, max: 6 })),
      max_completion_tokens: maybeWrong(fc.integer({ min: 1, max: 6 })),
      temperature: maybeWrong(fc.double({ min: 0, max: 2, noNaN: true })),
      top_p: maybeWrong(fc.double({ min: 0, max: 1, noNaN: true })),
      top_k: maybeWrong(fc.integer({ min: 0, max: 50 })),
      min_p: maybeWrong(fc.double({ min: 0, max: 1, noNaN: true })),
      repetition_penalty: maybeWrong(fc.double({ min: 0, max: 3, noNaN: true })),
      presence_penalty: number,
      frequency_penalty: number,
      seed: maybeWrong(fc.integer()),
      n: number,
      stream: maybeWrong(fc.boolean()),
      stream_options: maybeWrong(fc.record({ include_usage: fc.boolean() })),
      stop: maybeWrong(fc.oneof(odd, fc.array(odd, { maxLength: 5 }))),
      logit_bias: maybeWrong(fc.dictionary(fc.oneof(fc.nat().map(String), odd), number, { maxKeys: 4 })),
      logprobs: anything,
      tools: anything,
      tool_choice: anything,
      response_format: anything,
      user: odd,
      ondevice_continuation: maybeWrong(
        fc.record(
          {
            token_ids: fc.array(fc.oneof(fc.nat(200_000), number), { maxLength: 5 }),
            step: maybeWrong(fc.nat(10)),
          },
          { requiredKeys: [] },
        ),
      ),
      [`x_${'unknown'}`]: anything,
    },
    { requiredKeys: ['model', 'messages'] },
  )
}

/** A body that is mostly valid: right types, values near and past the edges, hostile text. */
export function plausibleChatBody(modelId: string): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(
    {
      model: fc.constant(modelId),
      messages: fc.array(
        fc.record({ role: fc.constantFrom('system', 'user', 'assistant', 'user'), content: odd }),
        { minLength: 1, maxLength: 4 },
      ),
      max_tokens: fc.integer({ min: 1, max: 4 }),
      temperature: fc.double({ min: 0, max: 2, noNaN: true }),
      top_p: fc.double({ min: 0.01, max: 1, noNaN: true }),
      top_k: fc.integer({ min: 0, max: 64 }),
      min_p: fc.double({ min: 0, max: 1, noNaN: true }),
      repetition_penalty: fc.double({ min: 0.01, max: 3, noNaN: true }),
      presence_penalty: fc.double({ min: -2, max: 2, noNaN: true }),
      frequency_penalty: fc.double({ min: -2, max: 2, noNaN: true }),
      seed: fc.oneof(fc.integer(), fc.constantFrom(0, -1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER)),
      stream: fc.boolean(),
      stream_options: fc.record({ include_usage: fc.boolean() }),
      stop: fc.oneof(
        odd.filter((text) => text.length > 0),
        fc.array(
          odd.filter((text) => text.length > 0),
          { maxLength: 4 },
        ),
      ),
      logit_bias: fc.dictionary(
        fc
          .oneof(fc.nat(5000), fc.nat(), fc.constantFrom(151_643, 151_645, 4095, 4096, 999_999_999))
          .map(String),
        fc.double({ min: -100, max: 100, noNaN: true }),
        { maxKeys: 4 },
      ),
      ondevice_continuation: fc.record({
        token_ids: fc.array(fc.nat(5000), { maxLength: 6 }),
        step: fc.nat(8),
      }),
    },
    { requiredKeys: ['model', 'messages'] },
  )
}

function deepNesting(depth: number, open: string, close: string): string {
  return open.repeat(depth) + close.repeat(depth)
}

const jsonHeaders = { 'content-type': 'application/json' }

/** Requests that are not a plausible JSON object: raw text, wrong types, broken framing. */
export function rawRequest(modelId: string): fc.Arbitrary<FuzzRequest> {
  const valid = JSON.stringify({
    model: modelId,
    messages: [{ role: 'user', content: 'hello there' }],
    max_tokens: 2,
  })
  return fc.oneof(
    fc
      .jsonValue()
      .map((value) => ({ label: 'json value', headers: jsonHeaders, body: JSON.stringify(value) })),
    fc
      .nat(valid.length - 1)
      .map((cut) => ({ label: 'truncated', headers: jsonHeaders, body: valid.slice(0, cut) })),
    fc
      .integer({ min: 1, max: 20_000 })
      .map((depth) => ({ label: 'deep array', headers: jsonHeaders, body: deepNesting(depth, '[', ']') })),
    fc.integer({ min: 1, max: 20_000 }).map((depth) => ({
      label: 'deep messages',
      headers: jsonHeaders,
      body: `{"model":${JSON.stringify(modelId)},"messages":[{"role":"user","content":${deepNesting(depth, '{"a":', '}').replace(/}+$/, (tail) => `1${tail}`)}}]}`,
    })),
    fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e999', '-1e999', '-0').map((literal) => ({
      label: 'non-JSON number',
      headers: jsonHeaders,
      body: `{"model":${JSON.stringify(modelId)},"messages":[{"role":"user","content":"hi"}],"max_tokens":${literal},"temperature":${literal}}`,
    })),
    fc.constantFrom('1e999', '-1', '0', '2.5', '9007199254740993').map((literal) => ({
      label: 'odd number',
      headers: jsonHeaders,
      body: `{"model":${JSON.stringify(modelId)},"messages":[{"role":"user","content":"hi"}],"max_tokens":${literal}}`,
    })),
    fc.constant({
      label: 'duplicate keys',
      headers: jsonHeaders,
      body: `{"model":"nope","model":${JSON.stringify(modelId)},"messages":[],"messages":[{"role":"user","content":"hi"}],"max_tokens":2,"max_tokens":1,"stream":true,"stream":false}`,
    }),
    fc
      .constantFrom(
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/json; charset=latin1',
        '',
        'application/xml',
      )
      .map(
        (type): FuzzRequest => ({
          label: 'content type',
          headers: type ? { 'content-type': type } : {},
          body: type.startsWith('application/x-www') ? 'model=x&messages=y' : valid,
        }),
      ),
    fc
      .uint8Array({ maxLength: 200 })
      .map((bytes) => ({ label: 'random bytes', headers: jsonHeaders, body: bytes })),
    fc
      .constantFrom(
        new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
        new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(valid)]),
      )
      .map((bytes) => ({
        label: 'bad utf-8 / BOM',
        headers: jsonHeaders,
        body: bytes,
      })),
    fc.constant({ label: 'empty body', headers: jsonHeaders, body: '' }),
    fc.constant({ label: 'no body', headers: jsonHeaders, body: undefined }),
    fc.integer({ min: 1, max: 3 }).map((mib) => ({
      label: 'huge body',
      headers: jsonHeaders,
      body: `{"model":"m","messages":[{"role":"user","content":"${'a'.repeat(mib * 1024 * 1024)}"}]}`,
    })),
    fc.integer({ min: 300, max: 3000 }).map((count) => ({
      label: 'many messages',
      headers: jsonHeaders,
      body: JSON.stringify({
        model: modelId,
        messages: Array.from({ length: count }, () => ({ role: 'user', content: 'x' })),
        max_tokens: 1,
      }),
    })),
    fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH').map((method) => ({
      label: 'method',
      method,
      headers: jsonHeaders,
      body: method === 'GET' || method === 'DELETE' ? undefined : valid,
    })),
    fc
      .constantFrom(
        '/v1/chat/completions/',
        '/v1/chat/completions%00',
        '/v1/../healthz',
        '/v1/models/%ff',
        '/v1/models/..%2f..%2fetc',
        '/v1/%2e%2e/x',
        '/V1/CHAT/COMPLETIONS',
      )
      .map((path) => ({ label: 'path', path, headers: jsonHeaders, body: valid })),
  )
}

export interface CheckedResponse {
  readonly status: number
  readonly kind: 'answer' | 'stream' | 'error' | 'other'
}

/** Reads a response fully (with a deadline) and checks its shape; throws a message that says what is wrong. */
export async function checkResponse(response: Response, deadlineMs: number): Promise<CheckedResponse> {
  const text = await withDeadline(response.text(), deadlineMs, 'reading the response body')
  const status = response.status
  if (status >= 500) throw new Error(`HTTP ${status}: ${text.slice(0, 300)}`)
  const type = response.headers.get('content-type') ?? ''
  if (status >= 400) {
    const body = JSON.parse(text) as {
      error?: { message?: unknown; type?: unknown; code?: unknown; param?: unknown }
    }
    const error = body.error
    if (
      typeof error?.message !== 'string' ||
      error.message.length === 0 ||
      typeof error.type !== 'string' ||
      !('code' in error) ||
      !('param' in error)
    ) {
      throw new Error(`HTTP ${status} without an OpenAI error body: ${text.slice(0, 300)}`)
    }
    if (!type.includes('application/json')) throw new Error(`HTTP ${status} error with content-type ${type}`)
    return { status, kind: 'error' }
  }
  if (type.includes('text/event-stream')) {
    const events = text.split('\n\n').filter((block) => block.trim().length > 0)
    const last = events.at(-1)
    for (const block of events) {
      if (!block.startsWith('data: ')) throw new Error(`SSE block without data: ${block.slice(0, 200)}`)
      const data = block.slice(6)
      if (data === '[DONE]') continue
      const parsed = JSON.parse(data) as { object?: string; error?: { message?: string } }
      if (parsed.object !== 'chat.completion.chunk' && typeof parsed.error?.message !== 'string') {
        throw new Error(`SSE event is neither a chunk nor an error: ${data.slice(0, 200)}`)
      }
      if (parsed.error && /internal/i.test(String((parsed.error as { code?: unknown }).code)))
        throw new Error(`stream ended in an internal error: ${data}`)
    }
    if (last !== 'data: [DONE]' && !last?.includes('"error"'))
      throw new Error(`stream did not end with [DONE] or an error: ${last?.slice(0, 200)}`)
    return { status, kind: 'stream' }
  }
  if (status === 200 && type.includes('application/json')) {
    const body = JSON.parse(text) as { object?: string; choices?: { message?: { content?: unknown } }[] }
    if (body.object === 'chat.completion') {
      if (typeof body.choices?.[0]?.message?.content !== 'string')
        throw new Error(`answer without content: ${text.slice(0, 200)}`)
      return { status, kind: 'answer' }
    }
  }
  return { status, kind: 'other' }
}

export function withDeadline<T>(promise: Promise<T>, milliseconds: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`hang: no result after ${milliseconds} ms ${what}`)),
        milliseconds,
      )
    }),
  ]).finally(() => clearTimeout(timer))
}
