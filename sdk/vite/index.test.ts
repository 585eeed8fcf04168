// The Vite plugin on a real dev server (the recipe app in test/browser/browser-app): the four
// runtime files under /ort/ with their types, a 404 (never the page) for anything else there,
// the cross-origin isolation headers; and its options validated. The production build and the
// page in Chromium: test/browser/browser-app.test.ts.
import { fileURLToPath } from 'node:url'
import { createServer, type ResolvedConfig, resolveConfig, type ViteDevServer } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InvalidArgumentError } from '../../core/errors.ts'
import { ondevice, runtimeFiles } from './index.ts'

const recipe = fileURLToPath(new URL('../../test/browser/browser-app/', import.meta.url))
let server: ViteDevServer
let base: string

beforeAll(async () => {
  server = await createServer({
    root: recipe,
    configFile: false,
    logLevel: 'error',
    plugins: [ondevice()],
    server: { host: '127.0.0.1', port: 0, strictPort: false },
  })
  await server.listen()
  const address = server.httpServer?.address()
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
})

afterAll(async () => {
  await server?.close()
})

describe('ondevice/vite', () => {
  it('serves exactly the runtime files a device loads, with their types', async () => {
    expect(runtimeFiles()).toEqual([
      'ort-wasm-simd-threaded.jsep.mjs',
      'ort-wasm-simd-threaded.jsep.wasm',
      'ort-wasm-simd-threaded.mjs',
      'ort-wasm-simd-threaded.wasm',
    ])
    const wasm = await fetch(`${base}/ort/ort-wasm-simd-threaded.wasm`)
    expect(wasm.status).toBe(200)
    expect(wasm.headers.get('content-type')).toBe('application/wasm')
    expect([...new Uint8Array(await wasm.arrayBuffer()).subarray(0, 4)]).toEqual([0, 0x61, 0x73, 0x6d])
    const glue = await fetch(`${base}/ort/ort-wasm-simd-threaded.jsep.mjs`)
    expect(glue.headers.get('content-type')).toBe('text/javascript')
    await glue.body?.cancel()
    // Another ORT build (or a typo) is a 404 with the list, never the app's index.html.
    const other = await fetch(`${base}/ort/ort-wasm-simd-threaded.jspi.wasm`)
    expect(other.status).toBe(404)
    expect(await other.text()).toMatch(/not one of the runtime files/)
  })

  it('the page is cross-origin isolated (COOP/COEP)', async () => {
    const page = await fetch(`${base}/`)
    expect(page.headers.get('cross-origin-opener-policy')).toBe('same-origin')
    expect(page.headers.get('cross-origin-embedder-policy')).toBe('require-corp')
    await page.body?.cancel()
  })

  it('under a base such as /notes-app/: the files go where the deployed build serves them', async () => {
    // The default '/ort/' outside the base: vite preview served /ort/ while the build wrote the
    // files to <outDir>/ort/, deployed at /notes-app/ort/, so the deployed page got a 404.
    const outside = resolveConfig(
      { configFile: false, logLevel: 'error', base: '/notes-app/', plugins: [ondevice()] },
      'build',
    )
    await expect(outside).rejects.toThrow(InvalidArgumentError)
    await expect(outside).rejects.toThrow(
      /outside the app's base '\/notes-app\/'.*runtimeUrl: 'ort\/'.*BASE_URL/,
    )
    // Under the base, relative or absolute: one folder 'ort/' of the build (it was 'notes-app/ort/'
    // for the absolute path, deployed at /notes-app/notes-app/ort/).
    for (const runtimeUrl of ['ort/', '/notes-app/ort/']) {
      const plugin = ondevice({ runtimeUrl, flavors: ['wasm'] })
      const config = await resolveConfig(
        { configFile: false, logLevel: 'error', base: '/notes-app/', plugins: [plugin] },
        'build',
      )
      const resolved = config.plugins.find((each) => each.name === 'ondevice') as unknown as {
        configResolved(config: ResolvedConfig): void
        generateBundle(this: { emitFile(file: { fileName: string }): void }): Promise<void>
      }
      const emitted: string[] = []
      await resolved.generateBundle.call({ emitFile: (file) => emitted.push(file.fileName) })
      expect(emitted).toEqual(['ort/ort-wasm-simd-threaded.mjs', 'ort/ort-wasm-simd-threaded.wasm'])
    }
  })

  it("pre-bundles ondevice/runtime at start-up, which an app's own model worker imports", async () => {
    // Vite's dependency scan does not follow `new Worker(new URL('./model-worker.ts', ...))`: the
    // dev server found ondevice/runtime when the worker first ran, pre-bundled it and reloaded the
    // page in the middle of the model's first load ("optimized dependencies changed. reloading").
    const config = await resolveConfig(
      { configFile: false, logLevel: 'error', plugins: [ondevice()] },
      'serve',
    )
    expect(config.optimizeDeps.include).toContain('ondevice/runtime')
    expect(config.optimizeDeps.exclude).toContain('onnxruntime-web')
    // An app's own lists are kept.
    const own = await resolveConfig(
      { configFile: false, logLevel: 'error', plugins: [ondevice()], optimizeDeps: { include: ['zod'] } },
      'serve',
    )
    expect(own.optimizeDeps.include).toEqual(expect.arrayContaining(['zod', 'ondevice/runtime']))
  })

  it('refuses options that cannot work, naming them', () => {
    const refused = (options: unknown, param: string) => {
      let caught: unknown
      try {
        ondevice(options as never)
      } catch (error) {
        caught = error
      }
      expect(caught).toBeInstanceOf(InvalidArgumentError)
      expect((caught as InvalidArgumentError).param).toBe(param)
    }
    refused({ runtimeUrl: 'https://cdn.example/ort/' }, 'runtimeUrl')
    refused({ flavors: ['webgl'] }, 'flavors')
    refused({ flavors: [] }, 'flavors')
    refused({ isolationHeaders: 'yes' }, 'isolationHeaders')
    // A misspelt name was dropped without a word, its default taken: runtimeURL served the files
    // at /ort/ while the page asked createClient for another folder.
    refused({ runtimeURL: 'static/ort/' }, 'runtimeURL')
    refused({ flavours: ['wasm'] }, 'flavours')
    expect(() => ondevice({ runtime_url: 'ort/' } as never)).toThrow(/did you mean "runtimeUrl"\?/)
    expect(ondevice({ runtimeUrl: 'static/ort', flavors: ['wasm'] }).name).toBe('ondevice')
  })
})
