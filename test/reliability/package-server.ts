// A static HTTP server for a model package folder on 127.0.0.1, with the faults the reliability
// suites inject: per-path byte overrides (tampering), redirects, responses cut after N bytes, and
// HTTP Range support so downloads can resume. Stopped by close().
import { readFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'

export interface PackageServer {
  readonly url: string
  readonly origin: string
  /** Replace what a path serves (bytes), or serve nothing there (null = 404). */
  override(path: string, bytes: Uint8Array | null): void
  /** Answer a path with a 302 to this absolute URL. */
  redirect(path: string, location: string): void
  /** Cut the next response body of `path` after `bytes` bytes (the socket is destroyed). */
  cutNext(path: string, bytes: number): void
  /**
   * Stall the next response of `path`: send the headers and `bytes` bytes of the body, then
   * nothing more, keeping the connection open (until close()). `bytes` -1: not even the headers.
   */
  stallNext(path: string, bytes: number): void
  /** Ignore Range headers (a server that always sends the whole file). */
  ignoreRange(value: boolean): void
  /** Forget overrides, redirects and cuts. */
  clear(): void
  /** Requests seen, as "METHOD path range". */
  readonly requests: string[]
  close(): Promise<void>
}

export async function startPackageServer(folder: string): Promise<PackageServer> {
  const overrides = new Map<string, Uint8Array | null>()
  const redirects = new Map<string, string>()
  const cuts = new Map<string, number>()
  const stalls = new Map<string, number>()
  const requests: string[] = []
  let rangeIgnored = false

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname).replace(/^\/+/, '')
    requests.push(`${request.method} ${path} ${request.headers.range ?? ''}`.trim())
    const stall = stalls.get(path)
    if (stall === -1) {
      stalls.delete(path)
      return // no answer at all; the socket stays open
    }
    const location = redirects.get(path)
    if (location) {
      response.writeHead(302, { location })
      response.end()
      return
    }
    let bytes: Uint8Array | null | undefined = overrides.get(path)
    if (bytes === undefined) {
      // Never serve outside the folder, whatever the path says.
      if (path.split('/').includes('..')) bytes = null
      else bytes = await readFile(join(folder, path)).catch(() => null)
    }
    if (bytes === null) {
      response.writeHead(404, { 'content-type': 'text/plain' })
      response.end('not found')
      return
    }
    let start = 0
    let status = 200
    // No keep-alive: a client that dropped a response mid-body must not get that socket back.
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'accept-ranges': 'bytes',
    }
    const range = /^bytes=(\d+)-(\d*)$/.exec(request.headers.range ?? '')
    let end = bytes.length
    if (range && !rangeIgnored) {
      start = Number(range[1])
      if (start >= bytes.length) {
        response.writeHead(416, { 'content-range': `bytes */${bytes.length}` })
        response.end()
        return
      }
      if (range[2]) end = Math.min(bytes.length, Number(range[2]) + 1)
      status = 206
      headers['content-range'] = `bytes ${start}-${end - 1}/${bytes.length}`
    }
    const body = bytes.subarray(start, end)
    headers['content-length'] = String(body.length)
    const cut = cuts.get(path)
    // No keep-alive on whole responses: a client that dropped one mid-body (a refused download)
    // must not be handed that socket again. (A cut response breaks its socket itself.)
    if (cut === undefined && stall === undefined) headers.connection = 'close'
    response.writeHead(status, headers)
    if (request.method === 'HEAD') {
      response.end()
      return
    }
    if (stall !== undefined) {
      stalls.delete(path)
      // Headers and a prefix of the body, then silence on an open connection.
      response.write(body.subarray(0, Math.min(stall, body.length)))
      return
    }
    if (cut !== undefined) {
      cuts.delete(path)
      const sent = Math.min(cut, body.length)
      response.write(body.subarray(0, sent), () => {
        // Give the bytes a moment to leave, then break the connection mid-body.
        setTimeout(() => response.socket?.destroy(), 5)
      })
      return
    }
    response.end(body)
  }

  const server: Server = createServer((request, response) => {
    handle(request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500)
      response.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url: `${origin}/`,
    origin,
    override: (path, bytes) => overrides.set(path, bytes),
    redirect: (path, location) => redirects.set(path, location),
    cutNext: (path, bytes) => cuts.set(path, bytes),
    stallNext: (path, bytes) => stalls.set(path, bytes),
    ignoreRange: (value) => {
      rangeIgnored = value
    },
    clear: () => {
      overrides.clear()
      redirects.clear()
      cuts.clear()
      stalls.clear()
      rangeIgnored = false
    },
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
