// A web developer's first app, end to end, the way docs/sdk.md tells it: a Vite page (the recipe
// in browser-app/, built in a folder outside this repository that installs `ondevice` the way an
// app does) served by a plain static server together with the package `ondevice export-default`
// wrote, the local edge started by the one command (`ondevice edge --model DIR`), one Chromium
// (no GPU: the device runs WASM).
//
// 1. The build holds no onnxruntime-node and exactly the runtime files a device loads.
// 2. While the server answers the missing ORT binary with its index.html (a dev server's SPA
//    fallback), the edge answers and the page gets a `load-error` saying an HTML page came back;
//    once the server is fixed, the same profile loads the device (nothing bad was cached). Then
//    offline, with only the app's own build at hand (what a service worker keeps), a reloaded page
//    loads the model again and answers on the device with the same tokens; without the model
//    worker's script at hand, status() says the worker did not start (it used to wait forever).
// 3. Options that cannot work in a browser throw InvalidArgumentError with the fix.
// 4. A page on an origin the edge does not allow is told so (not "could not reach the edge").
// 5. The same app under Vite's dev server (`vite`, where a developer starts): the device loads the
//    engine from the installed package and answers (a JSON answer too), and Vite prints no warning
//    about it; an app's own model worker (createBrowserDeviceHost({ worker })) answers without
//    Vite reloading the page.
// 6. A page that is not cross-origin isolated asking numThreads 4 runs one thread (the engine, and
//    onnxruntime-web's WASM), and the app is told so (the `ready` event's warnings,
//    status().loadWarnings).
// 7. The page's up-front JavaScript is within its budget without the structured-output compiler
//    (test/browser/page-bundle-size.test.ts says why), which the first request with a schema
//    loads; while that chunk cannot load, the request fails with a retryable error naming it.
// No console errors on the app's page.
import { type ChildProcess, spawn } from 'node:child_process'
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { extname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Page, Route } from 'playwright-core'
import { build, createLogger, createServer as createViteServer } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { machineNpm, packOnce, run, userEnvironment } from '../consumers/consumer-project.ts'
import { type LaunchedChromium, launchChromium } from './chromium.ts'
import {
  compilerMarkers,
  kib,
  modelWorkerUpFront,
  pageBudgetBytes,
  readViteManifest,
  upFront,
} from './up-front-javascript.ts'

const repositoryRoot = fileURLToPath(new URL('../../', import.meta.url))
const recipe = fileURLToPath(new URL('./browser-app/', import.meta.url))
const cli = join(repositoryRoot, 'cli', 'main.ts')

interface Answer {
  readonly route: string
  readonly reason: string
  readonly text: string
  readonly backend: string | undefined
  readonly error: string | undefined
  readonly tokenIds: readonly number[]
}

interface AppStatus {
  readonly route: string
  readonly reason: string
  readonly loaded: boolean
  readonly loadWarnings?: readonly string[]
}

interface StructuredAnswer {
  readonly route?: string
  readonly reason?: string
  readonly text?: string
  readonly error?: {
    readonly name: string
    readonly code: string
    readonly isRetryable: boolean
    readonly param?: string
    readonly message: string
  }
}

interface AppHandle {
  summarize(): Promise<Answer>
  structured(): Promise<StructuredAnswer>
  structuredRefused(): Promise<StructuredAnswer>
  edgeOnly(): Promise<Answer>
  optionErrors(): { param?: string; message: string }[]
  readonly events: { name: string; message: string; warnings?: readonly string[] }[]
  status(): Promise<AppStatus>
  prepare(): Promise<AppStatus>
  ownWorker(): Promise<{ route: string; text: string }>
}

let work: string
let dist: string
let packageDirectory: string
let servers: Server[] = []
let appOrigin: string
let otherOrigin: string
let edgeProcess: ChildProcess | undefined
let edgeOutput = ''
let edgeUrl: string
let chromium: LaunchedChromium
/** While true the server answers ORT's .wasm with index.html, as a misconfigured dev server does. */
let runtimeBroken = true
/**
 * A Content-Security-Policy the server sends with every file while set (a Web Worker takes its
 * policy from its own script's response, not from the page).
 */
let contentSecurityPolicy: string | undefined

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
}

/** Cross-origin isolation (docs/sdk.md): WASM threads. */
const isolationHeaders = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
}

