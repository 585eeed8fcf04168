// Bearer API keys. Keys come from secrets; the app keeps only their SHA-256 digests and
// compares the digest of the presented key against every configured one with a loop whose time
// does not depend on where (or whether) they differ, so timing reveals nothing about a key.
import { InvalidArgumentError, OndeviceError } from '../core/errors.ts'

export interface KeyChecker {
  /** Whether any key is configured (no keys = open API, for local use). */
  readonly enabled: boolean
  /**
   * Returns a short stable id for the presented key (for logs and rate limits; never the key
   * itself) or throws `unauthorized`.
   */
  check(authorizationHeader: string | undefined): Promise<string>
}

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)))
}

function toHex(bytes: Uint8Array): string {
  let hex = ''
  for (const byte of bytes) hex += byte.toString(16).padStart(2, '0')
  return hex
}

/** Splits a secret like "key1,key2" or "key1\nkey2" into keys; empty entries are dropped. */
export function parseApiKeys(secret: string | undefined): string[] {
  if (secret === undefined) return []
  return secret
    .split(/[\s,]+/)
    .map((key) => key.trim())
    .filter((key) => key.length > 0)
}

export function createKeyChecker(keys: readonly string[]): KeyChecker {
  for (const [index, key] of keys.entries()) {
    if (typeof key !== 'string' || key.length < 16) {
      // Never the key itself in the message: it may be a real one, mistyped.
      const length = typeof key === 'string' ? `${key.length} characters` : typeof key
      throw new InvalidArgumentError(
        `apiKeys.${index}`,
        `API key ${index + 1} of ${keys.length} (API_KEYS, or the apiKeys option) has ${length}: each key must be a string of at least 16 characters; generate one with \`openssl rand -hex 32\`.`,
      )
    }
  }
  const digests = Promise.all(keys.map(sha256))
  const unauthorized = (message: string) => new OndeviceError('unauthorized', message)
  return {
    enabled: keys.length > 0,
    async check(header) {
      if (keys.length === 0) return 'anonymous'
      if (header === undefined || header === '') {
        throw unauthorized('Missing API key: send it as `Authorization: Bearer <key>`.')
      }
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
      if (!match?.[1])
        throw unauthorized('Malformed Authorization header: use `Authorization: Bearer <key>`.')
      const presented = await sha256(match[1])
      let found: Uint8Array | undefined
      for (const digest of await digests) {
        let difference = 0
        for (let index = 0; index < digest.length; index++)
          difference |= (digest[index] ?? 0) ^ (presented[index] ?? 0)
        // No early exit: every configured key is compared whatever the outcome.
        if (difference === 0) found = digest
      }
      if (!found)
        throw unauthorized('Invalid API key: check the key you were given by the operator of this endpoint.')
      return `key-${toHex(found.subarray(0, 6))}`
    },
  }
}
