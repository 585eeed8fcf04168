// Which container instance answers a request. A conversation's turns go to the instance that
// answered its first turn (while it lives), so that instance's prompt cache (and Qwen3.5's
// recurrent-state checkpoints) is reused and only the new tokens are prefilled; requests without
// a key spread at random. The key is what the client sends:
//   1. the `X-Ondevice-Affinity` header (any string up to 256 characters, e.g. a conversation id), or
//   2. the OpenAI `user` field of the body (an end-user id), or
//   3. nothing: a random instance.
// The key is hashed, never logged: it may identify a user.

export const affinityHeader = 'x-ondevice-affinity'
const maxKeyLength = 256

/** The affinity key of a request, or undefined when it has none (or an unusable one). */
export function affinityKey(headers: Headers, body: unknown): string | undefined {
  const header = headers.get(affinityHeader)
  if (header !== null && header !== '' && header.length <= maxKeyLength) return `h:${header}`
  if (typeof body === 'object' && body !== null) {
    const user = (body as { user?: unknown }).user
    if (typeof user === 'string' && user !== '' && user.length <= maxKeyLength) return `u:${user}`
  }
  return undefined
}

/** FNV-1a (32 bit): a stable spread of keys over instances, the same in every isolate. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index)
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return hash
}

/** The instance (0 .. instances-1) a key maps to; a random one without a key. */
export function instanceIndex(key: string | undefined, instances: number): number {
  if (instances <= 1) return 0
  if (key === undefined) return Math.floor(Math.random() * instances)
  return fnv1a(key) % instances
}