/**
 * A plain static server: the built app at /, the exported package at /models/default/, 404 else.
 * A page asked for with `isolated=0` in its query comes without the isolation headers.
 */
function staticServer(): Server {
  return createServer(async (request, response) => {
    const url = new URL(request.url ?? '/', 'http://x')
    const path = decodeURIComponent(url.pathname)
    const headers = {
      ...(url.searchParams.get('isolated') === '0' ? {} : isolationHeaders),
      ...(contentSecurityPolicy ? { 'content-security-policy': contentSecurityPolicy } : {}),
    }
    let file: string
    // Broken: every WebAssembly binary the device would load (the engine's, ORT's) is the SPA fallback.
    const runtimeBinary =
      (path.startsWith('/ort/') || /^\/assets\/engine-[\w-]+\.wasm$/.test(path)) && path.endsWith('.wasm')
    if (runtimeBroken && runtimeBinary) file = join(dist, 'index.html')
    else if (path.startsWith('/models/default/'))
      file = join(packageDirectory, path.slice('/models/default/'.length))
    else file = join(dist, path === '/' ? 'index.html' : path)
    const root = path.startsWith('/models/default/') ? packageDirectory : dist
    if (relative(root, file).startsWith('..')) {
      response.writeHead(404, headers).end()
      return
    }
    const body = await readFile(file).catch(() => undefined)
    if (body === undefined) {
      response.writeHead(404, headers).end()
      return
    }
    response.writeHead(200, {
      ...headers,
      'content-type': contentTypes[extname(file)] ?? 'application/octet-stream',
      'content-length': String(body.byteLength),
      'cache-control': 'no-store',
    })
    response.end(request.method === 'HEAD' ? undefined : body)
  })
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function filesUnder(folder: string): Promise<{ path: string; bytes: number }[]> {
  const names = await readdir(folder, { recursive: true })
  const files: { path: string; bytes: number }[] = []
  for (const name of names) {
    const info = await stat(join(folder, name))
    if (info.isFile()) files.push({ path: name.split(sep).join('/'), bytes: info.size })
  }
  return files.sort((a, b) => a.path.localeCompare(b.path))
}

/** `ondevice <args>` in a child process; resolves with its output once it exits. */
function ondevice(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.on('exit', (code) => resolve({ code, output }))
  })
}

/** The one command: `ondevice edge --model DIR`; resolves with its URL once it printed Ready. */
function startEdge(origin: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        cli,
        'edge',
        '--model',
        packageDirectory,
        '--model-id',
        'ondevice-default',
        '--port',
        '0',
        '--allowed-origins',
        origin,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    edgeProcess = child
    const timer = setTimeout(
      () => reject(new Error(`ondevice edge did not get ready:\n${edgeOutput}`)),
      240_000,
    )
    const collect = (chunk: Buffer) => {
      edgeOutput += chunk.toString()
      const url = /edge worker\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(edgeOutput)?.[1]
      if (url && edgeOutput.includes('Ready')) {
        clearTimeout(timer)
        resolve(url)
      }
    }
    child.stdout?.on('data', collect)
    child.stderr?.on('data', collect)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`ondevice edge exited (${code}):\n${edgeOutput}`))
    })
  })
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ondevice-browser-app-'))
  // The app, outside the repository, with `ondevice` and `vite` installed as an app has them.
  const app = join(work, 'app')
  await cp(recipe, app, { recursive: true })
  // Its package.json is written here, not kept beside the recipe: inside this repository the
  // recipe type-checks against `ondevice` by the repository's own package name.
  await writeFile(
    join(app, 'package.json'),
    JSON.stringify({
      name: 'summarize-app',
      private: true,
      type: 'module',
      // vite is linked from the repository below (the version the recipe is tested with).
    }),
  )
  // `ondevice` as users get it: the packed tarball (dist/), installed with the machine's npm.
  await run(
    machineNpm(),
    ['install', '--no-audit', '--no-fund', '--prefer-offline', '--no-save', await packOnce()],
    {
      cwd: app,
      env: userEnvironment(),
    },
  )
  await symlink(join(repositoryRoot, 'node_modules', 'vite'), join(app, 'node_modules', 'vite'), 'dir')
  packageDirectory = join(work, 'package')
  const [exported] = await Promise.all([
    ondevice(['export-default', packageDirectory]),
    // The manifest says which chunks the page loads up front (test 7).
    build({
      root: app,
      configFile: join(app, 'vite.config.ts'),
      logLevel: 'error',
      build: { manifest: true },
    }),
  ])
  expect(exported.code, exported.output).toBe(0)
  dist = join(app, 'dist')
  servers = [staticServer(), staticServer()]
  appOrigin = await listen(servers[0] as Server)
  otherOrigin = await listen(servers[1] as Server)
  ;[edgeUrl, chromium] = await Promise.all([startEdge(appOrigin), launchChromium({ webgpu: false })])
}, 300_000)

