// A small static file server for the demo page, ORT's wasm files and model packages. It sends
// the cross-origin isolation headers (COOP/COEP) on every response so the page gets
// SharedArrayBuffer and ONNX Runtime can run WASM on two threads, answers HTTP Range requests
// (the model store resumes interrupted downloads with them), and keeps a log of what it served
// so the browser tests can tell whether a package was downloaded again.
import { createReadStream } from 'node:fs'
import { realpath, stat } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { extname, join, resolve, sep } from 'node:path'
import { InvalidArgumentError } from '../core/errors.ts'

export interface StaticMount {
  /** URL path prefix, starting and ending with '/', e.g. '/ort/'. '/' is the fallback. */
  readonly prefix: string
  /** Folder whose files are served under the prefix. */
  readonly directory: string
  /**
   * Cache-Control for its files. Default 'no-store': the SDK's own store (not the HTTP cache) must
   * avoid second downloads, and the request log must see every fetch. Content-hashed build
   * output can say 'public, max-age=31536000, immutable' (a page then starts offline).
   */
  readonly cacheControl?: string
}

export interface StaticServerOptions {
  readonly mounts: readonly StaticMount[]
  /** 0 (default) picks a free port. */
  readonly port?: number
  /** Always 127.0.0.1 unless told otherwise: nothing here is meant for the network. */
  readonly host?: string
}

export interface ServedRequest {
  readonly method: string
  readonly path: string
  readonly status: number
  /** Bytes of body sent (0 for HEAD, errors and 304). */
  readonly bytes: number
  readonly range: string | undefined
}

export interface StaticServer {
  /** Base URL without a trailing slash, e.g. http://127.0.0.1:41234 */
  readonly url: string
  readonly port: number
  /** Every request answered so far, oldest first. */
  readonly requests: readonly ServedRequest[]
  /** Forgets the request log (tests call it between phases). */
  clearRequests(): void
  close(): Promise<void>
}

const contentTypes: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.jinja': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
}

/** Headers that make the page cross-origin isolated (SharedArrayBuffer → WASM threads). */
export const isolationHeaders: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  // Lets an isolated page on another port (or origin) load these files too.
  'Cross-Origin-Resource-Policy': 'cross-origin',
}

export async function startStaticServer(options: StaticServerOptions): Promise<StaticServer> {
  if (!Array.isArray(options.mounts) || options.mounts.length === 0) {
    throw new InvalidArgumentError('mounts', 'Give at least one { prefix, directory } to serve.')
  }
  const mounts = await Promise.all(
    options.mounts.map(async (mount, index) => {
      if (!mount.prefix.startsWith('/') || !mount.prefix.endsWith('/')) {
        throw new InvalidArgumentError(
          `mounts.${index}.prefix`,
          `A mount prefix starts and ends with "/" (got "${mount.prefix}").`,
        )
      }
      const directory = await realpath(resolve(mount.directory)).catch(() => {
        throw new InvalidArgumentError(`mounts.${index}.directory`, `No such folder: ${mount.directory}`)
      })
      return { prefix: mount.prefix, directory, cacheControl: mount.cacheControl ?? 'no-store' }
    }),
  )
  // Longest prefix first, so '/models/x/' wins over '/'.
  mounts.sort((a, b) => b.prefix.length - a.prefix.length)

  const requests: ServedRequest[] = []
  const server: Server = createServer((request, response) => {
    handle(request, response, mounts).then(
      (entry) => requests.push(entry),
      (error: unknown) => {
        if (!response.headersSent) response.writeHead(500, { 'Content-Type': 'text/plain' })
        response.end(error instanceof Error ? error.message : String(error))
        requests.push({
          method: request.method ?? 'GET',
          path: request.url ?? '/',
          status: 500,
          bytes: 0,
          range: undefined,
        })
      },
    )
  })
  // Keep idle connections open longer than clients do: a client (workerd's fetch, a browser)
  // that reuses a socket the server has just closed sees "Network connection lost". Node's
  // default is 5 s, shorter than the pauses of a client that hashes one file before the next.
  server.keepAliveTimeout = 120_000
  server.headersTimeout = 125_000
  const host = options.host ?? '127.0.0.1'
  await new Promise<void>((resolveListen, rejectListen) => {
    server.once('error', rejectListen)
    server.listen(options.port ?? 0, host, () => resolveListen())
  })
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://${host}:${port}`,
    port,
    requests,
    clearRequests: () => {
      requests.length = 0
    },
    close: () =>
      new Promise<void>((resolveClose) => {
        server.closeAllConnections()
        server.close(() => resolveClose())
      }),
  }
}

