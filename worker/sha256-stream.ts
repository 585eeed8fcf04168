// SHA-256 over bytes that arrive in pieces, so a package file can be checked against manifest.json
// as it streams past instead of being held whole (WebCrypto's digest() takes one buffer). workerd
// has a native streaming digest (`crypto.DigestStream`), Node has node:crypto (reached through
// `process.getBuiltinModule`, so no bundle for workerd imports it); any other host gets FIPS 180-4
// in plain JavaScript (core/sha256.ts).

import { JavaScriptSha256 } from '../core/sha256.ts'

export { JavaScriptSha256 }

export interface Sha256Stream {
  /** A promise only where the host's digest is asynchronous (workerd's DigestStream). */
  update(bytes: Uint8Array): void | Promise<void>
  /** The hex digest of everything given to update(); the stream cannot be used afterwards. */
  digest(): Promise<string>
}

const toHex = (bytes: Uint8Array): string => {
  let hex = ''
  for (const byte of bytes) hex += byte.toString(16).padStart(2, '0')
  return hex
}

/** workerd's `crypto.DigestStream` (a WritableStream whose `digest` resolves once it is closed). */
type DigestStreamClass = new (
  algorithm: string,
) => WritableStream<ArrayBufferView> & { readonly digest: Promise<ArrayBuffer> }

interface NodeHash {
  update(bytes: Uint8Array): NodeHash
  digest(): Uint8Array
  digest(encoding: 'hex'): string
}

/** node:crypto where the host has it (Node), through `process.getBuiltinModule` so no bundle imports it. */
const nodeCrypto = (
  globalThis as {
    process?: { getBuiltinModule?: (id: string) => unknown }
  }
).process?.getBuiltinModule?.('node:crypto') as { createHash(algorithm: string): NodeHash } | undefined

/**
 * The SHA-256 of a small piece (a 256 KiB block the edge verifies): node:crypto at once where there
 * is one (no promise, no copy: the per-block digests were most of a streamed load's CPU through
 * WebCrypto in Node), else WebCrypto, which copies the bytes when called (so the caller may reuse
 * its buffer before the promise settles).
 */
export function sha256Of(bytes: Uint8Array): Uint8Array | Promise<Uint8Array> {
  if (nodeCrypto) return nodeCrypto.createHash('sha256').update(bytes).digest()
  return crypto.subtle
    .digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)
    .then((digest) => new Uint8Array(digest))
}

export function createSha256Stream(): Sha256Stream {
  const native = (globalThis.crypto as unknown as { DigestStream?: DigestStreamClass }).DigestStream
  if (native) {
    const stream = new native('SHA-256')
    const writer = stream.getWriter()
    return {
      update: (bytes) => writer.write(bytes),
      async digest() {
        await writer.close()
        return toHex(new Uint8Array(await stream.digest))
      },
    }
  }
  if (nodeCrypto) {
    const hash = nodeCrypto.createHash('sha256')
    return {
      update: (bytes) => {
        hash.update(bytes)
      },
      digest: async () => hash.digest('hex'),
    }
  }
  const hash = new JavaScriptSha256()
  return {
    update: (bytes) => hash.update(bytes),
    digest: async () => toHex(hash.digest()),
  }
}
