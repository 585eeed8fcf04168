// The page the browser store test drives: runs the store against packages served by the test's
// static server and reports plain results (errors as name + code) back to Node.
import { createBrowserStore } from '../../../client-runtime/store/browser-store.ts'
import type { DownloadProgress } from '../../../client-runtime/store/types.ts'

export type StoreCheck = Record<string, unknown>

async function outcome<T>(
  work: () => Promise<T>,
): Promise<T | { error: { name: string; code: string | undefined; message: string } }> {
  try {
    return await work()
  } catch (error) {
    return {
      error: {
        name: (error as Error).name,
        code: (error as { code?: string }).code,
        message: (error as Error).message,
      },
    }
  }
}

async function check(backend: 'opfs' | 'cache'): Promise<StoreCheck> {
  const store = createBrowserStore({ backend, name: `test-${backend}`, onWarning: () => undefined })
  const good = new URL('/pkg/', location.href).href
  const bad = new URL('/bad/', location.href).href
  const progress: DownloadProgress[] = []
  const pkg = await store.open(good)
  const stored = ['config.json', 'onnx/model.onnx']
  const before = await store.isCached(good, stored)
  await pkg.ensure(['config.json', 'onnx/model.onnx'], { onProgress: (event) => progress.push(event) })
  const bytes = await pkg.readBytes('onnx/model.onnx')
  // What the engine loads weights through: a slice of the stored Blob, not the whole file.
  const range = new Uint8Array(150_000)
  await pkg.readInto?.('onnx/model.onnx', 12_345, range)
  const rangeMatches = range.every((value, index) => value === bytes[12_345 + index])
  const pastEnd = await outcome(
    () => pkg.readInto?.('onnx/model.onnx', bytes.length - 10, new Uint8Array(20)) ?? Promise.resolve(),
  )
  const after = await store.isCached(good, stored)
  // Reading again comes from storage (no second download).
  const again = await (await store.open(good)).readText('config.json')
  await store.delete(good)
  const afterDelete = await store.isCached(good, stored)
  const badPackage = await store.open(bad)
  const corrupted = await outcome(() => badPackage.ensure(['onnx/model.onnx']))
  const corruptedKept = await store.isCached(bad, ['onnx/model.onnx'])
  const missing = await outcome(() => badPackage.ensure(['onnx/missing.onnx']))
  const noPackage = await outcome(() => store.open(new URL('/nothing/', location.href).href))
  // Several opens of one package at once (an app's status() while prepare() loads) each store
  // manifest.json: one at a time, or OPFS refuses to move a .partial another writer holds.
  const concurrentOpens = (
    await Promise.all(Array.from({ length: 6 }, () => outcome(() => store.open(good))))
  ).map((opened) => ('error' in opened ? opened.error.message : 'opened'))
  return {
    concurrentOpens,
    before,
    after,
    afterDelete,
    length: bytes.length,
    checksum: bytes.reduce((sum, value) => (sum * 31 + value) % 1_000_003, 0),
    rangeMatches,
    pastEnd,
    again,
    last: progress.at(-1),
    downloads: progress.filter((event) => event.phase === 'download').length,
    corrupted,
    corruptedKept,
    missing,
    noPackage,
  }
}

/** Against /flaky/, whose first download of the weights breaks off midway: the retry resumes. */
async function resume(): Promise<StoreCheck> {
  // One try per load here (the load's own retries are checked in badConnection()).
  const store = createBrowserStore({
    backend: 'opfs',
    name: 'test-resume',
    downloadRetries: 0,
    onWarning: () => undefined,
  })
  const pkg = await store.open(new URL('/flaky/', location.href).href)
  const first = await outcome(() => pkg.ensure(['onnx/model.onnx']))
  await pkg.ensure(['onnx/model.onnx'])
  const bytes = await pkg.readBytes('onnx/model.onnx')
  return {
    first,
    length: bytes.length,
    checksum: bytes.reduce((sum, value) => (sum * 31 + value) % 1_000_003, 0),
  }
}

/**
 * Against /stall/, whose first download of the weights stalls after 50 KB: idle timeout, then resume.
 * 2 s, not less: every other read here (manifest.json, the 50 KB, the resumed rest) must not be
 * taken for a stall, and the server answering them runs in the test's process, which a loaded
 * machine can leave without a core for a second or more (seen once in CI: 1.6 s).
 */
