// createBrowserDeviceHost outside a browser page: the error says where it runs; its options checked. In Node (a server
// render calling it, as a Next.js component may) it threw "ReferenceError: Worker is not defined".
// In a page: test/browser/worker-recovery.test.ts.
import { describe, expect, it } from 'vitest'
import { BackendError, InvalidArgumentError } from '../core/errors.ts'
import { createBrowserDeviceHost } from './index.ts'

describe('createBrowserDeviceHost outside a browser page', () => {
  it('rejects with a BackendError saying to call it in the browser only', async () => {
    const failure = await createBrowserDeviceHost().then(
      () => undefined,
      (error: unknown) => error,
    )
    expect(failure).toBeInstanceOf(BackendError)
    expect(failure).toMatchObject({ code: 'backend_unavailable' })
    expect((failure as Error).message).toMatch(
      /^createBrowserDeviceHost starts the model's Web Worker from a browser page, and this is not one \(no location\)\. In Node, createClient runs the model in this process without it; in a server render .* call it in the browser only/,
    )
  })

  it('refuses a misspelt option and a Worker where the function that makes one goes, before anything starts', async () => {
    const failure = (options: unknown) =>
      createBrowserDeviceHost(options as never).then(
        () => undefined,
        (error: unknown) => error,
      )
    const misspelt = await failure({ wroker: () => undefined })
    expect(misspelt).toBeInstanceOf(InvalidArgumentError)
    expect(misspelt).toMatchObject({ param: 'wroker' })
    expect((misspelt as Error).message).toBe(
      'Unknown createBrowserDeviceHost option "wroker": did you mean "worker"? It takes runtimeUrl, worker.',
    )
    const notAFunction = await failure({ worker: {} })
    expect(notAFunction).toBeInstanceOf(InvalidArgumentError)
    expect(notAFunction).toMatchObject({ param: 'worker' })
    expect((notAFunction as Error).message).toMatch(/a function that starts the model worker/)
  })
})
