// Package verification over a real HTTP server: a good package reads, a tampered file, a wrong
// size, an unlisted file and a missing manifest each fail with the right code.
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { OndeviceError } from '../core/errors.ts'
import { urlPackageReader, verifyPackage } from './package-sources.ts'

let folder: string
let server: Server
let base: string
let floodSent = () => 0
const dropped = new Map<string, number>()

async function writePackage(
  root: string,
  files: Record<string, string>,
  tamper: Record<string, string> = {},
): Promise<void> {
  await mkdir(join(root, 'onnx'), { recursive: true })
  const entries = Object.entries(files).map(([path, content]) => ({
    path,
    bytes: Buffer.byteLength(content),
    sha256: createHash('sha256').update(content).digest('hex'),
  }))
  const manifest = {
    format: 'ondevice-package/1',
    modelType: 'qwen3',
    files: entries,
    dtypes: ['fp32'],
    estimatedMemoryBytes: {},
  }
  await writeFile(join(root, 'manifest.json'), JSON.stringify(manifest))
  for (const [path, content] of Object.entries({ ...files, ...tamper }))
    await writeFile(join(root, path), content)
}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-sources-'))
  await writePackage(join(folder, 'good'), { 'config.json': '{"a":1}', 'onnx/model.onnx': 'weights' })
  await writePackage(
    join(folder, 'tampered'),
    { 'config.json': '{"a":1}', 'onnx/model.onnx': 'weights' },
    { 'onnx/model.onnx': 'wEights' },
  )
  await writePackage(join(folder, 'resized'), { 'config.json': '{"a":1}' }, { 'config.json': '{"a":12}' })
  await mkdir(join(folder, 'bare'), { recursive: true })
  await writeFile(join(folder, 'bare', 'config.json'), '{}')
  server = createServer((request, response) => {
    const pathname = new URL(request.url ?? '/', 'http://x').pathname
    // A server that drops connections without answering: the first n requests, or every one.
    const drops = /^\/drops-(\d+|all)\//.exec(pathname)
    if (drops && !pathname.endsWith('manifest.json')) {
      const seen = (dropped.get(pathname) ?? 0) + 1
      dropped.set(pathname, seen)
      if (drops[1] === 'all' || seen <= Number(drops[1])) return void request.socket.destroy()
    }
    // Hostile MODEL_URL servers: headers and one byte, then silence; or an endless body.
    if (pathname.startsWith('/stalls/') && !pathname.endsWith('manifest.json')) {
      response.writeHead(200, { 'content-type': 'application/octet-stream' })
      response.write('{')
      return
    }
    if (pathname.startsWith('/floods/') && !pathname.endsWith('manifest.json')) {
      response.writeHead(200, { 'content-type': 'application/octet-stream' })
      const chunk = Buffer.alloc(64 * 1024, 32)
      let sent = 0
      const pump = () => {
        // Up to 1 GiB, as fast as the reader takes it; stops when the reader hangs up.
        while (sent < 1024 ** 3 && !response.destroyed) {
          sent += chunk.length
          if (!response.write(chunk)) return void response.once('drain', pump)
        }
        response.end()
      }
      floodSent = () => sent
      pump()
      return
    }
    const path = join(
      folder,
      decodeURIComponent(pathname.replace(/^\/(stalls|floods|drops-\d+|drops-all)\//, '/good/')),
    )
    readFile(path).then(
      (body) => response.end(body),
      () => {
        response.statusCode = 404
        response.end('not found')
      },
    )
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  base = `http://127.0.0.1:${address.port}`
})

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve))
  await rm(folder, { recursive: true, force: true })
})

const codeOf = (error: unknown) => (error instanceof OndeviceError ? error.code : String(error))

