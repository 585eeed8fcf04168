import { describe, expect, it } from 'vitest'
import { shared } from './shared-work.ts'

/** Work that runs until its signal aborts (then fails the way an aborted download does). */
function untilAborted(log: string[], name: string) {
  return (signal: AbortSignal) =>
    new Promise<void>((_resolve, reject) => {
      log.push(`${name} started`)
      signal.addEventListener('abort', () => {
        // Stopping takes a moment (a writer closing its file): the last caller must wait for it.
        setTimeout(() => {
          log.push(`${name} stopped`)
          reject(new Error('stopped'))
        }, 20)
      })
    })
}

describe('shared work', () => {
  it('runs once for concurrent callers and reports progress to each caller still waiting', async () => {
    let runs = 0
    let step!: (value: number) => void
    const seen: Record<string, number[]> = { a: [], b: [] }
    const work = async (_signal: AbortSignal, report: (progress: number) => void) => {
      runs++
      report(1)
      await new Promise<number>((resolve) => {
        step = resolve
      })
      report(2)
    }
    const aborted = new AbortController()
    const a = shared<number>('k1', work, { onProgress: (p) => seen.a!.push(p) })
    const b = shared<number>('k1', work, { onProgress: (p) => seen.b!.push(p), signal: aborted.signal })
    await new Promise((resolve) => setTimeout(resolve, 0))
    aborted.abort()
    await expect(b).rejects.toMatchObject({ code: 'aborted' })
    step(0)
    await a
    expect(runs).toBe(1)
    expect(seen).toEqual({ a: [1, 2], b: [1] })
  })

  it('stops the work only when its last caller leaves, and answers that caller once it has stopped', async () => {
    const log: string[] = []
    const first = new AbortController()
    const second = new AbortController()
    const a = shared('k2', untilAborted(log, 'w'), { signal: first.signal })
    const b = shared('k2', untilAborted(log, 'w'), { signal: second.signal })
    first.abort()
    await expect(a).rejects.toMatchObject({ code: 'aborted' })
    expect(log).toEqual(['w started'])
    second.abort()
    await expect(b).rejects.toMatchObject({ code: 'aborted' })
    expect(log).toEqual(['w started', 'w stopped'])
  })

  it('a caller that comes while the work stops gets new work, started once the old one has stopped', async () => {
    const log: string[] = []
    const leaving = new AbortController()
    const a = shared('k3', untilAborted(log, 'old'), { signal: leaving.signal })
    await new Promise((resolve) => setTimeout(resolve, 0))
    leaving.abort()
    const b = shared(
      'k3',
      async () => {
        log.push('new started')
      },
      {},
    )
    await b
    await expect(a).rejects.toMatchObject({ code: 'aborted' })
    expect(log).toEqual(['old started', 'old stopped', 'new started'])
  })

  it('refuses a caller whose signal has already aborted without starting anything', async () => {
    let runs = 0
    await expect(
      shared(
        'k4',
        async () => {
          runs++
        },
        { signal: AbortSignal.abort() },
      ),
    ).rejects.toMatchObject({ code: 'aborted' })
    expect(runs).toBe(0)
  })
})
