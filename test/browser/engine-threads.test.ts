// ondevice's engine on threads in Chromium: a cross-origin isolated page (COOP/COEP) starts the
// engine's helper Web Workers over shared memory, and 1, 2 and 4 threads give the same logit
// bytes as each other and as the engine in Node, on the page's main thread (which spins instead of
// waiting) and inside a module Web Worker (helpers started from a worker, as in the SDK's model
// worker). Chromium runs the relaxed-SIMD build (engine-relaxed.wasm) by default; the plain
// engine.wasm, forced, gives the same bytes. A page that is not isolated runs one thread and says
// why. The page is built with Vite, so the helper's chunk and every .wasm must come out of the build.
import { createHash } from 'node:crypto'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Page } from 'playwright-core'
import { build, defaultClientConditions } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeQwen35Fixture } from '../../builder/architectures/qwen3-5-fixture.ts'
import { writeFixture } from '../../builder/fixtures/fixture.ts'
import { type StaticServer, startStaticServer } from '../../demo/static-server.ts'
import { folderWeightReader, loadEngineModule } from '../../wasm/engine/node.ts'
import { createEngineSession } from '../../wasm/engine/session.ts'
import { type LaunchedChromium, launchChromium } from './chromium.ts'
import type {
  EngineCaseRequest,
  EngineCaseResult,
  HelperDeathResult,
} from './engine-threads-page/engine-case.ts'

interface Fixture {
  readonly name: string
  readonly folder: string
  readonly dtype: string
  readonly prompt: readonly number[]
  readonly steps: readonly number[]
}

const tokens = Array.from({ length: 80 }, (_, i) => (i * 7919 + 11) % 151_000)

let folder: string
let server: StaticServer
let chromium: LaunchedChromium
let builtFiles: string[] = []
const fixtures: Fixture[] = []
/** SHA-256 of Node's engine (one thread) over the same rows, per fixture. */
const nodeDigest = new Map<string, string>()

async function nodeEngineDigest(fixture: Fixture): Promise<string> {
  const session = await createEngineSession({
    module: await loadEngineModule(),
    files: folderWeightReader(fixture.folder),
    dtype: fixture.dtype,
  })
  try {
    const hash = createHash('sha256')
    const rows = [await session.append([...fixture.prompt])]
    for (const token of fixture.steps) rows.push(await session.append([token]))
    for (const row of rows) hash.update(new Uint8Array(row.buffer, row.byteOffset, row.byteLength))
    return hash.digest('hex')
  } finally {
    await session.dispose()
  }
}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-engine-threads-'))
  const outDir = join(folder, 'page')
  const qwen3 = join(folder, 'qwen3-q4')
  const qwen35 = join(folder, 'qwen3_5-q4')
  const [launched] = await Promise.all([
    launchChromium({ webgpu: false }),
    build({
      configFile: false,
      root: fileURLToPath(new URL('./engine-threads-page/', import.meta.url)),
      base: './',
      logLevel: 'error',
      publicDir: false,
      // The package's own imports ('#runtime-node') resolve to the sources, as in the demo.
      resolve: { conditions: ['ondevice-source', ...defaultClientConditions] },
      // Module workers as the ondevice/vite plugin sets them (the helpers are started with type 'module').
      worker: { format: 'es' },
      build: { outDir, emptyOutDir: true, target: 'es2022', reportCompressedSize: false },
    }),
    writeFixture({ arch: 'qwen3', outDir: qwen3, dtype: 'q4', seed: 3 }),
    writeQwen35Fixture({ outDir: qwen35, size: 'tiny', dtypes: ['q4'] }),
  ])
  chromium = launched
  builtFiles = await readdir(join(outDir, 'assets'))
  // Qwen3 (llama path: matrix rows and attention heads split) and Qwen3.5 (also the delta
  // rule's value heads and the conv's channels).
  fixtures.push(
    {
      name: 'qwen3 q4',
      folder: qwen3,
      dtype: 'q4',
      prompt: tokens.slice(0, 70),
      steps: tokens.slice(70, 76),
    },
    {
      name: 'qwen3_5 q4',
      folder: qwen35,
      dtype: 'q4',
      prompt: tokens.slice(0, 40),
      steps: tokens.slice(40, 43),
    },
  )
  for (const fixture of fixtures) nodeDigest.set(fixture.name, await nodeEngineDigest(fixture))
  server = await startStaticServer({
    mounts: [
      { prefix: '/', directory: outDir },
      { prefix: '/qwen3-q4/', directory: qwen3 },
      { prefix: '/qwen3_5-q4/', directory: qwen35 },
      // onnxruntime-web's files where the browser host looks for them by default.
      {
        prefix: '/ort/',
        directory: fileURLToPath(new URL('../../node_modules/onnxruntime-web/dist/', import.meta.url)),
      },
    ],
  })
}, 180_000)

