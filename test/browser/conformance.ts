// The runtime's backend conformance body (test/conformance/conformance-cases.ts) in Chromium:
// the builder writes the same small-vocabulary fp32 fixtures the Node run uses, a static server
// gives them and a page built around browserConformanceHarness to the browser, and the page
// reports each case's result. Node runs the same cases on onnxruntime-web WASM to compare with.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Page } from 'playwright-core'
import { build, defaultClientConditions } from 'vite'
import { type LoadedModel, loadModel } from '../../client-runtime/index.ts'
import { createNodeStore } from '../../client-runtime/store/node-store.ts'
import { ortDistDirectory } from '../../demo/build.ts'
import { type StaticServer, startStaticServer } from '../../demo/static-server.ts'
import {
  type ConformanceFixture,
  type ConformanceResult,
  conformanceCases,
  conformanceFixtures,
} from '../conformance/conformance-cases.ts'
import { writeConformanceFixture } from '../conformance/conformance-fixture.ts'
import type { PageConformanceOutcome } from './conformance-page/main.ts'

export interface ConformanceSite {
  readonly url: string
  readonly packages: Record<ConformanceFixture, string>
  /** Each fixture's cases on Node's onnxruntime-web WASM ('ort-wasm'), keyed `${fixture}/${case name}`. */
  readonly nodeResults: ReadonlyMap<string, ConformanceResult>
  /** The same on Node's engine ('wasm'): the page's engine must give these bit for bit. */
  readonly nodeEngineResults: ReadonlyMap<string, ConformanceResult>
  close(): Promise<void>
}

export async function startConformanceSite(): Promise<ConformanceSite> {
  const folder = await mkdtemp(join(tmpdir(), 'ondevice-browser-conformance-'))
  const outDir = join(folder, 'page')
  await build({
    configFile: false,
    root: fileURLToPath(new URL('./conformance-page/', import.meta.url)),
    base: './',
    logLevel: 'error',
    publicDir: false,
    optimizeDeps: { exclude: ['onnxruntime-web'] },
    // The package's own imports ('#runtime-node') resolve to the sources, as in the demo.
    resolve: { conditions: ['ondevice-source', ...defaultClientConditions] },
    build: { outDir, emptyOutDir: true, target: 'es2022', reportCompressedSize: false },
  })
  for (const fixture of conformanceFixtures) await writeConformanceFixture(fixture, join(folder, fixture))
  const nodeResults = new Map<string, ConformanceResult>()
  const nodeEngineResults = new Map<string, ConformanceResult>()
  const opened: LoadedModel[] = []
  try {
    // onnxruntime-web's WASM (what WebGPU is held to) and ondevice's engine (what the page's
    // 'wasm' runs: the same bits on every host).
    for (const [backend, results] of [
      ['ort-wasm', nodeResults],
      ['wasm', nodeEngineResults],
    ] as const) {
      for (const fixture of conformanceFixtures) {
        const model = loadModel({
          model: join(folder, fixture),
          backend,
          dtype: 'fp32',
          store: createNodeStore({ cacheDir: join(folder, 'cache') }),
        }).then((loaded) => {
          opened.push(loaded)
          return loaded
        })
        const harness = { backend: 'wasm', tolerance: 1e-4, load: () => model }
        for (const testCase of conformanceCases) {
          results.set(`${fixture}/${testCase.name}`, await testCase.run(harness, fixture))
        }
      }
    }
  } finally {
    for (const model of opened) await model.dispose()
  }
  const server: StaticServer = await startStaticServer({
    mounts: [
      { prefix: '/', directory: outDir },
      { prefix: '/ort/', directory: ortDistDirectory },
      ...conformanceFixtures.map((fixture) => ({
        prefix: `/fixtures/${fixture}/`,
        directory: join(folder, fixture),
      })),
    ],
  })
  const packages = Object.fromEntries(
    conformanceFixtures.map((fixture) => [fixture, `${server.url}/fixtures/${fixture}/`]),
  ) as Record<ConformanceFixture, string>
  return {
    url: `${server.url}/`,
    packages,
    nodeResults,
    nodeEngineResults,
    close: async () => {
      await server.close()
      await rm(folder, { recursive: true, force: true })
    },
  }
}

/** Opens the conformance page and runs every case for every fixture on `backend`. */
export async function runConformanceInPage(
  page: Page,
  site: ConformanceSite,
  backend: 'wasm' | 'webgpu',
): Promise<PageConformanceOutcome[]> {
  await page.goto(site.url)
  await page.waitForSelector('body[data-ready="true"]')
  return page.evaluate(
    (options) =>
      (
        window as unknown as {
          runConformance(o: typeof options): Promise<PageConformanceOutcome[]>
        }
      ).runConformance(options),
    { backend, packages: site.packages },
  )
}
