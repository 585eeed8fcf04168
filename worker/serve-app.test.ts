// serveApp on an address it cannot listen on: the project's InvalidArgumentError naming the
// option to change (the CLI prints its message), never Node's raw error and stack.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { InvalidArgumentError } from '../core/errors.ts'
import type { OndeviceApp } from './app.ts'
import { serveApp } from './node.ts'

const app = new Hono() as unknown as OndeviceApp

describe('serveApp on an address it cannot listen on', () => {
  it('a port in use: InvalidArgumentError(port) saying so', async () => {
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
    const port = (taken.address() as AddressInfo).port
    try {
      const error = await serveApp({ app, port, host: '127.0.0.1' }).then(
        () => undefined,
        (caught: unknown) => caught,
      )
      expect(error).toBeInstanceOf(InvalidArgumentError)
      expect((error as InvalidArgumentError).param).toBe('port')
      expect((error as Error).message).toContain(`127.0.0.1:${port}`)
      expect((error as Error).message).toMatch(/another port/)
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()))
    }
  })

  it('an address not on this machine (TEST-NET-1, no name lookup): InvalidArgumentError(host)', async () => {
    const error = await serveApp({ app, port: 0, host: '192.0.2.1' }).then(
      () => undefined,
      (caught: unknown) => caught,
    )
    expect(error).toBeInstanceOf(InvalidArgumentError)
    expect((error as InvalidArgumentError).param).toBe('host')
    expect((error as Error).message).toMatch(/not an address of this machine/)
  })
})
