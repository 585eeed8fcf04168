// The JavaScript a page that only chats loads before its first answer, against a budget, so it
// cannot grow back unnoticed. The page is built the way docs/sdk.md says (Vite with `ondevice/vite`;
// here from the sources, as the demo is; test/browser/browser-app.test.ts checks the same budget
// on the packed package). Up front means the entry chunk and what it imports statically (the
// build's manifest), gzip -9. What must not be there:
//   - the structured-output compiler (JSON Schema and tools to a token mask, tool-call readers:
//     core/structured/structured-output.ts), a chunk of its own that the first request with
//     `responseFormat` or `tools` loads, in the page (validation) and in the model's Web Worker;
//   - the on-device runtime (tokenizer, chat template, engine): it runs in the model's Web Worker,
//     and a page gets it only from an app's own worker (`createRuntimeDeviceHost`), on demand; the
//     page checks a request's messages without the chat template's Jinja engine.
// On 7 December, before these left it, this page loaded 116 KiB (gzip -9; 372 KiB raw) up front
// and the model's worker 98 KiB.
// The same page bundled by esbuild with --splitting has the same budget: esbuild's entry imports
// every chunk holding a module it reaches through a static import, used or not, so a re-export
// `ondevice` holds for other code (createRuntimeDeviceHost, core/protocol's validation) brought the
// runtime and the compiler back up front there: 130 KiB gzip -9 on 7 December, before `ondevice`
// reached them only through import() (sdk/runtime-on-demand.ts).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build, defaultClientConditions } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ondevice } from '../../sdk/vite/index.ts'
import {
  compilerMarkers,
  type EsbuildMetafile,
  esbuildUpFront,
  kib,
  modelWorkerUpFront,
  pageBudgetBytes,
  readViteManifest,
  sizes,
  upFront,
  type ViteManifest,
} from './up-front-javascript.ts'

const sdkEntry = fileURLToPath(new URL('../../sdk/index.ts', import.meta.url))
const source = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url))
/** Strings only the runtime's model loading and the chat template's Jinja engine hold. */
const runtimeMarkers = ['needs an options object like { model:', 'The chat template does not parse'] as const

let work: string
let dist: string
let manifest: ViteManifest

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ondevice-page-bundle-'))
  await writeFile(
    join(work, 'index.html'),
    '<!doctype html><meta charset="utf-8"><script type="module" src="/main.ts"></script>\n',
  )
  // A page that only chats: createClient and chat(), nothing structured.
  await writeFile(
    join(work, 'main.ts'),
    [
      "import { createClient } from 'ondevice'",
      "const ai = createClient({ model: '/models/default/', edge: { url: 'http://127.0.0.1:8787' }, runtimeUrl: '/ort/' })",
      "const answer = await ai.chat({ messages: [{ role: 'user', content: 'Hi' }] })",
      'document.body.textContent = answer.text',
      '',
    ].join('\n'),
  )
  dist = join(work, 'dist')
  await build({
    root: work,
    configFile: false,
    logLevel: 'error',
    // ORT's WASM flavour only: the runtime files do not change the JavaScript, and are 14 MiB less to copy.
    plugins: [ondevice({ flavors: ['wasm'] })],
    resolve: {
      alias: { ondevice: sdkEntry },
      conditions: ['ondevice-source', ...defaultClientConditions],
    },
    build: { outDir: dist, manifest: true, reportCompressedSize: false, chunkSizeWarningLimit: 30_000 },
  })
  manifest = await readViteManifest(dist)
}, 120_000)

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true })
})

async function holdsCompiler(files: readonly string[]): Promise<string[]> {
  const found: string[] = []
  for (const file of files) {
    const text = await readFile(join(dist, file), 'utf8')
    if (compilerMarkers.some((marker) => text.includes(marker))) found.push(file)
  }
  return found
}