async function handle(
  request: IncomingMessage,
  response: ServerResponse,
  mounts: readonly ResolvedMount[],
): Promise<ServedRequest> {
  const method = request.method ?? 'GET'
  const url = new URL(request.url ?? '/', 'http://localhost')
  const path = decodeURIComponent(url.pathname)
  const range = request.headers.range
  const done = (status: number, bytes: number): ServedRequest => ({ method, path, status, bytes, range })
  const headers: Record<string, string> = { ...isolationHeaders }

  if (method === 'OPTIONS') {
    response.writeHead(204, {
      ...headers,
      'Access-Control-Allow-Origin': '*',
      'Access-Control-Allow-Headers': '*',
      'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
    })
    response.end()
    return done(204, 0)
  }
  if (method !== 'GET' && method !== 'HEAD') {
    response.writeHead(405, { ...headers, Allow: 'GET, HEAD, OPTIONS' })
    response.end()
    return done(405, 0)
  }

  const file = await resolveFile(path, mounts)
  if (file === undefined) {
    response.writeHead(404, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' })
    response.end(`Not found: ${path}\n`)
    return done(404, 0)
  }

  const size = file.size
  headers['Content-Type'] = contentTypes[extname(file.path).toLowerCase()] ?? 'application/octet-stream'
  headers['Accept-Ranges'] = 'bytes'
  headers['Cache-Control'] = file.cacheControl
  headers['Access-Control-Allow-Origin'] = '*'
  headers['Access-Control-Expose-Headers'] = 'Content-Length, Content-Range, Accept-Ranges'

  let start = 0
  let end = size - 1
  let status = 200
  if (range !== undefined) {
    const match = /^bytes=(\d*)-(\d*)$/.exec(range.trim())
    const first = match?.[1] ?? ''
    const last = match?.[2] ?? ''
    if (match === null || (first === '' && last === '')) {
      response.writeHead(416, { ...headers, 'Content-Range': `bytes */${size}` })
      response.end()
      return done(416, 0)
    }
    if (first === '') {
      start = Math.max(0, size - Number(last))
    } else {
      start = Number(first)
      end = last === '' ? size - 1 : Math.min(Number(last), size - 1)
    }
    if (start >= size || start > end) {
      response.writeHead(416, { ...headers, 'Content-Range': `bytes */${size}` })
      response.end()
      return done(416, 0)
    }
    status = 206
    headers['Content-Range'] = `bytes ${start}-${end}/${size}`
  }
  const length = size === 0 ? 0 : end - start + 1
  headers['Content-Length'] = String(length)
  response.writeHead(status, headers)
  if (method === 'HEAD' || length === 0) {
    response.end()
    return done(status, 0)
  }
  await new Promise<void>((resolveStream, rejectStream) => {
    const stream = createReadStream(file.path, { start, end })
    stream.on('error', rejectStream)
    response.on('close', () => {
      stream.destroy()
      resolveStream()
    })
    stream.pipe(response)
  })
  return done(status, length)
}

interface ResolvedMount {
  readonly prefix: string
  readonly directory: string
  readonly cacheControl: string
}

async function resolveFile(
  path: string,
  mounts: readonly ResolvedMount[],
): Promise<{ path: string; size: number; cacheControl: string } | undefined> {
  const mount = mounts.find((m) => path.startsWith(m.prefix))
  if (mount === undefined) return undefined
  let relative = path.slice(mount.prefix.length)
  if (relative === '' || relative.endsWith('/')) relative += 'index.html'
  const candidate = resolve(join(mount.directory, relative))
  // Never serve outside the mounted folder ('..' or a symlink out of it).
  if (candidate !== mount.directory && !candidate.startsWith(mount.directory + sep)) return undefined
  try {
    const real = await realpath(candidate)
    if (real !== mount.directory && !real.startsWith(mount.directory + sep)) return undefined
    const info = await stat(real)
    if (info.isDirectory()) {
      const index = join(real, 'index.html')
      const indexInfo = await stat(index)
      return { path: index, size: indexInfo.size, cacheControl: mount.cacheControl }
    }
    return info.isFile() ? { path: real, size: info.size, cacheControl: mount.cacheControl } : undefined
  } catch {
    return undefined
  }
}
