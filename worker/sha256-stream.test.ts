import { createHash, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createSha256Stream } from './sha256-stream.ts'

const reference = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

describe('streaming SHA-256', () => {
  it("the host's stream (node:crypto in Node) gives the same digest over 5 MB", async () => {
    const bytes = new Uint8Array(randomBytes(5_000_000))
    const stream = createSha256Stream()
    for (let offset = 0; offset < bytes.length; offset += 65_536)
      await stream.update(bytes.subarray(offset, offset + 65_536))
    expect(await stream.digest()).toBe(reference(bytes))
  })
})