describe('the JavaScript a page that only chats loads up front (Vite, ondevice/vite)', () => {
  it('is within its budget, and holds neither the structured-output compiler nor the runtime', async () => {
    const page = await upFront(dist, manifest, 'index.html')
    const worker = await modelWorkerUpFront(dist, manifest)
    const compilerChunk = (file: string) => /\/structured-output-[\w-]+\.js$/.test(file)
    const pageChunk = page.onDemand.filter(compilerChunk)
    const workerChunk = worker.onDemand.filter(compilerChunk)
    const onDemand = await sizes(dist, pageChunk)
    console.log(
      [
        `page up front: ${kib(page.gzipBytes)} gzip -9, ${kib(page.bytes)} raw (budget ${kib(pageBudgetBytes)}; 116 KiB gzip, 372 KiB raw before the compiler, the runtime and Jinja left it)`,
        `  ${page.files.join(', ')}`,
        `model worker up front: ${kib(worker.gzipBytes)} gzip -9, ${kib(worker.bytes)} raw (98 KiB gzip before)`,
        `structured-output chunk, loaded by the first request with responseFormat or tools: ${kib(onDemand.gzipBytes)} gzip -9, ${kib(onDemand.bytes)} raw (page and worker each)`,
      ].join('\n'),
    )
    expect(page.gzipBytes).toBeLessThanOrEqual(pageBudgetBytes)
    // The compiler is a chunk of its own in the page and in the worker, imported only with import().
    expect(pageChunk).toHaveLength(1)
    expect(workerChunk).toHaveLength(1)
    expect(await holdsCompiler([...pageChunk, ...workerChunk])).toEqual([...pageChunk, ...workerChunk])
    expect(await holdsCompiler(page.files)).toEqual([])
    expect(await holdsCompiler(worker.files)).toEqual([])
    // The runtime's model loading (client-runtime/load-model.ts) and the chat template's Jinja
    // engine (core/chat-template.ts) are in the worker, not in the page: the page checks messages
    // (core/chat-messages.ts) and never renders a template.
    for (const marker of runtimeMarkers) {
      const holding = async (files: readonly string[]) => {
        const texts = await Promise.all(files.map((file) => readFile(join(dist, file), 'utf8')))
        return files.filter((_, index) => texts[index]?.includes(marker))
      }
      expect(await holding(page.files), marker).toEqual([])
      expect(await holding(worker.files), marker).not.toEqual([])
    }
  })
})

describe('the same page bundled by esbuild with --splitting --format=esm --minify', () => {
  it('loads up front within the same budget, neither the structured-output compiler nor the runtime', async () => {
    // docs/sdk.md's esbuild recipe (the page and the two workers as entries), with --splitting.
    const esbuild = await import('esbuild')
    const { metafile } = await esbuild.build({
      absWorkingDir: work,
      entryPoints: [
        'main.ts',
        source('sdk/device-worker.ts'),
        source('wasm/engine/thread-worker-browser.ts'),
      ],
      bundle: true,
      splitting: true,
      format: 'esm',
      minify: true,
      platform: 'browser',
      outdir: 'esbuild',
      entryNames: '[name]',
      metafile: true,
      conditions: ['ondevice-source'],
      alias: { ondevice: sdkEntry },
      logLevel: 'error',
    })
    const page = await esbuildUpFront(work, metafile as EsbuildMetafile, 'main.ts')
    const texts = await Promise.all(page.files.map((file) => readFile(join(work, file), 'utf8')))
    const holding = (markers: readonly string[]) =>
      page.files.filter((_, index) => markers.some((marker) => texts[index]?.includes(marker)))
    console.log(
      `esbuild --splitting page up front: ${kib(page.gzipBytes)} gzip -9, ${kib(page.bytes)} raw in ${page.files.length} files (budget ${kib(pageBudgetBytes)}; 130 KiB gzip before)`,
    )
    // The modules that made it 130 KiB, named, so a failure says which import brought them back.
    const heavy = page.modules.filter((module) =>
      /core\/structured\/(?:constraint|json-schema)|client-runtime\/(?:load-model|device-host\/runtime-host)|core\/(?:chat-template|generate|tokenizer)\.ts|@huggingface\/jinja/.test(
        module,
      ),
    )
    expect(heavy).toEqual([])
    // Nor what a first answer never runs, which a static import put there: the device probe
    // (WebGPU, memory, storage: the model's worker runs it; the page's proxy only reads the
    // network state, client-runtime/current-network.ts), and what an edge's refusal becomes
    // (sdk/edge-option-names.ts, sdk/edge-versions.ts: loaded when an edge refuses a request).
    // With them the page was 33.6 KiB on 7 December, over the budget.
    expect(
      page.modules.filter((module) =>
        /client-runtime\/probe\.ts|sdk\/edge-(?:option-names|versions)\.ts/.test(module),
      ),
    ).toEqual([])
    // Nor the model worker's proxy and server (client-runtime/web-worker/proxy.ts, serve.ts), which
    // `ondevice` exports for an app's own model worker: the page's on-demand chunk and the model
    // worker use them, and esbuild makes an entry import every chunk holding a file it reaches
    // through a static import, used or not, so `ondevice` loads them on first use
    // (sdk/worker-device-on-demand.ts). With them the page was 31.6 KiB on 8 December.
    expect(
      page.modules.filter((module) => /client-runtime\/web-worker\/(?:proxy|serve)\.ts/.test(module)),
    ).toEqual([])
    expect(
      page.onDemand.filter((file) => /\/edge-(?:option-names|versions)-\w+\.js$/.test(file)),
    ).toHaveLength(2)
    expect(holding(compilerMarkers)).toEqual([])
    expect(holding(runtimeMarkers)).toEqual([])
    expect(page.gzipBytes).toBeLessThanOrEqual(pageBudgetBytes)
    // The compiler is still there, as a chunk the first structured request loads.
    expect(page.onDemand.some((file) => /structured-output-\w+\.js$/.test(file))).toBe(true)
  }, 120_000)
})