afterAll(async () => {
  await chromium?.close()
  if (edgeProcess && edgeProcess.exitCode === null) {
    const exited = new Promise((resolve) => edgeProcess?.once('exit', resolve))
    edgeProcess.kill('SIGTERM')
    await exited
  }
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
  if (work) await rm(work, { recursive: true, force: true })
})

async function openApp(page: Page, origin: string): Promise<void> {
  await page.goto(`${origin}/?edge=${encodeURIComponent(edgeUrl)}&minTokensPerSecond=0.01`)
  await page.waitForFunction(() => 'app' in window)
}

/** Calls window.app.<name>() in the page and returns its (awaited) result. */
function call<K extends keyof AppHandle>(
  page: Page,
  name: K,
): Promise<AppHandle[K] extends () => infer R ? Awaited<R> : AppHandle[K]> {
  return page.evaluate(async (method) => {
    const member = (window as unknown as { app: Record<string, unknown> }).app[method]
    return typeof member === 'function' ? await (member as () => unknown)() : member
  }, name) as never
}

const app = (page: Page) => ({
  call: <K extends keyof AppHandle>(name: K) => call(page, name),
  events: () => call(page, 'events'),
})

describe('a Vite app built from the recipe, in Chromium', () => {
  it('the build has no onnxruntime-node and only the ORT runtime files a device loads', async () => {
    const files = await filesUnder(dist)
    const total = files.reduce((sum, file) => sum + file.bytes, 0)
    const javascript = files.filter((file) => /\.m?js$/.test(file.path))
    console.log(
      `browser app build: ${files.length} files, ${(total / 2 ** 20).toFixed(1)} MiB in all; JavaScript ${(
        javascript.reduce((sum, file) => sum + file.bytes, 0) / 2 ** 10
      ).toFixed(
        0,
      )} KiB\n${files.map((file) => `  ${file.path}  ${(file.bytes / 2 ** 10).toFixed(0)} KiB`).join('\n')}`,
    )
    for (const file of files) {
      const text = await readFile(join(dist, file.path), 'latin1')
      expect(text.includes('onnxruntime-node'), `${file.path} mentions onnxruntime-node`).toBe(false)
    }
    // ondevice's engine (backend 'wasm'), and ORT's two builds (WebGPU, and WASM where the engine does not cover a package).
    // The engine comes in four builds (one thread; shared memory for threads; each plain SIMD128
    // and relaxed SIMD, picked at load) and its helper threads' module worker is a chunk of its own.
    const binaries = files.filter((file) => file.path.endsWith('.wasm')).map((file) => file.path)
    expect(binaries).toHaveLength(6)
    for (const name of ['engine', 'engine-threads', 'engine-relaxed', 'engine-threads-relaxed'])
      expect(
        binaries.filter((path) => new RegExp(`^assets/${name}-[\\w-]{8}\\.wasm$`).test(path)),
        name,
      ).toHaveLength(1)
    expect(files.some((file) => /^assets\/thread-worker-browser-[\w-]+\.js$/.test(file.path))).toBe(true)
    expect(binaries.slice(4)).toEqual([
      'ort/ort-wasm-simd-threaded.jsep.wasm',
      'ort/ort-wasm-simd-threaded.wasm',
    ])
    expect(files.filter((file) => file.path.startsWith('ort/')).map((file) => file.path)).toEqual([
      'ort/ort-wasm-simd-threaded.jsep.mjs',
      'ort/ort-wasm-simd-threaded.jsep.wasm',
      'ort/ort-wasm-simd-threaded.mjs',
      'ort/ort-wasm-simd-threaded.wasm',
    ])
  })

  it('answers from the local edge, then on the device; an HTML page for the runtime is never cached', async () => {
    const context = await chromium.newContext()
    const page = await context.newPage()
    const consoleErrors: string[] = []
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text())
    })
    page.on('pageerror', (error) => consoleErrors.push(error.message))
    try {
      await openApp(page, appOrigin)
      // In a browser: backend 'native' and a missing model are refused, each with its fix.
      const refusals = await app(page).call('optionErrors')
      expect(refusals[0]).toMatchObject({ param: 'backend' })
      expect(refusals[0]?.message).toMatch(/'webgpu' or 'wasm'/)
      expect(refusals[1]).toMatchObject({ param: 'model' })
      expect(refusals[1]?.message).toMatch(/export-default/)

      // Not cached: the edge answers while the device loads in the background, which fails on
      // the HTML page where ORT's binary should be.
      const first = await app(page).call('summarize')
      expect(first, JSON.stringify(first)).toMatchObject({ route: 'edge', error: undefined })
      expect(first.text.length).toBeGreaterThan(0)
      await page.waitForFunction(
        () =>
          (window as unknown as { app: AppHandle }).app.events.some((event) => event.name === 'load-error'),
        undefined,
        { timeout: 120_000 },
      )
      const failed = (await app(page).events()).find((event) => event.name === 'load-error')
      expect(failed?.message).toMatch(
        /an HTML page came back for .*(engine-[\w-]+|ort-wasm-simd-threaded)\.wasm/,
      )
      // status() does not promise the device that just failed to load.
      const status = await app(page).call('status')
      expect(status.route).toBe('edge')
      expect(status.reason).toMatch(/could not load the model \(.*an HTML page came back/)

      // The server is fixed; the same browser profile loads the device and answers there.
      runtimeBroken = false
      await openApp(page, appOrigin)
      const prepared = await app(page).call('prepare')
      expect(prepared, JSON.stringify(prepared)).toMatchObject({ route: 'device', loaded: true })
      const onDevice = await app(page).call('summarize')
      expect(onDevice, JSON.stringify(onDevice)).toMatchObject({
        route: 'device',
        backend: 'wasm',
        error: undefined,
      })
      expect(onDevice.text.length).toBeGreaterThan(0)
      expect(consoleErrors).toEqual([])

      // Offline (docs/sdk.md, "Offline"): the app's own build (its page and scripts, the model
      // worker's and the engine helpers' included) comes from where an app keeps it for offline
      // use, a service worker's cache, played here by routes; nothing else reaches the network.
      // The package (OPFS) and the engine's .wasm (its Cache API copy) are ondevice's to keep.
      let workerKept = true
      const buildFile = (url: URL) =>
        url.origin === appOrigin &&
        (url.pathname === '/' || /^\/assets\/[\w-]+\.js$/.test(url.pathname)) &&
        (workerKept || !/^\/assets\/device-worker-[\w-]+\.js$/.test(url.pathname))
      const fromBuild = (route: Route) => {
        const path = new URL(route.request().url()).pathname
        const file = join(dist, path === '/' ? 'index.html' : path)
        return route.fulfill({
          path: file,
          headers: { ...isolationHeaders, 'content-type': contentTypes[extname(file)] ?? '' },
        })
      }
      await context.route(buildFile, fromBuild)
      await context.setOffline(true)
      const unreachable: string[] = []
      page.on('requestfailed', (request) => unreachable.push(request.url()))
      try {
        // A reload: a new client, a new model worker, nothing compiled or loaded yet.
        await openApp(page, appOrigin)
        const offline = await app(page).call('status')
        expect(offline.route, offline.reason).toBe('device')
        expect(offline.reason).toMatch(/offline/)
        const reloaded = await app(page).call('prepare')
        expect(reloaded, JSON.stringify(reloaded)).toMatchObject({ route: 'device', loaded: true })
        const offlineAnswer = await app(page).call('summarize')
        expect(offlineAnswer, JSON.stringify(offlineAnswer)).toMatchObject({
          route: 'device',
          backend: 'wasm',
          error: undefined,
          text: onDevice.text,
          tokenIds: onDevice.tokenIds,
        })
        // The engine's .wasm was asked of the network and did not come from there.
        expect(
          unreachable.some((url) => /\/assets\/engine-[\w-]+\.wasm$/.test(url)),
          unreachable.join('\n'),
        ).toBe(true)
        expect(consoleErrors).toEqual([])

        // An app whose offline copy misses the model worker's script: the client says so (and
        // would let the edge answer) instead of waiting for a worker that never starts.
        workerKept = false
        await openApp(page, appOrigin)
        const noWorker = await Promise.race([
          app(page).call('status'),
          new Promise<AppStatus>((_, reject) =>
            setTimeout(() => reject(new Error('status() did not settle in 30 s')), 30_000),
          ),
        ])
        expect(noWorker.route).toBe('edge')
        expect(noWorker.reason).toMatch(
          /model worker did not start \(its script, .*device-worker-\*\.js\), did not load\).*"Offline"/,
        )
      } finally {
        await context.setOffline(false)
        await context.unroute(buildFile, fromBuild)
      }
    } finally {
      await context.close()
    }
  }, 300_000)

  it('under the Vite dev server the device loads from the installed package, with no warnings', async () => {
    const app = join(work, 'app')
    // The package is the app's static file, as a developer would put it in public/.
    await mkdir(join(app, 'public', 'models'), { recursive: true })
    await symlink(packageDirectory, join(app, 'public', 'models', 'default'), 'dir').catch(() => undefined)
    const warnings: string[] = []
    const logger = createLogger('warn')
    logger.warn = (message) => void warnings.push(message)
    logger.warnOnce = (message) => void warnings.push(message)
    logger.error = (message) => void warnings.push(message)
    // Vite says at info level that it pre-bundled a dependency it found late and reloads the page.
    const reloads: string[] = []
    logger.info = (message) => {
      if (/reload/i.test(message)) reloads.push(message)
    }
    const server = await createViteServer({
      root: app,
      configFile: join(app, 'vite.config.ts'),
      customLogger: logger,
      server: { host: '127.0.0.1', port: 0, strictPort: false },
    })
    const context = await chromium.newContext()
    try {
      await server.listen()
      const address = server.httpServer?.address() as AddressInfo
      const origin = `http://127.0.0.1:${address.port}`
      const page = await context.newPage()
      const consoleErrors: string[] = []
      page.on('console', (message) => {
        if (message.type() === 'error') consoleErrors.push(message.text())
      })
      page.on('pageerror', (error) => consoleErrors.push(error.message))
      // Everything the page and Vite said, for a failure's message (a clean CI run once waited
      // here past the test's timeout with nothing to show for it).
      const pageLog: string[] = []
      page.on('console', (message) => pageLog.push(`${message.type()}: ${message.text()}`))
      page.on('requestfailed', (request) =>
        pageLog.push(`request failed: ${request.url()} ${request.failure()?.errorText}`),
      )
      page.on('framenavigated', (frame) => pageLog.push(`navigated: ${frame.url()}`))
      const within = async <T>(what: string, work: Promise<T>): Promise<T> => {
        let timer: ReturnType<typeof setTimeout> | undefined
        const late = new Promise<never>((_, reject) => {
          timer = setTimeout(async () => {
            const state = await Promise.race([
              Promise.all([call(page, 'status'), call(page, 'events')]).then((value) =>
                JSON.stringify(value),
              ),
              new Promise<string>((done) => setTimeout(() => done('(the page did not answer)'), 5_000)),
            ]).catch((error: unknown) => String(error))
            reject(
              new Error(
                `${what} took over 120 s. Page state: ${state}\nPage log:\n${pageLog.join('\n')}\nVite:\n${warnings.join('\n')}`,
              ),
            )
          }, 120_000)
        })
        try {
          return await Promise.race([work, late])
        } finally {
          clearTimeout(timer)
        }
      }
      await page.goto(`${origin}/?edge=${encodeURIComponent(edgeUrl)}&minTokensPerSecond=0.01`)
      await page.waitForFunction(() => 'app' in window, undefined, { timeout: 120_000 })
      // An app asks status() while prepare() loads, as a UI showing progress does: both sync the
      // package's manifest into the browser's storage at once.
      const [prepared] = await Promise.all([within('prepare()', call(page, 'prepare')), call(page, 'status')])
      expect(prepared, JSON.stringify(prepared)).toMatchObject({ route: 'device', loaded: true })
      const answer = await within('summarize()', call(page, 'summarize'))
      expect(answer, JSON.stringify(answer)).toMatchObject({
        route: 'device',
        backend: 'wasm',
        error: undefined,
      })
      expect(answer.text.length).toBeGreaterThan(0)
      // The structured-output code, imported on demand, loads from the installed package as Vite
      // serves it (in the page and in the model's worker).
      const json = await within('structured()', call(page, 'structured'))
      expect(json, JSON.stringify(json)).toMatchObject({ route: 'device' })
      expect(json.text).toMatch(/^\{/)
      // The app's own model worker, which imports ondevice/runtime: Vite's scan does not look into
      // workers, so it found that import only when the worker ran and reloaded the page in the
      // middle of its load (the plugin now pre-bundles ondevice/runtime at start-up).
      const own = await within('ownWorker()', call(page, 'ownWorker'))
      expect(own, JSON.stringify(own)).toMatchObject({ route: 'device' })
      expect(own.text.length).toBeGreaterThan(0)
      expect(reloads).toEqual([])
      expect(consoleErrors).toEqual([])
      expect(warnings).toEqual([])
    } finally {
      await context.close()
      await server.close()
    }
  }, 300_000)

  it('a page that is not cross-origin isolated asking numThreads 4 runs one thread, and the app is told', async () => {
    const context = await chromium.newContext()
    try {
      const page = await context.newPage()
      await page.goto(
        `${appOrigin}/?isolated=0&threads=4&edge=${encodeURIComponent(edgeUrl)}&minTokensPerSecond=0.01`,
      )
      await page.waitForFunction(() => 'app' in window)
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(false)
      const prepared = await app(page).call('prepare')
      expect(prepared, JSON.stringify(prepared)).toMatchObject({ route: 'device', loaded: true })
      expect(prepared.loadWarnings).toEqual([
        expect.stringMatching(
          /^numThreads 4 asked for, the WebAssembly engine runs on one thread: the page is not cross-origin isolated.*Cross-Origin-Embedder-Policy/,
        ),
      ])
      const ready = (await app(page).events()).filter((event) => event.name === 'ready')
      expect(ready).toHaveLength(1)
      expect(ready[0]?.warnings).toEqual(prepared.loadWarnings)
      // onnxruntime-web's WASM on the same page: one thread too, and said so (it said nothing).
      const ortPage = await context.newPage()
      await ortPage.goto(
        `${appOrigin}/?isolated=0&threads=4&backend=ort-wasm&edge=${encodeURIComponent(edgeUrl)}&minTokensPerSecond=0.01`,
      )
      await ortPage.waitForFunction(() => 'app' in window)
      const ortPrepared = await app(ortPage).call('prepare')
      expect(ortPrepared, JSON.stringify(ortPrepared)).toMatchObject({ route: 'device', loaded: true })
      expect(ortPrepared.loadWarnings).toEqual([
        expect.stringMatching(
          /^numThreads 4 asked for, onnxruntime-web runs on one thread: page is not cross-origin isolated.*Cross-Origin-Embedder-Policy/,
        ),
      ])
    } finally {
      await context.close()
    }
  }, 120_000)

  it("a page whose Content-Security-Policy forbids compiling WebAssembly: the device's load error says to add 'wasm-unsafe-eval'", async () => {
    const context = await chromium.newContext()
    // Forbids compiling WebAssembly (no 'wasm-unsafe-eval'), and nothing else the page needs.
    contentSecurityPolicy = "script-src 'self'"
    try {
      // The engine, then onnxruntime-web's WASM: each error named the directive, neither the fix.
      for (const backend of ['', '&backend=ort-wasm']) {
        const page = await context.newPage()
        await page.goto(`${appOrigin}/?edge=${encodeURIComponent(edgeUrl)}${backend}`)
        await page.waitForFunction(() => 'app' in window)
        // prepare() rejects with it, or (the edge answering meanwhile) the load-error event has it.
        const rejected = await app(page)
          .call('prepare')
          .then(
            () => '',
            (error: unknown) => String(error),
          )
        const loadErrors = async () =>
          (await app(page).events())
            .filter((event) => event.name === 'load-error')
            .map((event) => event.message)
        await expect
          .poll(async () => [rejected, ...(await loadErrors())].join('\n'), { timeout: 60_000 })
          .toMatch(
            /Content-Security-Policy does not allow compiling WebAssembly.*add 'wasm-unsafe-eval' to its script-src/,
          )
        await page.close()
      }
    } finally {
      contentSecurityPolicy = undefined
      await context.close()
    }
  }, 120_000)

  it('the compiler is not up front: the first request with a schema loads it, a chunk that did not load is a retryable error', async () => {
    const manifest = await readViteManifest(dist)
    const page = await upFront(dist, manifest, 'index.html')
    const chunk = page.onDemand.find((file) => /^assets\/structured-output-[\w-]+\.js$/.test(file))
    console.log(
      `browser app (from the tarball): page up front ${kib(page.gzipBytes)} gzip -9 (budget ${kib(pageBudgetBytes)}), ${kib(page.bytes)} raw: ${page.files.join(', ')}; on demand: ${chunk}`,
    )
    expect(page.gzipBytes).toBeLessThanOrEqual(pageBudgetBytes)
    expect(chunk).toBeDefined()
    for (const file of page.files) {
      const text = await readFile(join(dist, file), 'utf8')
      expect(
        compilerMarkers.filter((marker) => text.includes(marker)),
        file,
      ).toEqual([])
    }
    const context = await chromium.newContext()
    try {
      const appPage = await context.newPage()
      const consoleErrors: string[] = []
      appPage.on('pageerror', (error) => consoleErrors.push(error.message))
      const asked: string[] = []
      appPage.on('request', (request) => {
        if (request.url().endsWith(`/${chunk}`)) asked.push(request.url())
      })
      // The chunk does not come (a deploy that removed it, a network gone).
      let chunkUnreachable = true
      const chunkRoute = (route: Route) => (chunkUnreachable ? route.abort('failed') : route.fallback())
      await context.route(`${appOrigin}/${chunk}`, chunkRoute)
      await openApp(appPage, appOrigin)
      const prepared = await app(appPage).call('prepare')
      expect(prepared, JSON.stringify(prepared)).toMatchObject({ route: 'device', loaded: true })
      const plain = await app(appPage).call('summarize')
      expect(plain, JSON.stringify(plain)).toMatchObject({ route: 'device', error: undefined })
      // Chatting never asked for the compiler.
      expect(asked).toEqual([])

      const failed = await app(appPage).call('structured')
      expect(failed.error, JSON.stringify(failed)).toMatchObject({
        name: 'BackendError',
        code: 'backend_unavailable',
        isRetryable: true,
      })
      expect(failed.error?.message).toMatch(/structured-output code did not load .*structured-output-\*\.js/)
      expect(asked.length).toBeGreaterThan(0)

      // Back: the same page, the same client, asked again.
      chunkUnreachable = false
      const answered = await app(appPage).call('structured')
      expect(answered, JSON.stringify(answered)).toMatchObject({ route: 'device' })
      expect(answered.error).toBeUndefined()
      // The device's answer follows the schema (8 tokens of a random model: a start of it).
      expect(answered.text).toMatch(/^\{/)
      const refused = await app(appPage).call('structuredRefused')
      expect(refused.error).toMatchObject({
        name: 'InvalidArgumentError',
        param: 'responseFormat.schema.format',
      })
      expect(consoleErrors).toEqual([])

      // A new page (a new model worker) whose worker cannot load its own copy of the chunk: the
      // device fails before its first token, saying why, and the edge answers the request.
      const workerChunk = (await modelWorkerUpFront(dist, manifest)).onDemand.find((file) =>
        /^assets\/structured-output-[\w-]+\.js$/.test(file),
      )
      expect(workerChunk).toBeDefined()
      expect(workerChunk).not.toBe(chunk)
      await context.route(`${appOrigin}/${workerChunk}`, (route) => route.abort('failed'))
      await openApp(appPage, appOrigin)
      expect(await app(appPage).call('prepare')).toMatchObject({ route: 'device', loaded: true })
      const handedOver = await app(appPage).call('structured')
      expect(handedOver, JSON.stringify(handedOver)).toMatchObject({ route: 'edge' })
      expect(handedOver.reason).toMatch(
        /device failed before the first token .*structured-output code did not load/,
      )
      expect(handedOver.text).toMatch(/^\{/)
    } finally {
      await context.close()
    }
  }, 300_000)

  it('a page on an origin the edge does not allow is told to add it to ALLOWED_ORIGINS', async () => {
    const context = await chromium.newContext()
    try {
      const page = await context.newPage()
      await openApp(page, otherOrigin)
      const refused = await app(page).call('edgeOnly')
      expect(refused.error).toMatch(
        new RegExp(`answered, but not to this page's origin \\(${otherOrigin}\\).*ALLOWED_ORIGINS`),
      )
      // The same request from the allowed origin goes through.
      const allowed = await context.newPage()
      await openApp(allowed, appOrigin)
      expect(await app(allowed).call('edgeOnly')).toMatchObject({ route: 'edge', error: undefined })
    } finally {
      await context.close()
    }
  }, 120_000)
})
