import { describe, expect, it } from 'vitest'
import { AbortedError, BackendError } from '../../core/errors.ts'
import { createTestSession } from './test-session.ts'

describe('createTestSession', () => {
  it('returns logits that depend only on the token history', async () => {
    const a = createTestSession({ vocabularySize: 64 })
    const b = createTestSession({ vocabularySize: 64 })
    const whole = await a.append([1, 2, 3])
    await b.append([1])
    await b.append([2])
    expect(await b.append([3])).toEqual(whole)
    expect(await a.append([4])).not.toEqual(whole)
    expect(a.tokens).toEqual([1, 2, 3, 4])
    expect(a.info).toMatchObject({ vocabularySize: 64, backend: 'test', contextLength: 4096 })
  })

  it('rewinds exactly, or refuses when built without rewind', async () => {
    const session = createTestSession({ vocabularySize: 64 })
    const afterTwo = await session.append([5, 6])
    await session.append([7, 8])
    expect(await session.rewind(1)).toBe(true)
    expect(await session.append([6])).toEqual(afterTwo)
    const stubborn = createTestSession({ vocabularySize: 64, rewindable: false })
    await stubborn.append([1, 2])
    expect(await stubborn.rewind(1)).toBe(false)
    await stubborn.reset()
    expect(stubborn.tokens).toEqual([])
  })

  it('fails from append call failAtToken on, and scripts tokens with favor and eos', async () => {
    const session = createTestSession({
      vocabularySize: 64,
      failAtToken: 2,
      favor: () => 9,
      eos: { tokenId: 3, atLength: 3 },
    })
    const first = await session.append([1, 2])
    expect(first.indexOf(Math.max(...first))).toBe(9)
    const second = await session.append([9])
    expect(second.indexOf(Math.max(...second))).toBe(3)
    await expect(session.append([3])).rejects.toBeInstanceOf(BackendError)
    await expect(session.append([3])).rejects.toMatchObject({ isRetryable: true })
    expect(session.appendCalls).toEqual([2, 1, 1, 1])
  })

  it('waits delayMs per append and stops waiting when aborted', async () => {
    const session = createTestSession({ vocabularySize: 64, delayMs: 5_000 })
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 20)
    const started = performance.now()
    await expect(session.append([1], { signal: controller.signal })).rejects.toBeInstanceOf(AbortedError)
    expect(performance.now() - started).toBeLessThan(2_000)
  })
})
