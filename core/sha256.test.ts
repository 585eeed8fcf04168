import { createHash, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { JavaScriptSha256 } from './sha256.ts'

const reference = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

describe('SHA-256 in plain TypeScript', () => {
  it("equals node:crypto's digest for every length around the block and padding edges, in uneven pieces", () => {
    for (const length of [0, 1, 3, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4099, 100_003]) {
      const bytes = new Uint8Array(randomBytes(length))
      for (const piece of [1, 7, 64, 100, length + 1]) {
        const hash = new JavaScriptSha256()
        for (let offset = 0; offset < length; offset += piece)
          hash.update(bytes.subarray(offset, offset + piece))
        expect(Buffer.from(hash.digest()).toString('hex'), `length ${length}, pieces of ${piece}`).toBe(
          reference(bytes),
        )
      }
    }
  })
})