afterAll(async () => {
  await chromium?.close()
  await server?.close()
  if (folder) await rm(folder, { recursive: true, force: true })
})

function request(fixture: Fixture, threads: number | undefined, simd?: 'plain'): EngineCaseRequest {
  const path = fixture.folder.slice(fixture.folder.lastIndexOf('/'))
  return {
    packageUrl: `${server.url}${path}/`,
    dtype: fixture.dtype,
    ...(threads === undefined ? {} : { threads }),
    ...(simd === undefined ? {} : { simd }),
    prompt: fixture.prompt,
    steps: fixture.steps,
  }
}

async function openPage(page: Page, url: string): Promise<void> {
  await page.goto(url)
  await page.waitForSelector('body[data-ready="true"]')
}

function inPage(page: Page, where: 'page' | 'worker', body: EngineCaseRequest): Promise<EngineCaseResult> {
  return page.evaluate(
    ({ where, body }) => {
      const run = (
        window as unknown as Record<string, (request: EngineCaseRequest) => Promise<EngineCaseResult>>
      )[where === 'page' ? 'runEngineCase' : 'runEngineCaseInWorker']
      return (run as (request: EngineCaseRequest) => Promise<EngineCaseResult>)(body)
    },
    { where, body },
  )
}

describe("ondevice's engine on threads in Chromium", () => {
  it('the build emits the helper worker and every build of the engine', () => {
    expect(builtFiles.some((file) => /^thread-worker-browser-.*\.js$/.test(file))).toBe(true)
    for (const name of ['engine', 'engine-threads', 'engine-relaxed', 'engine-threads-relaxed'])
      expect(
        builtFiles.some((file) => new RegExp(`^${name}-[\\w-]{8}\\.wasm$`).test(file)),
        name,
      ).toBe(true)
  })

  it("a cross-origin isolated page: 1, 2 and 4 threads give Node's logit bytes, on the main thread and in a worker, relaxed-SIMD and plain builds", async () => {
    const context = await chromium.newContext()
    try {
      const page = await context.newPage()
      await openPage(page, `${server.url}/`)
      for (const fixture of fixtures) {
        const runs: [string, number, EngineCaseResult][] = []
        for (const threads of [1, 2, 4])
          runs.push(['page', threads, await inPage(page, 'page', request(fixture, threads))])
        for (const threads of [4])
          runs.push(['worker', threads, await inPage(page, 'worker', request(fixture, threads))])
        const plain = await inPage(page, 'page', request(fixture, 2, 'plain'))
        expect(plain.sha256, `${fixture.name}, plain engine.wasm, 2 threads`).toBe(
          nodeDigest.get(fixture.name),
        )
        // The load result says which build ran (session.build through backendSetup).
        expect(plain.backendSetup).toMatchObject({ threads: 2, simd: 'plain' })
        for (const [where, threads, result] of runs) {
          const label = `${fixture.name}, ${where}, ${threads} thread(s)`
          expect(result.crossOriginIsolated, label).toBe(true)
          expect(result.relaxedSimd, label).toBe(true)
          expect(result.backend, label).toBe('wasm')
          expect(result.backendSetup, label).toMatchObject({
            engine: 'ondevice-wasm',
            threads,
            simd: 'relaxed',
          })
          expect(result.warnings, label).toEqual([])
          expect(result.rows, label).toBe(1 + fixture.steps.length)
          expect(result.sha256, `${label}: ${JSON.stringify(result.firstLogits)}`).toBe(
            nodeDigest.get(fixture.name),
          )
        }
      }
    } finally {
      await context.close()
    }
  }, 120_000)

  it('a helper thread stopped mid-answer: a retryable backend_failed naming it, on the main thread and in a worker; a reload gives the same bytes', async () => {
    const context = await chromium.newContext()
    try {
      const page = await context.newPage()
      await openPage(page, `${server.url}/`)
      const fixture = fixtures[0] as Fixture
      for (const where of ['page', 'worker'] as const) {
        const result = await page.evaluate(
          ({ where, body }) => {
            const run = (
              window as unknown as Record<string, (request: EngineCaseRequest) => Promise<HelperDeathResult>>
            )[where === 'page' ? 'runHelperDeathCase' : 'runHelperDeathCaseInWorker']
            return (run as (request: EngineCaseRequest) => Promise<HelperDeathResult>)(body)
          },
          { where, body: request(fixture, 2) },
        )
        // Browsers fire no event for a terminated worker: the stall bound ends the wait (the
        // page's thread spins, a worker's blocks in slices).
        expect(result.error, where).toMatchObject({
          name: 'BackendError',
          code: 'backend_failed',
          isRetryable: true,
        })
        expect(result.error?.message, where).toMatch(
          /helper thread 1 did not finish its share.*load it again/,
        )
        expect(result.sameErrorAfter, where).toBe(true)
      }
      // Loading the model again on the same page works, with the same bytes as before.
      const again = await inPage(page, 'page', request(fixture, 2))
      expect(again.sha256).toBe(nodeDigest.get(fixture.name))
    } finally {
      await context.close()
    }
  }, 90_000)

  it('a helper script the server does not serve fails the load with backend_unavailable, saying so', async () => {
    const context = await chromium.newContext()
    try {
      // A server's SPA fallback: the page's index.html where the helper's module should be.
      await context.route(/thread-worker-browser-[\w-]+\.js$/, (route) =>
        route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><p>app</p>' }),
      )
      const page = await context.newPage()
      await openPage(page, `${server.url}/`)
      const failure = await inPage(page, 'page', request(fixtures[0] as Fixture, 2)).then(
        () => 'loaded',
        (error: Error) => error.message,
      )
      expect(failure).toMatch(/BackendError: ondevice's engine thread 1 did not start.*numThreads: 1/)
    } finally {
      await context.close()
    }
  }, 60_000)

  it("the engine's own module not served: the load fails, and the next load takes the helper already made for the threaded build", async () => {
    const context = await chromium.newContext()
    try {
      // Counts the engine's helper Web Workers the page creates and terminates.
      await context.addInitScript(() => {
        const counts = { created: 0, terminated: 0 }
        Object.assign(window, { helperCounts: counts })
        const Original = window.Worker
        window.Worker = class extends Original {
          constructor(url: string | URL, options?: WorkerOptions) {
            super(url, options)
            if (!options?.name?.startsWith('ondevice-engine-thread')) return
            counts.created++
            const terminate = this.terminate.bind(this)
            this.terminate = () => {
              counts.terminated++
              terminate()
            }
          }
        }
      })
      // engine-relaxed.wasm fails; engine-threads-relaxed.wasm (the helpers' build) loads.
      await context.route(/\/engine-relaxed-[\w-]+\.wasm$/, (route) =>
        route.fulfill({ status: 404, body: '' }),
      )
      const page = await context.newPage()
      await openPage(page, `${server.url}/`)
      const failure = await inPage(page, 'page', request(fixtures[0] as Fixture, 2)).then(
        () => 'loaded',
        (error: Error) => error.message,
      )
      expect(failure).toMatch(
        /BackendError: Fetching ondevice's WebAssembly engine .*engine-relaxed-.*HTTP 404/,
      )
      // The helper made for the threaded build is kept, not terminated, and the next load takes
      // it instead of making another (in Firefox a `new Worker` made shortly after terminating
      // helpers sometimes blocked its worker for good; docs/wasm-engine.md, Threads).
      await context.unroute(/\/engine-relaxed-[\w-]+\.wasm$/)
      const fixture = fixtures[0] as Fixture
      const again = await inPage(page, 'page', request(fixture, 2))
      expect(again.backendSetup).toMatchObject({ threads: 2 })
      expect(again.sha256).toBe(nodeDigest.get(fixture.name))
      // Unloaded, the helper left its loop and is kept again.
      expect(await page.evaluate(() => (window as unknown as { helperCounts: object }).helperCounts)).toEqual(
        { created: 1, terminated: 0 },
      )
    } finally {
      await context.close()
    }
  }, 60_000)

  it("a page that is not cross-origin isolated runs one thread, says why, and gives the same bytes; onnxruntime-web's WASM there says so too", async () => {
    const context = await chromium.newContext()
    try {
      const page = await context.newPage()
      // The same files, with the document's COOP/COEP headers taken off.
      await page.route(`${server.url}/`, async (route) => {
        const response = await route.fetch()
        const headers = { ...response.headers() }
        delete headers['cross-origin-opener-policy']
        delete headers['cross-origin-embedder-policy']
        await route.fulfill({ response, headers })
      })
      // Cores enough for the default to want 2 threads, whatever this machine has.
      await page.addInitScript(() =>
        Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', { get: () => 8 }),
      )
      await openPage(page, `${server.url}/`)
      const fixture = fixtures[0] as Fixture
      const asked = await inPage(page, 'page', request(fixture, 2))
      expect(asked.crossOriginIsolated).toBe(false)
      expect(asked.backendSetup).toMatchObject({ threads: 1 })
      expect(String(asked.backendSetup?.['threadsReason'])).toMatch(/not cross-origin isolated/)
      expect(asked.warnings.join('\n')).toMatch(/numThreads 2 asked for.*Cross-Origin-Embedder-Policy/)
      expect(asked.sha256).toBe(nodeDigest.get(fixture.name))
      // The default's 2 threads lost to the missing headers: said too (nothing said it before, so
      // an app served without COOP/COEP ran on one thread without a word).
      const byDefault = await inPage(page, 'page', request(fixture, undefined))
      expect(byDefault.backendSetup).toMatchObject({ threads: 1 })
      expect(byDefault.warnings.join('\n')).toMatch(
        /runs on one thread where it would run 2 on this device \(8 cores\): the page is not cross-origin isolated.*Cross-Origin-Embedder-Policy: require-corp.*numThreads: 1/,
      )
      expect(byDefault.sha256).toBe(nodeDigest.get(fixture.name))
      // One thread asked for: nothing to warn about.
      const one = await inPage(page, 'page', request(fixture, 1))
      expect(one.warnings).toEqual([])
      // onnxruntime-web's WASM (backend 'ort-wasm') by default on the same page: one thread too,
      // said as the engine says it (it said nothing; only a numThreads it could not give was said).
      const ortByDefault = await inPage(page, 'page', { ...request(fixture, undefined), backend: 'ort-wasm' })
      expect(ortByDefault.backend).toBe('ort-wasm')
      expect(ortByDefault.backendSetup).toMatchObject({ threads: 1 })
      expect(ortByDefault.warnings).toEqual([
        expect.stringMatching(
          /^onnxruntime-web runs on one thread where it would run 4 on this device \(8 cores\): the page is not cross-origin isolated.*Cross-Origin-Embedder-Policy: require-corp.*Pass numThreads: 1 to run one thread without this warning\.$/,
        ),
      ])
      const ortOne = await inPage(page, 'page', { ...request(fixture, 1), backend: 'ort-wasm' })
      expect(ortOne.backendSetup).toMatchObject({ threads: 1 })
      expect(ortOne.warnings).toEqual([])
    } finally {
      await context.close()
    }
  }, 60_000)
})
