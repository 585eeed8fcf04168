// `ondevice/vite`: the Vite plugin for a page that uses `ondevice`. It makes the build carry
// exactly the ONNX Runtime Web files the device can load and nothing else, and serves the page
// the way WASM threads need:
//
//   import { defineConfig } from 'vite'
//   import { ondevice } from 'ondevice/vite'
//   export default defineConfig({ plugins: [ondevice()] })
//
// - ONNX Runtime Web is resolved with its `onnxruntime-web-use-extern-wasm` export condition: its
//   JavaScript no longer references every .wasm build through `new URL(..., import.meta.url)`, so
//   Vite stops emitting builds the page never loads (42 MB of them by default). The runtime then
//   loads its glue module and binary from `runtimeUrl` at run time.
// - The files each device flavour loads (`ort-wasm-simd-threaded.{mjs,wasm}` for WASM, the
//   `.jsep` pair for WebGPU) are served under `runtimeUrl` by the dev and preview servers and
//   written there in the build output: four files, never the whole onnxruntime-web/dist (136 MB).
// - Cross-origin isolation headers (COOP/COEP) on the dev and preview servers, so WASM runs on
//   several threads; production hosting must send them too (docs/sdk.md says how).
import { createReadStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Plugin, ResolvedConfig } from 'vite'
import { InvalidArgumentError, refuseUnknownNames } from '../../core/errors.ts'

export type RuntimeFlavor = 'webgpu' | 'wasm'

export interface OndevicePluginOptions {
  /**
   * The URL path the runtime files are served under; the same as createClient's `runtimeUrl`
   * (default '/ort/'). Relative to the app's `base` when it does not start with '/': an app
   * with a base such as '/app/' gives 'ort/' here and `${import.meta.env.BASE_URL}ort/` to
   * createClient (an absolute path outside that base is refused: production serves the build
   * under the base).
   */
  readonly runtimeUrl?: string
  /**
   * Which builds to ship: 'webgpu' (the WebGPU build, which also runs WASM: 28 MB) and 'wasm'
   * (WASM only: 14 MB, loaded on devices without WebGPU, or with createClient({ backend: 'wasm' })).
   * Default both. Ship only 'wasm' when the client is created with `backend: 'wasm'`.
   */
  readonly flavors?: readonly RuntimeFlavor[]
  /** Send COOP/COEP on the dev and preview servers (default true). */
  readonly isolationHeaders?: boolean
}

/** The headers that make a page cross-origin isolated (SharedArrayBuffer, so WASM threads). */
export const crossOriginIsolationHeaders: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
}

const filesByFlavor: Record<RuntimeFlavor, readonly string[]> = {
  webgpu: ['ort-wasm-simd-threaded.jsep.mjs', 'ort-wasm-simd-threaded.jsep.wasm'],
  wasm: ['ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'],
}

/** The onnxruntime-web files a page with these flavours loads (names inside its dist/ folder). */
export function runtimeFiles(flavors: readonly RuntimeFlavor[] = ['webgpu', 'wasm']): string[] {
  return flavors.flatMap((flavor) => filesByFlavor[flavor])
}

