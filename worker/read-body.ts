// Reads a JSON request body without ever holding more than the cap in memory: the declared
// Content-Length is checked first, and a chunked body is counted as it streams in, so a client
// cannot make the isolate buffer a huge body before it is refused.
import { AbortedError, InvalidArgumentError, OndeviceError } from '../core/errors.ts'

function tooLarge(maxBytes: number): OndeviceError {
  return new OndeviceError(
    'payload_too_large',
    `The request body is larger than this server accepts (${maxBytes} bytes). Send fewer or shorter messages.`,
  )
}

/** `application/json` or a `+json` type, with any parameters (`; charset=utf-8`). */
function isJsonContentType(value: string | null): boolean {
  const type = value?.split(';')[0]?.trim().toLowerCase() ?? ''
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'))
}

export async function readJsonBody(request: Request, maxBytes: number): Promise<unknown> {
  // A POST with text/plain (a fetch() without headers), a form type or none is a "simple"
  // cross-origin request: browsers send it without a preflight, so a page on any origin, not only
  // those in ALLOWED_ORIGINS, could start generations on an edge open to browsers (no API_KEYS)
  // with its visitors' browsers. Only JSON is read.
  const contentType = request.headers.get('content-type')
  if (!isJsonContentType(contentType)) {
    throw new InvalidArgumentError(
      'content-type',
      `The request's Content-Type is ${contentType === null ? 'missing' : JSON.stringify(contentType.slice(0, 100))}: send the JSON body with Content-Type: application/json.`,
    )
  }
  // The body is read as sent: a compressed one was refused as "not valid UTF-8", which the client
  // had not got wrong. Decompressing would need its own bound on what the bytes expand to; a
  // request body here is at most MAX_BODY_BYTES of JSON, so it is refused by name instead.
  const encoding = request.headers.get('content-encoding')?.trim().toLowerCase()
  if (encoding !== undefined && encoding !== '' && encoding !== 'identity') {
    throw new InvalidArgumentError(
      'content-encoding',
      `The request's Content-Encoding is ${JSON.stringify(encoding.slice(0, 100))}: this server reads the body as sent. Leave the header out and send the JSON body uncompressed (at most ${maxBytes} bytes).`,
    )
  }
  const declared = request.headers.get('content-length')
  if (declared !== null && Number(declared) > maxBytes) throw tooLarge(maxBytes)
  if (request.body === null) {
    throw new InvalidArgumentError('body', 'The request has no body: send a JSON chat completion request.')
  }
  const reader = request.body.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  for (;;) {
    let next: ReadableStreamReadResult<Uint8Array>
    try {
      next = await reader.read()
    } catch (error) {
      // The client hung up mid-body (Node's request stream errors with "aborted"): a client
      // event, not a server failure, so it is logged as such and not as a 500.
      throw new AbortedError('The client closed the connection before the request body arrived in full.', {
        cause: error,
      })
    }
    const { done, value } = next
    if (done) break
    total += value.byteLength
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined)
      throw tooLarge(maxBytes)
    }
    chunks.push(value)
  }
  const bytes = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    bytes.set(chunk, offset)
    offset += chunk.byteLength
  }
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    throw new InvalidArgumentError('body', 'The request body is not valid UTF-8: send JSON encoded as UTF-8.')
  }
  try {
    return JSON.parse(text) as unknown
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error)
    throw new InvalidArgumentError(
      'body',
      `The request body is not valid JSON (${detail}). Send a JSON object.`,
    )
  }
}
