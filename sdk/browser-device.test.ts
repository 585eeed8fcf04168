// createBrowserDeviceHost outside a browser page: the error says where it runs. In Node (a server
// render calling it, as a Next.js component may) it threw "ReferenceError: Worker is not defined".
// In a page: test/browser/worker-recovery.test.ts.
import { describe, expect, it } from 'vitest'
import { BackendError } from '../core/errors.ts'
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
})
