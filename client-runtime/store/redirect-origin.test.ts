// The shared manifest redirect rule, on real fetch responses from two servers on 127.0.0.1 (two
// ports, so two origins): no redirect and a same-origin redirect pass; a redirect to the other
// origin is refused with model_invalid naming it, and its body is left unread.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { OndeviceError } from '../../core/errors.ts'
import { crossOriginRedirect, refuseCrossOriginManifest } from './redirect-origin.ts'

let home: Server
let other: Server
let homeUrl: string
let otherUrl: string

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

beforeAll(async () => {
  other = createServer((_request, response) => response.end('{"format":"from elsewhere"}'))
  otherUrl = await listen(other)
  home = createServer((request, response) => {
    if (request.url === '/away/manifest.json')
      response.writeHead(302, { location: `${otherUrl}/manifest.json` })
    else if (request.url === '/moved/manifest.json')
      response.writeHead(301, { location: '/pkg/manifest.json' })
    response.end('{"format":"home"}')
  })
  homeUrl = await listen(home)
})

afterAll(async () => {
  for (const server of [home, other]) {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
})

it('passes a direct answer and a same-origin redirect', async () => {
  for (const path of ['/pkg/manifest.json', '/moved/manifest.json']) {
    const url = `${homeUrl}${path}`
    const response = await fetch(url)
    expect(crossOriginRedirect(url, response)).toBeUndefined()
    await refuseCrossOriginManifest(url, response)
    expect(await response.text()).toBe('{"format":"home"}')
  }
})

it('refuses a redirect to another origin with model_invalid naming both origins, body unread', async () => {
  const url = `${homeUrl}/away/manifest.json`
  const response = await fetch(url)
  expect(crossOriginRedirect(url, response)).toBe(otherUrl)
  const error = await refuseCrossOriginManifest(url, response).then(
    () => undefined,
    (caught: unknown) => caught,
  )
  expect(error).toBeInstanceOf(OndeviceError)
  expect(error).toMatchObject({ code: 'model_invalid', isRetryable: false })
  expect((error as Error).message).toContain(`redirected to another origin (${otherUrl})`)
  expect((error as Error).message).toContain(`own origin (${homeUrl})`)
  expect(response.bodyUsed).toBe(true) // cancelled, never parsed
})
