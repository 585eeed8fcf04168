// A wrong package URL on a server that answers every path with its index.html (200, text/html),
// as a single-page app's host or dev server does (Vite's dev server and `vite preview` among them):
// every reader says an HTML page came back, instead of "manifest.json is not valid JSON: rebuild
// the package", stores nothing, and gives the code a 404 gives (model_not_found), so an app that
// branches on the code tells a wrong URL apart from a broken package whatever the server.
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isHtmlPage, isWebAssembly } from '../../core/html-page.ts'
import { urlPackageReader } from '../../worker/package-sources.ts'
import { createNodeStore } from './node-store.ts'

const page = '<!doctype html><html><head><title>My app</title></head><body><div id="app"></div></body></html>'
let server: Server
let base: string
let cacheDir: string

beforeAll(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'ondevice-html-'))
  server = createServer((request, response) => {
    if (request.url?.startsWith('/static-host/')) {
      // A static host without a fallback page: a missing file is a 404.
      response.writeHead(404, { 'content-type': 'text/plain' })
      response.end('Not found')
      return
    }
    // The manifest is served as HTML without a content-type too: the body alone gives it away.
    const typed = !request.url?.endsWith('manifest.json')
    response.writeHead(200, typed ? { 'content-type': 'text/html; charset=utf-8' } : {})
    response.end(page)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
})

afterAll(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()))
  await rm(cacheDir, { recursive: true, force: true })
})

describe('an HTML page where a package file should be', () => {
  it('the Node store: manifest.json names the HTML page and the likely cause', async () => {
    const store = createNodeStore({ cacheDir })
    const failure = store.open(`${base}/models/wrong/`)
    // It was model_invalid (a broken package) while the same wrong URL on a static host was
    // model_not_found: an app's "check the model URL" branch missed every single-page app's server.
    await expect(failure).rejects.toMatchObject({ name: 'ModelError', code: 'model_not_found' })
    await expect(failure).rejects.toThrow(
      /an HTML page came back .*manifest\.json: a wrong URL, or a server's fallback page/,
    )
  })

  it('the same wrong URL on a static host (HTTP 404) gives the same class and code', async () => {
    const store = createNodeStore({ cacheDir })
    await expect(store.open(`${base}/static-host/models/wrong/`)).rejects.toMatchObject({
      name: 'ModelError',
      code: 'model_not_found',
    })
  })

  it('the edge URL source: a file that comes back as a page is refused, naming MODEL_URL', async () => {
    const reader = urlPackageReader(`${base}/models/wrong/`)
    await expect(reader.readText('config.json')).rejects.toThrow(/an HTML page came back .*MODEL_URL/)
  })

  it('nothing of it was stored', async () => {
    const stored = await readdir(join(cacheDir, 'packages')).catch(() => [])
    for (const folder of stored) {
      expect(await readdir(join(cacheDir, 'packages', folder))).not.toContain('config.json')
    }
  })

  it('recognises pages by content-type or first bytes, and WebAssembly by its magic number', () => {
    expect(isHtmlPage('text/html; charset=utf-8')).toBe(true)
    expect(isHtmlPage(null, '\uFEFF  <!DOCTYPE html>')).toBe(true)
    expect(isHtmlPage('application/json', '{"format":"ondevice-package/1"}')).toBe(false)
    expect(isWebAssembly(new TextEncoder().encode('<!doctype html>'))).toBe(false)
    expect(isWebAssembly(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]))).toBe(true)
  })
})