describe('verifyPackage over a URL reader', () => {
  it('reads every listed file once it matches manifest.json', async () => {
    const { reader, manifest } = await verifyPackage(urlPackageReader(`${base}/good`), { source: 'good' })
    expect(manifest?.files).toHaveLength(2)
    expect(await reader.readText('config.json')).toBe('{"a":1}')
    expect(new TextDecoder().decode(await reader.readBytes('onnx/model.onnx'))).toBe('weights')
  })

  it('refuses a file whose bytes or size differ from the manifest, and files it does not list', async () => {
    const tampered = await verifyPackage(urlPackageReader(`${base}/tampered`), { source: 'tampered' })
    expect(codeOf(await tampered.reader.readBytes('onnx/model.onnx').catch((e: unknown) => e))).toBe(
      'integrity_failed',
    )
    const resized = await verifyPackage(urlPackageReader(`${base}/resized`), { source: 'resized' })
    expect(String(await resized.reader.readText('config.json').catch((e: unknown) => e))).toMatch(
      /8 bytes; manifest.json says 7/,
    )
    const good = await verifyPackage(urlPackageReader(`${base}/good`), { source: 'good' })
    expect(codeOf(await good.reader.readText('tokenizer.json').catch((e: unknown) => e))).toBe(
      'model_not_found',
    )
  })

  it('refuses a package without manifest.json unless told to run it unverified', async () => {
    expect(
      codeOf(
        await verifyPackage(urlPackageReader(`${base}/bare`), { source: 'bare' }).catch((e: unknown) => e),
      ),
    ).toBe('model_invalid')
    const loose = await verifyPackage(urlPackageReader(`${base}/bare`), {
      source: 'bare',
      requireManifest: false,
    })
    expect(loose.warnings[0]).toMatch(/not verified/)
    expect(await loose.reader.readText('config.json')).toBe('{}')
  })

  it('refuses paths that climb out of the package', async () => {
    const reader = urlPackageReader(`${base}/good`)
    expect(codeOf(await reader.readText('../bare/config.json').catch((e: unknown) => e))).toBe(
      'model_invalid',
    )
  })

  it('a MODEL_URL server that sends headers and one byte, then nothing, fails the read within the idle timeout (retryable)', async () => {
    const { reader } = await verifyPackage(
      urlPackageReader(`${base}/stalls`, fetch, { idleTimeoutMs: 300 }),
      {
        source: 'stalls',
      },
    )
    const started = performance.now()
    const error = await reader.readText('config.json').catch((caught: unknown) => caught)
    expect(error).toMatchObject({ code: 'download_failed', isRetryable: true })
    expect(String(error)).toMatch(/stalled: no bytes for 300 ms after 1 bytes/)
    expect(performance.now() - started).toBeLessThan(5_000)
  })

  it('a connection dropped before any response is retried (idempotent GET); one that always drops fails retryable after 3 attempts', async () => {
    const { reader } = await verifyPackage(urlPackageReader(`${base}/drops-2`), { source: 'drops-2' })
    expect(await reader.readText('config.json')).toBe('{"a":1}')
    expect(dropped.get('/drops-2/config.json')).toBe(3)

    const always = await verifyPackage(urlPackageReader(`${base}/drops-all`), { source: 'drops-all' })
    const error = await always.reader.readText('config.json').catch((caught: unknown) => caught)
    expect(error).toMatchObject({ code: 'download_failed', isRetryable: true })
    expect(String(error)).toMatch(/failed \(.*(ECONNRESET|socket|closed).*\) after 3 attempts/i)
    expect(dropped.get('/drops-all/config.json')).toBe(3)
  })

  it('a body far larger than manifest.json says is cut off at the listed size, not read whole', async () => {
    const { reader } = await verifyPackage(urlPackageReader(`${base}/floods`), { source: 'floods' })
    const error = await reader.readText('config.json').catch((caught: unknown) => caught)
    expect(error).toMatchObject({ code: 'integrity_failed' })
    expect(String(error)).toMatch(/has at least \d+ bytes; manifest.json says 7/)
    await new Promise((resolve) => setTimeout(resolve, 100))
    // The server saw the reader hang up after a few chunks (socket buffers), not a gigabyte.
    expect(floodSent()).toBeLessThan(64 * 1024 * 1024)
  })
})