async function stall(): Promise<StoreCheck> {
  const store = createBrowserStore({
    backend: 'opfs',
    name: 'test-stall',
    idleTimeoutMs: 2_000,
    downloadRetries: 0,
    onWarning: () => undefined,
  })
  const pkg = await store.open(new URL('/stall/', location.href).href)
  const started = performance.now()
  const first = await outcome(() => pkg.ensure(['onnx/model.onnx']))
  const firstMs = performance.now() - started
  const partial = await outcome(async () => {
    const root = await navigator.storage.getDirectory()
    let folder = await root.getDirectoryHandle('test-stall')
    for await (const [name, handle] of folder as unknown as AsyncIterable<[string, FileSystemHandle]>)
      if (handle.kind === 'directory') folder = await folder.getDirectoryHandle(name)
    folder = await folder.getDirectoryHandle('onnx')
    return (await (await folder.getFileHandle('model.onnx.partial')).getFile()).size
  })
  await pkg.ensure(['onnx/model.onnx'])
  const bytes = await pkg.readBytes('onnx/model.onnx')
  return {
    first,
    firstMs,
    partialBytes: partial,
    length: bytes.length,
    checksum: bytes.reduce((sum, value) => (sum * 31 + value) % 1_000_003, 0),
  }
}

/** /cross/manifest.json redirects to another origin (which allows CORS): refused, nothing stored. */
async function crossOriginRedirect(): Promise<StoreCheck> {
  const store = createBrowserStore({ backend: 'opfs', name: 'test-redirect', onWarning: () => undefined })
  const source = new URL('/cross/', location.href).href
  const refused = await outcome(() => store.open(source))
  return { refused, stored: await store.isCached(source, ['manifest.json']) }
}

/**
 * One tab's first load of /slow/ (weights trickled over about a second), run in two tabs at once:
 * each tab has its own store, and both write the same OPFS files.
 */
async function tab(): Promise<StoreCheck> {
  const store = createBrowserStore({ backend: 'opfs', name: 'test-tabs', onWarning: () => undefined })
  const loaded = await outcome(async () => {
    const pkg = await store.open(new URL('/slow/', location.href).href)
    await pkg.ensure(['config.json', 'onnx/model.onnx'])
    const bytes = await pkg.readBytes('onnx/model.onnx')
    return { length: bytes.length, checksum: bytes.reduce((sum, value) => (sum * 31 + value) % 1_000_003, 0) }
  })
  return { loaded }
}

/**
 * /trickle/'s weights downloaded by the store in a Web Worker (as the SDK runs it): answers once
 * `until` bytes of the file have arrived (the test then closes the tab), else with the result.
 */
function workerDownload(until?: number, path = '/trickle/'): Promise<StoreCheck> {
  const worker = new Worker(new URL('./store-worker.ts', import.meta.url), { type: 'module' })
  return new Promise((resolve) => {
    worker.onmessage = (event: MessageEvent<{ progress?: number } & StoreCheck>) => {
      const { progress } = event.data
      if (progress === undefined) resolve(event.data)
      else if (until !== undefined && progress >= until) resolve({ progress })
    }
    worker.postMessage({ source: new URL(path, location.href).href })
  })
}

/** The store on a page that is not a secure context (plain HTTP on a name other than localhost). */
async function insecure(): Promise<StoreCheck> {
  const store = createBrowserStore({ onWarning: () => undefined })
  return {
    isSecureContext,
    opened: await outcome(() => store.open(new URL('/pkg/', location.href).href)),
  }
}

;(globalThis as { runInsecureCheck?: () => Promise<StoreCheck> }).runInsecureCheck = insecure
;(globalThis as { runTabCheck?: () => Promise<StoreCheck> }).runTabCheck = tab
;(
  globalThis as { runWorkerDownload?: (until?: number, path?: string) => Promise<StoreCheck> }
).runWorkerDownload = workerDownload
;(globalThis as { runResumeCheck?: () => Promise<StoreCheck> }).runResumeCheck = resume
;(globalThis as { runStallCheck?: () => Promise<StoreCheck> }).runStallCheck = stall
;(globalThis as { runRedirectCheck?: () => Promise<StoreCheck> }).runRedirectCheck = crossOriginRedirect
;(globalThis as { runStoreChecks?: () => Promise<Record<string, StoreCheck>> }).runStoreChecks =
  async () => ({
    opfs: await check('opfs'),
    cache: await check('cache'),
  })