/** onnxruntime-web's dist folder, as installed next to ondevice. */
export function ortDistDirectory(): string {
  // onnxruntime-web exports its .wasm files (not its package.json): the folder is theirs.
  return dirname(fileURLToPath(import.meta.resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm')))
}

function checkOptions(options: OndevicePluginOptions): {
  runtimeUrl: string
  files: string[]
  isolationHeaders: boolean
} {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError(
      'options',
      "ondevice() takes an options object, e.g. { runtimeUrl: '/ort/' }.",
    )
  }
  // A misspelt name (runtimeURL, flavours) would be dropped and its default taken, as every other
  // entry's options refuse.
  refuseUnknownNames(
    options,
    ['runtimeUrl', 'flavors', 'isolationHeaders'],
    'ondevice() (Vite plugin) option',
  )
  const runtimeUrl = options.runtimeUrl ?? '/ort/'
  if (
    typeof runtimeUrl !== 'string' ||
    !/^\/?([\w.-]+\/)*[\w.-]*\/?$/.test(runtimeUrl) ||
    runtimeUrl === ''
  ) {
    throw new InvalidArgumentError(
      'runtimeUrl',
      `runtimeUrl must be a URL path on the app's origin like '/ort/' (got ${JSON.stringify(runtimeUrl)}); pass the same value to createClient({ runtimeUrl }).`,
    )
  }
  const flavors = options.flavors ?? ['webgpu', 'wasm']
  if (
    !Array.isArray(flavors) ||
    flavors.length === 0 ||
    flavors.some((flavor) => flavor !== 'webgpu' && flavor !== 'wasm')
  ) {
    throw new InvalidArgumentError(
      'flavors',
      `flavors must list 'webgpu' and/or 'wasm' (got ${JSON.stringify(flavors)}).`,
    )
  }
  if (options.isolationHeaders !== undefined && typeof options.isolationHeaders !== 'boolean') {
    throw new InvalidArgumentError('isolationHeaders', 'isolationHeaders must be true or false.')
  }
  return {
    runtimeUrl: runtimeUrl.endsWith('/') ? runtimeUrl : `${runtimeUrl}/`,
    files: runtimeFiles([...new Set(flavors)]),
    isolationHeaders: options.isolationHeaders ?? true,
  }
}

export function ondevice(options: OndevicePluginOptions = {}): Plugin {
  const settings = checkOptions(options)
  const distDirectory = ortDistDirectory()
  let config: ResolvedConfig | undefined
  const appBase = (): string => {
    const base = config?.base ?? '/'
    return base.endsWith('/') ? base : `${base}/`
  }
  // The URL path the files answer at: runtimeUrl under the app's base unless it is absolute.
  const servedPath = (): string =>
    settings.runtimeUrl.startsWith('/') ? settings.runtimeUrl : `${appBase()}${settings.runtimeUrl}`
  // The output folder path (relative to outDir) the files are written to. The build's output is
  // served under the base, so an absolute runtimeUrl under it ('/app/ort/') is the folder 'ort/'.
  const outputFolder = (): string => {
    const base = appBase()
    if (!settings.runtimeUrl.startsWith('/')) return settings.runtimeUrl
    if (base.startsWith('/') && settings.runtimeUrl.startsWith(base))
      return settings.runtimeUrl.slice(base.length)
    return settings.runtimeUrl.replace(/^\/+/, '')
  }

  const serveRuntimeFiles = (middlewares: {
    use(handler: (request: RequestLike, response: ResponseLike, next: () => void) => void): void
  }): void => {
    middlewares.use((request, response, next) => {
      const path = (request.url ?? '').split('?')[0] ?? ''
      const prefix = servedPath()
      if (!path.startsWith(prefix)) return next()
      const name = path.slice(prefix.length)
      if (!settings.files.includes(name)) {
        // Never fall through to the page's index.html: the runtime would cache an HTML page.
        response.statusCode = 404
        response.setHeader('content-type', 'text/plain; charset=utf-8')
        response.end(
          `${name} is not one of the runtime files ondevice/vite serves (${settings.files.join(', ')}).`,
        )
        return
      }
      const file = join(distDirectory, name)
      stat(file).then(
        (info) => {
          response.statusCode = 200
          response.setHeader('content-type', name.endsWith('.wasm') ? 'application/wasm' : 'text/javascript')
          response.setHeader('content-length', String(info.size))
          response.setHeader('cross-origin-resource-policy', 'same-origin')
          createReadStream(file).pipe(response as unknown as NodeJS.WritableStream)
        },
        () => {
          response.statusCode = 500
          response.end(
            `onnxruntime-web's ${name} is missing from ${distDirectory}: reinstall onnxruntime-web.`,
          )
        },
      )
    })
  }

  return {
    name: 'ondevice',
    config(user) {
      // Merged with the user's conditions; listing Vite's defaults keeps them when the user set none.
      const conditions = ['onnxruntime-web-use-extern-wasm', 'module', 'browser', 'development|production']
      return {
        resolve: { conditions },
        worker: { format: 'es' as const },
        // onnxruntime-web finds its runtime files at run time: pre-bundling it breaks that.
        // ondevice/runtime is what an app's own model worker imports (createBrowserDeviceHost's
        // `worker`, docs/sdk.md), and Vite's scan does not follow `new Worker(new URL(...))`: it
        // found the import only when the worker ran, pre-bundled it then and reloaded the page in
        // the middle of the first load. Listed here, it is pre-bundled at start-up.
        optimizeDeps: {
          include: ['ondevice/runtime'],
          exclude: ['onnxruntime-web', ...(user.optimizeDeps?.exclude ?? [])],
        },
        ...(settings.isolationHeaders
          ? {
              server: { headers: { ...crossOriginIsolationHeaders } },
              preview: { headers: { ...crossOriginIsolationHeaders } },
            }
          : {}),
      }
    },
    configResolved(resolved) {
      config = resolved
      // An absolute runtimeUrl outside a base such as '/app/': vite and vite preview served the
      // files there, but the build's output is served under the base, so a page that worked in
      // preview failed once deployed (HTTP 404 for /ort/...wasm where WebGPU or ort-wasm ran).
      const base = appBase()
      if (
        base !== '/' &&
        base.startsWith('/') &&
        settings.runtimeUrl.startsWith('/') &&
        !settings.runtimeUrl.startsWith(base)
      ) {
        throw new InvalidArgumentError(
          'runtimeUrl',
          `ondevice/vite: runtimeUrl '${settings.runtimeUrl}'${options.runtimeUrl === undefined ? ' (the default)' : ''} is outside the app's base '${base}': the build is served under the base, so the runtime files would be at ${base}${outputFolder()} once deployed while vite and vite preview serve them at ${settings.runtimeUrl}. Give the plugin a path under the base, ondevice({ runtimeUrl: 'ort/' }) (a relative path is under the base), and createClient the same URL: createClient({ runtimeUrl: \`\${import.meta.env.BASE_URL}ort/\` }).`,
        )
      }
    },
    configureServer(server) {
      serveRuntimeFiles(server.middlewares)
    },
    configurePreviewServer(server) {
      serveRuntimeFiles(server.middlewares)
    },
    async generateBundle() {
      // Only the client build carries the runtime files (an SSR build has no device side).
      if (config?.build.ssr) return
      for (const name of settings.files) {
        this.emitFile({
          type: 'asset',
          fileName: `${outputFolder()}${name}`,
          source: new Uint8Array(await readFile(join(distDirectory, name))),
        })
      }
    },
  }
}

interface RequestLike {
  readonly url?: string
}

interface ResponseLike {
  statusCode: number
  setHeader(name: string, value: string): void
  end(body?: string): void
}
