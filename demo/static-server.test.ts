import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InvalidArgumentError } from '../core/errors.ts'
import { type StaticServer, startStaticServer } from './static-server.ts'

describe('startStaticServer', () => {
  let root: string
  let server: StaticServer

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'ondevice-static-'))
    await mkdir(join(root, 'site'))
    await mkdir(join(root, 'models', 'onnx'), { recursive: true })
    await writeFile(join(root, 'site', 'index.html'), '<!doctype html><p>hi</p>')
    await writeFile(join(root, 'site', 'app.js'), 'export {}')
    await writeFile(join(root, 'secret.txt'), 'not served')
    await symlink(join(root, 'secret.txt'), join(root, 'site', 'leak.txt'))
    await writeFile(join(root, 'models', 'onnx', 'model.onnx'), Buffer.from('0123456789'))
    server = await startStaticServer({
      mounts: [
        { prefix: '/', directory: join(root, 'site') },
        { prefix: '/models/tiny/', directory: join(root, 'models') },
        { prefix: '/cached/', directory: join(root, 'site'), cacheControl: 'public, max-age=60' },
      ],
    })
  })

  afterAll(async () => {
    await server.close()
    await rm(root, { recursive: true, force: true })
  })

  it('listens on 127.0.0.1 and sends the cross-origin isolation headers with every file', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const response = await fetch(`${server.url}/`)
    expect(response.status).toBe(200)
    expect(response.headers.get('cross-origin-opener-policy')).toBe('same-origin')
    expect(response.headers.get('cross-origin-embedder-policy')).toBe('require-corp')
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(await response.text()).toContain('hi')
    const script = await fetch(`${server.url}/app.js`)
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect(script.headers.get('cross-origin-resource-policy')).toBe('cross-origin')
    // Never HTTP-cached unless the mount says so.
    expect(script.headers.get('cache-control')).toBe('no-store')
    const cached = await fetch(`${server.url}/cached/app.js`)
    expect(cached.headers.get('cache-control')).toBe('public, max-age=60')
  })

  it('serves the longest matching mount and answers Range requests with 206', async () => {
    const whole = await fetch(`${server.url}/models/tiny/onnx/model.onnx`)
    expect(whole.status).toBe(200)
    expect(whole.headers.get('content-length')).toBe('10')
    expect(whole.headers.get('accept-ranges')).toBe('bytes')
    expect(await whole.text()).toBe('0123456789')

    const tail = await fetch(`${server.url}/models/tiny/onnx/model.onnx`, { headers: { Range: 'bytes=4-' } })
    expect(tail.status).toBe(206)
    expect(tail.headers.get('content-range')).toBe('bytes 4-9/10')
    expect(await tail.text()).toBe('456789')

    const middle = await fetch(`${server.url}/models/tiny/onnx/model.onnx`, {
      headers: { Range: 'bytes=2-3' },
    })
    expect(await middle.text()).toBe('23')

    const past = await fetch(`${server.url}/models/tiny/onnx/model.onnx`, { headers: { Range: 'bytes=10-' } })
    expect(past.status).toBe(416)
    expect(past.headers.get('content-range')).toBe('bytes */10')
  })

  it('never serves outside a mounted folder and logs every request', async () => {
    server.clearRequests()
    expect((await fetch(`${server.url}/../secret.txt`)).status).toBe(404)
    expect((await fetch(`${server.url}/%2e%2e/secret.txt`)).status).toBe(404)
    expect((await fetch(`${server.url}/leak.txt`)).status).toBe(404)
    expect((await fetch(`${server.url}/missing.js`)).status).toBe(404)
    const head = await fetch(`${server.url}/models/tiny/onnx/model.onnx`, { method: 'HEAD' })
    expect(head.headers.get('content-length')).toBe('10')
    expect(server.requests.map((request) => request.status)).toEqual([404, 404, 404, 404, 200])
    expect(server.requests.at(-1)).toMatchObject({
      method: 'HEAD',
      path: '/models/tiny/onnx/model.onnx',
      bytes: 0,
    })
  })

  it('rejects a bad mount with an error naming the field', async () => {
    await expect(startStaticServer({ mounts: [{ prefix: 'x', directory: root }] })).rejects.toThrow(
      InvalidArgumentError,
    )
    await expect(
      startStaticServer({ mounts: [{ prefix: '/', directory: join(root, 'nope') }] }),
    ).rejects.toMatchObject({ param: 'mounts.0.directory' })
  })
})
