// How many engine threads a browser context gets (planBrowserEngineThreads): the Chromium test
// (test/browser/engine-threads.test.ts) runs them; this checks the choice and its words.
import { describe, expect, it } from 'vitest'
import { InvalidArgumentError } from '../../core/errors.ts'
import { defaultBrowserEngineThreads, planBrowserEngineThreads } from './threads-browser.ts'

const isolated = { isolated: true, workers: true, cores: 8 }

describe('planBrowserEngineThreads', () => {
  it('defaults to min(2, cores - 1), at least one', () => {
    expect([1, 2, 3, 4, 16].map(defaultBrowserEngineThreads)).toEqual([1, 1, 2, 2, 2])
    expect(planBrowserEngineThreads(undefined, isolated)).toMatchObject({ count: 2 })
    expect(planBrowserEngineThreads(undefined, { ...isolated, cores: 2 })).toMatchObject({ count: 1 })
  })

  it('gives what the caller asks for on an isolated page', () => {
    const plan = planBrowserEngineThreads(4, isolated)
    expect(plan).toMatchObject({ count: 4 })
    expect(plan.warning).toBeUndefined()
  })

  it('without cross-origin isolation: one thread, why, and a warning when threads were lost (asked for, or the default)', () => {
    const asked = planBrowserEngineThreads(4, { ...isolated, isolated: false })
    expect(asked.count).toBe(1)
    expect(asked.reason).toMatch(/not cross-origin isolated.*Cross-Origin-Opener-Policy: same-origin/)
    expect(asked.warning).toMatch(/numThreads 4 asked for/)
    // The default's threads lost to missing headers: the app forgot COOP/COEP, and nothing said so.
    const byDefault = planBrowserEngineThreads(undefined, { ...isolated, isolated: false })
    expect(byDefault.count).toBe(1)
    expect(byDefault.warning).toBe(
      'The WebAssembly engine runs on one thread where it would run 2 on this device (8 cores): the page is not cross-origin isolated, so there is no shared memory: serve the page with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp (the ondevice/vite plugin does on its dev and preview servers; docs/sdk.md). Pass numThreads: 1 to run one thread without this warning.',
    )
    // Nothing lost: the default is one thread on 2 cores, or one was asked for.
    expect(
      planBrowserEngineThreads(undefined, { ...isolated, isolated: false, cores: 2 }).warning,
    ).toBeUndefined()
    expect(planBrowserEngineThreads(1, { ...isolated, isolated: false }).warning).toBeUndefined()
    // A browser without shared memory although isolated (WebKitGTK): not the app's to fix, no warning.
    expect(
      planBrowserEngineThreads(undefined, { ...isolated, sharedArrayBuffer: false }).warning,
    ).toBeUndefined()
    expect(planBrowserEngineThreads(2, { ...isolated, workers: false }).warning).toMatch(/Web Workers/)
  })

  it('an isolated page in a browser without SharedArrayBuffer: one thread, and the reason does not blame the headers', () => {
    // WebKitGTK 2.50 (test/browser/other-browsers.test.ts): crossOriginIsolated is true, the
    // SharedArrayBuffer global is absent. It used to say the page was not cross-origin isolated.
    const plan = planBrowserEngineThreads(2, { ...isolated, sharedArrayBuffer: false })
    expect(plan.count).toBe(1)
    expect(plan.reason).toMatch(/no SharedArrayBuffer although the page is cross-origin isolated/)
    expect(plan.reason).not.toMatch(/Cross-Origin-Opener-Policy/)
    expect(plan.warning).toMatch(/numThreads 2 asked for.*no SharedArrayBuffer/)
  })

  it.each([0, 65, 1.5, Number.NaN])('numThreads %s: InvalidArgumentError naming numThreads', (value) => {
    let caught: unknown
    try {
      planBrowserEngineThreads(value, isolated)
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(InvalidArgumentError)
    expect((caught as InvalidArgumentError).param).toBe('numThreads')
  })
})
